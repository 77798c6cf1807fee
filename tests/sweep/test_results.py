"""A sweep's summary (sweep.csv, contact_sheet.png, sweep.json) is written whole or not at all: a disk that fills
or a folder that turns read-only half way never leaves a lone CSV that the next sweep refuses the folder for."""

import errno
import json
import os
import sys

import numpy as np
import pytest
from nst_helpers import smooth_image

from nstkit.core.config import StyleConfig
from nstkit.sweep import SUMMARY_FILES, SweepResult

results_module = sys.modules["nstkit.sweep.results"]


def _result() -> SweepResult:
    """Two rows, one failed, without running anything: the summary's writing is what is under test."""
    rows = [{"job": 0, "style_weight": 1e6, "best_loss": np.float32(1.5), "error": None},
            {"job": 1, "style_weight": 1e7, "best_loss": None, "error": "weights file not found"}]
    return SweepResult(grid={"style_weight": [1e6, 1e7]}, config=StyleConfig(weights="random"), rows=rows,
                       images=[smooth_image(1, 32, 32), None], records=[None, None],
                       inputs={"content": {"array_shape": [32, 32, 3]}})


def _fail(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fail_renaming(name: str):
    """os.replace that fails when it would put ``name`` in place (the folder turned read-only just then)."""
    real = os.replace

    def replace(source, target, *args, **kwargs):
        if os.path.basename(target) == name:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(source, target, *args, **kwargs)

    return replace


@pytest.mark.parametrize("where, fault", [
    ("the table", ("SweepResult.to_csv", _fail)),
    ("the contact sheet", ("save_image", _fail)),
    ("sweep.json", ("json.dump", _fail)),
    ("renaming sweep.json into place", ("os.replace", _fail_renaming("sweep.json"))),
])
def test_a_summary_that_cannot_be_finished_leaves_the_folder_as_it_was(tmp_path, monkeypatch, where, fault):
    target, replacement = fault
    if target == "SweepResult.to_csv":
        monkeypatch.setattr(SweepResult, "to_csv", replacement)
    elif target == "os.replace":
        monkeypatch.setattr(os, "replace", replacement)
    elif target == "json.dump":  # the disk fills while sweep.json is written
        monkeypatch.setattr(json, "dump", replacement)
    else:
        monkeypatch.setattr(results_module, target, replacement)
    run_image = tmp_path / "000_style-weight-1e+06.png"
    run_image.write_bytes(b"a run's image: never touched")
    with pytest.raises(OSError):
        _result().save(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == [run_image.name], where  # no half summary, no temp file
    assert run_image.read_bytes() == b"a run's image: never touched"


def test_a_whole_summary_is_canonical_json_and_keeps_the_mode_it_replaces(tmp_path):
    result = _result()
    paths = result.save(tmp_path)
    assert [path.name for path in paths] == list(SUMMARY_FILES)
    text = paths[2].read_text()
    summary = json.loads(text)
    assert text.endswith("}\n") and text == json.dumps(summary, indent=2, sort_keys=True) + "\n"
    assert summary["rows"][0]["best_loss"] == 1.5  # a numpy number is written as a number, not as its str
    os.chmod(paths[0], 0o640)
    result.save(tmp_path, overwrite=True)
    assert oct(os.stat(paths[0]).st_mode & 0o777) == oct(0o640)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(SUMMARY_FILES)
