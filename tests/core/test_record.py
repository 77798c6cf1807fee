"""The run record: a typed dataclass with one schema (docs/run-record.md), written as canonical JSON, read back
at any version nstkit has written, and readable by key as records were before version 4."""

import dataclasses
import json
import re

import pytest
from nst_helpers import ROOT

from nstkit import StyleConfig
from nstkit.core.errors import NstkitError
from nstkit.core.record import RECORD_VERSION, RunRecord, write_record


def _record(**overrides) -> RunRecord:
    fields = dict(config=StyleConfig(steps=7).to_dict(), inputs={"content": {"path": "c.png", "sha256": "ab"}},
                  weights={"description": "random (seed 0)"}, style_blend=[1.0], image_size=[48, 64],
                  terms=["content", "style", "tv", "temporal"],
                  stages=[{"size": [48, 64], "scale": 1.0, "source": "image", "steps": 7, "steps_run": 7}],
                  device="cpu", jit_compile=False, steps_planned=7, steps_run=7, stopped_early=False, best_stage=0,
                  best_step=6, best_loss=12.5, final_losses={"total": 13.0}, step_traces=1, wall_time_s=1.5,
                  seconds_per_step=0.1, preset_overridden=[], style_sizes=[[40, 40]])
    return RunRecord(**{**fields, **overrides})


def test_written_and_read_back_unchanged(tmp_path):
    record = _record(batch={"size": 2, "member": 1})
    written = write_record(tmp_path / "out.png", record)
    assert written == tmp_path / "out.png.json"
    assert RunRecord.read(tmp_path / "out.png") == record == RunRecord.read(written)
    data = json.loads(written.read_text())
    assert data["record_version"] == RECORD_VERSION and data["batch"] == {"size": 2, "member": 1}
    assert "stopped_by" not in data and "output" not in data  # fields that do not apply are left out
    assert data["preset_overridden"] == []  # ... but an image run's lists are always there
    assert written.read_text() == json.dumps(data, indent=2, sort_keys=True) + "\n"  # canonical JSON


def test_two_outputs_of_one_name_never_share_a_record(tmp_path):
    """``out.png`` then ``out.tif`` in one folder: two records, each read back for its own image."""
    for suffix, steps in ((".png", 3), (".tif", 5), (".webp", 7)):
        write_record(tmp_path / f"out{suffix}", _record(steps_run=steps, output=str(tmp_path / f"out{suffix}")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png.json", "out.tif.json", "out.webp.json"]
    assert [RunRecord.read(tmp_path / f"out{suffix}")["steps_run"] for suffix in (".png", ".tif", ".webp")] == [3, 5, 7]


def test_a_record_written_before_0_2_still_replays_for_its_own_image(tmp_path):
    """Old records were ``out.json``: read for ``out.png`` when it has none of its own, refused for another image."""
    old = _record(steps_run=4, output=str(tmp_path / "out.png"))
    (tmp_path / "out.json").write_text(json.dumps(old.to_dict()))
    assert RunRecord.read(tmp_path / "out.png") == old
    assert StyleConfig.from_record(RunRecord.read(tmp_path / "out.png")).steps == 7
    with pytest.raises(NstkitError, match=r"out.json is the record of out.png, not of out.tif.*out.tif.json"):
        RunRecord.read(tmp_path / "out.tif")
    write_record(tmp_path / "out.png", _record(steps_run=9))  # the image's own record wins over the old one
    assert RunRecord.read(tmp_path / "out.png")["steps_run"] == 9


def test_it_reads_as_a_mapping_as_older_records_did():
    record = _record()
    assert record["best_step"] == record.best_step == 6 and record.get("stopped_by") is None
    assert {**record}["config"]["steps"] == 7 and "best_loss" in record and len(record) == len(record.to_dict())
    with pytest.raises(KeyError):
        record["stopped_by"]


def test_a_version_1_record_is_upgraded(tmp_path):
    old = {"record_version": 1, "config": StyleConfig(steps=4, coarse_levels=1).to_dict(), "inputs": {},
           "weights": {"description": "imagenet"}, "image_size": [64, 80],
           "levels": [{"scale": 0.5, "steps": 2}, {"scale": 1.0, "steps": 4}], "steps_run": 6, "best_step": 5,
           "best_loss": 3.0, "final_losses": {"total": 3.0, "content": 1.0, "style": 2.0}, "device": "cpu"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    record = RunRecord.read(tmp_path / "old.json")
    assert [stage["size"] for stage in record.stages] == [[32, 40], [64, 80]]
    assert record.steps_planned == 6 and record.best_stage == 1 and record.record_version == 1
    assert set(record.terms) == {"content", "style"} and "levels" not in record.to_dict()
    assert StyleConfig.from_record(record).coarse_levels == 1  # it still replays


def test_a_version_4_lbfgs_replays_as_scipys_lbfgsb_which_it_meant():
    """Before record version 5, optimizer "lbfgs" was scipy's L-BFGS-B; it is "lbfgsb" now."""
    old = {**_record().to_dict(), "record_version": 4,
           "config": {**StyleConfig(steps=7).to_dict(), "optimizer": "lbfgs"}}
    assert StyleConfig.from_record(old).optimizer == "lbfgsb"
    assert StyleConfig.from_record({**old, "record_version": 5}).optimizer == "lbfgs"


def test_a_version_2_swag_softmax_replays_as_it_meant():
    record = RunRecord.from_dict({**_record(config={**StyleConfig().to_dict(), "swag": "softmax"}).to_dict(),
                                  "record_version": 2})
    assert StyleConfig.from_record(record).swag == "softmax_relative"


def test_fields_of_a_newer_nstkit_are_kept_and_written_back(tmp_path):
    newer = {**_record().to_dict(), "record_version": RECORD_VERSION + 1, "colour_palette": ["#fff"]}
    record = RunRecord.from_dict(newer)
    assert record.extra == {"colour_palette": ["#fff"]}
    write_record(tmp_path / "o.png", record)
    assert json.loads((tmp_path / "o.png.json").read_text()) == newer


def test_something_else_is_one_line(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(NstkitError, match="is not an nstkit run record"):
        RunRecord.read(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"figure": "a.jpg"}))
    with pytest.raises(NstkitError, match="not an nstkit run record: it has no config, inputs, steps_run"):
        RunRecord.read(tmp_path / "y.json")
    with pytest.raises(NstkitError, match="cannot read run record .*missing.png.json"):
        RunRecord.read(tmp_path / "missing.png")


def test_the_schema_page_lists_exactly_the_dataclass_fields():
    page = (ROOT / "docs" / "run-record.md").read_text()
    table = page[page.index("## Fields"):page.index("## Versions")]
    documented = re.findall(r"^\| `(\w+)` \|", table, re.M)
    fields = [spec.name for spec in dataclasses.fields(RunRecord) if spec.name != "extra"]
    assert documented == fields
    assert f"Version {RECORD_VERSION} is the current one" in page
