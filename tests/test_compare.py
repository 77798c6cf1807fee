"""The method comparison's statistics, its resumable store, and the copies of its table that must agree."""

import json
from pathlib import Path

import numpy as np
import pytest

from nstkit.core.errors import NstkitError
from research import compare

REPO = Path(__file__).resolve().parent.parent
PAIRS = (("a.jpg", "x.png"), ("b.jpg", "y.png"))
SEEDS = (0, 1, 2)


def synthetic(offsets: dict[str, tuple[float, float]], noise: float = 0.0) -> dict:
    """Results where each method's Gram/patch distance and SSIM are the baseline's plus an offset
    (distance offset, SSIM offset), the baseline varying a lot between seeds and pairs."""
    rng = np.random.default_rng(0)
    runs = {}
    for p, pair in enumerate(PAIRS):
        for seed in SEEDS:
            base = {"gram_distance": 0.3 + 0.2 * seed + p, "patch_distance": 0.1 + 0.05 * seed + p,
                    "ssim_luminance": 0.2 + 0.1 * seed, "ssim_edges": 0.1, "color_histogram": 0.5,
                    "color_moments": 10.0, "seconds": 60.0 + seed, "seconds_per_step": 0.1}
            for method, (distance, ssim) in {"vanilla": (0.0, 0.0), **offsets}.items():
                metrics = dict(base)
                for name in ("gram_distance", "patch_distance"):
                    metrics[name] += distance + noise * rng.normal()
                metrics["ssim_luminance"] += ssim + noise * rng.normal()
                runs[compare._key(method, pair, seed)] = {"method": method, "pair": list(pair), "seed": seed,
                                                          "metrics": metrics}
    settings = compare.Settings(max_dim=64, steps=3, seeds=SEEDS, pairs=PAIRS,
                                methods=("vanilla", *offsets)).as_dict()
    return {"settings": settings, "runs": runs, "validation": {"size": 64, "pairs": [], "passed": True}}


def test_the_bootstrap_resamples_seeds_within_pairs_so_fixed_pairs_add_no_spread():
    assert compare.stratified_bootstrap({"p": np.array([1.0, 1, 1]), "q": np.array([3.0, 3, 3])}) == (2.0, 2.0, 2.0)
    assert np.isnan(compare.stratified_bootstrap({"p": np.array([1.0]), "q": np.array([3.0, 3])})[1])
    # Seeds are crossed with pairs (one random network per seed): drawn jointly, a seed that is bad on one pair
    # and good on the other cancels, as it does in the mean itself.
    assert compare.stratified_bootstrap({"p": np.array([0.0, 1, 2]), "q": np.array([2.0, 1, 0])}) == (1.0, 1.0, 1.0)
    mean, low, high = compare.stratified_bootstrap({"p": np.array([0.0, 1, 2]), "q": np.array([10.0, 11, 12])})
    assert mean == 6.0 and 5.0 <= low < 6.0 < high <= 7.0


def test_made_by_names_the_machines_when_runs_came_from_several():
    results = synthetic({"new": (0.0, 0.0)})
    assert "runs on" not in compare.made_by(results)  # runs from before machines were recorded: nothing to say
    for run in results["runs"].values():
        if run["method"] == "new":
            run.update(device="CPU (x86_64, 2 cores)", cpu="AMD EPYC")
    line = compare.made_by(results)
    assert "runs on machine not recorded (6 runs: vanilla) and CPU (x86_64, 2 cores): AMD EPYC (6 runs: new)" in line
    assert line.endswith("compare seconds only within one machine")
    for run in results["runs"].values():
        run.update(device="CPU (x86_64, 2 cores)", cpu="AMD EPYC")
    assert compare.made_by(results).endswith("; on CPU (x86_64, 2 cores): AMD EPYC")


def test_the_comparison_with_vanilla_is_paired_on_pair_and_seed():
    results = synthetic({"better": (-0.1, 0.0)})
    mean, low, high = compare.paired(results, "better", "gram_distance")
    assert (mean, low, high) == pytest.approx((-0.1, -0.1, -0.1))  # the seeds' large spread cancels


def test_the_verdict_needs_the_whole_interval_on_the_right_side():
    results = synthetic({"meets": (-0.1, 0.05), "loses_content": (-0.1, -0.2), "farther": (0.1, 0.1),
                         "unsure": (-0.1, 0.0)}, noise=0.01)
    lines = dict(line.split(": ", 1) for line in compare.verdict(results))
    assert "vanilla" not in lines
    assert lines["meets"].count("it meets the target") == 2
    assert lines["loses_content"].count("does NOT meet the target (nearer the style, but surely less content)") == 2
    assert lines["farther"].count("does NOT meet the target (not surely nearer the style)") == 2
    assert lines["unsure"].count("it meets the target") == 2  # the same SSIM, within its noise: not less content


def test_statistics_use_only_the_cells_every_method_has():
    results = synthetic({"better": (-0.1, 0.0)})
    del results["runs"][compare._key("better", PAIRS[1], 2)]
    cells = compare.complete_cells(results)
    assert (PAIRS[1], 2) not in cells and len(cells) == len(PAIRS) * len(SEEDS) - 1
    assert "5 of 6 (pair, seed) cells" in compare.made_by(results)
    del results["runs"][compare._key("vanilla", PAIRS[1], 1)]  # pair 1 is down to one seed: no interval there
    assert compare.complete_cells(results) == [(PAIRS[0], seed) for seed in SEEDS]


def test_agreement_is_kendalls_tau_of_the_two_rankings():
    results = synthetic({"near": (-0.2, 0.0), "far": (0.2, 0.0), "farther": (0.4, 0.0)})
    assert compare.agreement(results)["tau"] == pytest.approx(1.0)
    for run in results["runs"].values():  # reverse the patch distance's ranking
        run["metrics"]["patch_distance"] = -run["metrics"]["patch_distance"]
    assert compare.agreement(results)["tau"] == pytest.approx(-1.0)


def test_the_readme_block_is_replaced_and_a_readme_without_one_is_refused():
    results = synthetic({"better": (-0.1, 0.0)})
    readme = f"intro\n{compare.README_START}\nold table\n{compare.README_END}\noutro\n"
    new = compare.readme_with_table(readme, results)
    assert new.startswith("intro\n") and new.endswith("\noutro\n") and "old table" not in new
    assert compare.markdown_table(results) in new
    with pytest.raises(NstkitError, match="no <!-- method-comparison:start -->"):
        compare.readme_with_table("no block", results)


@pytest.fixture
def tiny(monkeypatch):
    """Two methods, one pair, one seed, at 64 px and 2 steps, with the slow metric validation stubbed (its
    own test runs it for real)."""
    import nstkit.measure.metrics

    monkeypatch.setattr(nstkit.measure.metrics, "validate_patch_distance",
                        lambda pairs, size: {"passed": True, "size": size, "seed": 0, "pairs": []})
    return compare.Settings(max_dim=64, steps=2, seeds=(0,), pairs=(("astronaut.jpg", "hexagons.png"),),
                            methods=("vanilla", "robust"))


@pytest.mark.slow  # the comparison's bookkeeping: no TensorFlow API of its own
def test_an_interrupted_comparison_keeps_its_runs_and_resumes_without_recomputing(tiny, tmp_path, monkeypatch):
    import nstkit.api.stylize

    path = tmp_path / "results.json"
    real = nstkit.api.stylize.stylize
    calls = []

    def stopped_on_the_second(*args, **options):
        calls.append(options["preset"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **options)

    monkeypatch.setattr(nstkit.api.stylize, "stylize", stopped_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        compare.run(tiny, path, progress=None)
    stored = json.loads(path.read_text())
    assert list(stored["runs"]) == [compare._key("vanilla", tiny.pairs[0], 0)]
    first = stored["runs"][compare._key("vanilla", tiny.pairs[0], 0)]["metrics"]
    assert set(compare.METRICS) <= set(first)

    calls.clear()
    monkeypatch.setattr(nstkit.api.stylize, "stylize", lambda *a, **o: calls.append(o["preset"]) or real(*a, **o))
    results = compare.run(tiny, path, progress=None)
    assert calls == ["robust"]  # vanilla was not run again
    assert results["runs"][compare._key("vanilla", tiny.pairs[0], 0)]["metrics"] == first
    assert len(compare.complete_cells(results)) == 1


def test_a_comparison_made_with_other_settings_is_refused_not_mixed(tiny, tmp_path, monkeypatch):
    import dataclasses

    import nstkit.api.stylize

    path = tmp_path / "results.json"
    compare._store(path, {"settings": dataclasses.replace(tiny, steps=5).as_dict(), "runs": {}, "validation": None})
    monkeypatch.setattr(nstkit.api.stylize, "stylize", lambda *a, **o: pytest.fail("ran on mismatched settings"))
    with pytest.raises(NstkitError, match="made with other settings"):
        compare.run(tiny, path, progress=None)
    with pytest.raises(NstkitError, match="unknown method"):
        compare.run(dataclasses.replace(tiny, methods=("vanila",)), path, progress=None)
    with pytest.raises(NstkitError, match="add vanilla to the methods"):
        compare.run(dataclasses.replace(tiny, methods=("robust",)), path, progress=None)
    stored = {"settings": tiny.as_dict(), "runs": {}, "validation": None,
              "definitions": {**compare._definitions(tiny), "methods": {"vanilla": {"preset": "robust"}}}}
    compare._store(path, stored)
    with pytest.raises(NstkitError, match="other method options or metric constants"):
        compare.run(tiny, path, progress=None)


def test_a_stored_comparison_grows_by_new_methods_and_keeps_its_runs(tiny, tmp_path, monkeypatch):
    """The methods added at the end run; the stored ones are kept, not rerun. Their options changed, or any other
    setting: refused."""
    import dataclasses

    import nstkit.api.stylize

    path, older = tmp_path / "results.json", dataclasses.replace(tiny, methods=("vanilla",))
    kept = {compare._key("vanilla", tiny.pairs[0], 0): {"method": "vanilla", "pair": list(tiny.pairs[0]), "seed": 0,
                                                       "metrics": {"stored": 1.0}}}
    stored = {"settings": older.as_dict(), "runs": kept, "validation": {"passed": True},
              "definitions": compare._definitions(older)}
    compare._store(path, stored)
    real, calls = nstkit.api.stylize.stylize, []
    monkeypatch.setattr(nstkit.api.stylize, "stylize", lambda *a, **o: calls.append(o["preset"]) or real(*a, **o))
    results = compare.run(tiny, path, progress=None)
    assert calls == ["robust"] and results["runs"][compare._key("vanilla", tiny.pairs[0], 0)] == kept[
        compare._key("vanilla", tiny.pairs[0], 0)]
    assert json.loads(path.read_text())["settings"]["methods"] == ["vanilla", "robust"]
    for changed in ({**stored, "definitions": {**stored["definitions"], "methods": {"vanilla": {"preset": "conv"}}}},
                    {**stored, "settings": dataclasses.replace(older, steps=5).as_dict()}):
        compare._store(path, changed)
        with pytest.raises(NstkitError, match="other settings|other method options"):
            compare.run(tiny, path, progress=None)
    compare._store(path, {**stored, "settings": dataclasses.replace(tiny, methods=("robust", "vanilla")).as_dict()})
    with pytest.raises(NstkitError, match="other settings"):  # stored methods not first: not a growth
        compare.run(tiny, path, progress=None)


def test_a_method_named_for_a_rerun_runs_again_with_todays_options_and_the_others_are_kept(tiny, tmp_path,
                                                                                            monkeypatch):
    """VGG19 gained the tutorial's Adam: its stored runs (made under the seed's) go, the others stay; a changed
    method not named is refused, as before."""
    import dataclasses

    import nstkit.api.stylize

    path, both = tmp_path / "results.json", dataclasses.replace(tiny, methods=("vanilla", "robust"), seeds=(0,),
                                                                 pairs=tiny.pairs[:1])
    runs = {compare._key(m, both.pairs[0], 0): {"method": m, "pair": list(both.pairs[0]), "seed": 0,
                                                "metrics": {"stored": 1.0}} for m in both.methods}
    old = compare._definitions(both)
    old["methods"]["robust"] = {"preset": "robust", "learning_rate": 1.0}  # as if robust's options had changed
    compare._store(path, {"settings": both.as_dict(), "runs": runs, "validation": {"passed": True},
                          "definitions": old})
    with pytest.raises(NstkitError, match="other method options"):
        compare.run(both, path, progress=None)
    real, calls = nstkit.api.stylize.stylize, []
    monkeypatch.setattr(nstkit.api.stylize, "stylize", lambda *a, **o: calls.append(o) or real(*a, **o))
    results = compare.run(both, path, progress=None, rerun=("robust",))
    assert [call["preset"] for call in calls] == ["robust"] and "learning_rate" not in calls[0]
    assert results["runs"][compare._key("vanilla", both.pairs[0], 0)]["metrics"] == {"stored": 1.0}
    assert results["runs"][compare._key("robust", both.pairs[0], 0)]["metrics"]["seconds"] > 0
    assert json.loads(path.read_text())["definitions"] == compare._definitions(both)
    with pytest.raises(NstkitError, match="cannot rerun swag: not among both the stored comparison's methods"):
        compare.run(both, path, progress=None, rerun=("swag",))


def test_each_seed_gets_its_own_random_network_of_the_kind_asked_for():
    assert [compare.weights_for(w, 2) for w in ("random", "random:5", "random-kaiming", "imagenet")] == [
        "random:2", "random:2", "random-kaiming:2", "imagenet"]


def test_a_missing_or_broken_store_is_one_clear_error(tmp_path):
    with pytest.raises(NstkitError, match="run `python scripts/compare_methods.py`"):
        compare.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(NstkitError, match="is not a method comparison"):
        compare.load(tmp_path / "bad.json")


# ---- one source: the stored comparison, the README's table and notebook 06's verdict ------------------------------

def test_one_source_is_the_full_comparison_at_256_px():
    results = compare.load()
    assert results["settings"] == compare.FULL.as_dict()
    assert compare.complete_cells(results), "no cell has every method"


def test_one_source_for_the_readme_table():
    readme = (REPO / "README.md").read_text()
    block = readme.split(compare.README_START, 1)[1].split(compare.README_END, 1)[0]
    assert block.strip() == compare.markdown_table(compare.load()).strip(), \
        "README's table is stale: run python scripts/compare_methods.py --report-only"


def test_one_source_for_notebook_06s_verdict():
    notebook = json.loads((REPO / "notebooks" / "06_robust_resnet_methods.ipynb").read_text())
    cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"
             and "compare.verdict(" in "".join(cell["source"])]
    assert len(cells) == 1, "notebook 06 should print the verdict in one cell"
    shown = "".join("".join(output.get("text", "")) for output in cells[0]["outputs"])
    assert "NBVAL_CHECK_OUTPUT" in "".join(cells[0]["source"])  # nbval checks it again when it runs the notebook
    assert shown.strip() == "\n".join(f"- {line}" for line in compare.verdict(compare.load())).strip()


@pytest.mark.slow  # the comparison's bookkeeping: no TensorFlow API of its own
def test_a_run_stopped_inside_is_not_stored_as_if_it_had_its_budget(tiny, tmp_path, monkeypatch):
    import nstkit.api.stylize

    real = nstkit.api.stylize.stylize

    def stopped_early(*args, **options):
        result = real(*args, **options)
        result.record.stopped_early = True  # what Ctrl-C during the steps leaves
        return result

    monkeypatch.setattr(nstkit.api.stylize, "stylize", stopped_early)
    path = tmp_path / "results.json"
    with pytest.raises(KeyboardInterrupt):
        compare.run(tiny, path, progress=None)
    assert json.loads(path.read_text())["runs"] == {}


def _script(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(REPO / "scripts" / "compare_methods.py"), *args],
                          capture_output=True, text=True, timeout=300)


def test_the_script_reports_a_stored_comparison_and_names_a_missing_one_in_one_line(tmp_path):
    results = synthetic({"better": (-0.1, 0.05)}, noise=0.01)
    compare._store(tmp_path / "results.json", results)
    shown = _script("--report-only", "--out", str(tmp_path / "results.json"))
    assert shown.returncode == 0, shown.stderr
    assert "- better: by the gram distance it meets the target" in shown.stdout
    assert compare.made_by(results) in shown.stdout
    missing = _script("--report-only", "--out", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().startswith("compare_methods: no stored method comparison at")
    assert len(missing.stderr.strip().splitlines()) == 1
