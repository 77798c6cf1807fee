"""The method comparison: one stored result that the script's table, the README's table and notebook 06's
verdict are all read from, so they cannot disagree.

`run` stylises every pair with every method and seed at one size and step budget, scores each output
with every offline metric, and stores the lot in one JSON file after each run (an interrupted comparison
resumes where it stopped; a stored file made with other settings is refused, not mixed in). Before
any run it validates the weight-free patch distance (`metrics.validate_patch_distance`) and stores
that too: a metric that fails its validation is reported as failed beside the table.

The statistics treat the pairs as fixed strata and the seeds as the random factor: a confidence interval
resamples seeds within each pair (a stratified bootstrap), and a method is compared with `BASELINE`
on the same pair and seed, the same random network (a paired comparison).

With random weights a seed picks a different random backbone (``random:SEED``) as well as the jitter,
so the spread shows how much a result depends on the particular network; the Gram distance's judge
is a different, fixed random network (`metrics.JUDGE_WEIGHTS`). With ImageNet weights the seed changes
only the jitter.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nstkit.core.errors import NstkitError
from nstkit.core.presets import get_preset

# Each method is a set of stylize options on top of the shared budget (`Settings`). Each names its optimiser: the
# comparison was made with the seed's Adam and scipy's L-BFGS-B (nstkit's default became "auto" after it).
ADAM = {"optimizer": "adam"}
METHODS: dict[str, dict] = {
    "vanilla": {"preset": "vanilla", **ADAM},
    "robust": {"preset": "robust", **ADAM},
    "swag": {"preset": "swag", **ADAM},  # the paper's objective: Eq. 11 softmax on stages 4-5, its weights
    "swag lbfgs": {"preset": "swag", "optimizer": "lbfgsb"},  # ... and its optimiser
    "swag softmax2d": {"preset": "swag", "swag": "softmax2d", **ADAM},  # the code's first upload
    # nstkit's swag preset before issue #15: the relative-temperature softmax on stages 3-5, the seed's weights.
    "swag relative": {"preset": "swag", "swag": "softmax_relative", "content_weight": 1e2, "style_weight": 1e7,
                      "swag_layers": ["conv3_block4_out", "conv4_block6_out", "conv5_block3_out"],
                      "learning_rate": 2.0, **ADAM},
    "fourier": {"preset": "vanilla", "param": "fourier", "jitter": 2, **ADAM},
    "swag+fourier": {"preset": "swag", "param": "fourier", "jitter": 2, **ADAM},
    # The TF tutorial's whole recipe: its layers and weights (the preset) and its Adam, which the preset carries
    # (lr 0.02 and epsilon 0.1 on 0-1 pixels, written in caffe pixels): named here so that the definition says it.
    "vgg19": {"preset": "vgg19", "learning_rate": get_preset("vgg19").learning_rate,
              "epsilon": get_preset("vgg19").epsilon, **ADAM},
    "lbfgs": {"preset": "vanilla", "optimizer": "lbfgsb"},
    "wasserstein": {"preset": "vanilla", "style_loss": "wasserstein", **ADAM},
    "histogram": {"preset": "vanilla", "style_loss": "histogram", **ADAM},
    # Issue #26: the losses of the user studies' winners, and neural-style's per-layer gradient normalisation.
    "remd+self_similarity": {"preset": "vanilla", "style_loss": "remd", "content_loss": "self_similarity", **ADAM},
    "nn": {"preset": "vanilla", "style_loss": "nn", **ADAM},
    "mrf": {"preset": "vanilla", "style_loss": "mrf", **ADAM},
    "normalize gradients": {"preset": "vanilla", "normalize_gradients": True, **ADAM},
}
BASELINE = "vanilla"
PAIRS = (("astronaut.jpg", "hexagons.png"), ("chelsea.jpg", "mosaic.png"), ("coffee.jpg", "waves.png"),
         ("rocket.jpg", "strokes.png"))
# Lower is better for the distances, higher for the SSIMs.
METRICS = ("ssim_luminance", "ssim_edges", "gram_distance", "patch_distance", "color_histogram", "color_moments",
           "seconds")
HIGHER_IS_BETTER = {"ssim_luminance", "ssim_edges"}
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "method_comparison.json"
BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class Settings:
    """What every run of one comparison shares; a stored comparison is only resumed with the same."""

    max_dim: int
    steps: int
    seeds: tuple[int, ...]
    pairs: tuple[tuple[str, str], ...]
    methods: tuple[str, ...]
    weights: str = "random"  # "random": one seeded random network per seed (`weights_for`)
    precision: str = "float32"

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists, as the stored file has them


FULL = Settings(max_dim=256, steps=300, seeds=(0, 1, 2), pairs=PAIRS, methods=tuple(METHODS))
QUICK = Settings(max_dim=64, steps=3, seeds=(0, 1), pairs=PAIRS[:2], methods=tuple(METHODS))


def weights_for(weights: str, seed: int) -> str:
    """Random weights (of either kind, `core.config.RANDOM_WEIGHTS`): one network per seed. Anything else: the
    same weights for every seed."""
    from nstkit.core.config import RANDOM_WEIGHTS, parse_weights

    kind = parse_weights(weights, check_file=False)[0]
    return f"{kind}:{seed}" if kind in RANDOM_WEIGHTS else weights


def _definitions(settings: Settings) -> dict:
    from nstkit.measure import metrics

    return json.loads(json.dumps({
        "methods": {method: METHODS[method] for method in settings.methods},
        "patch_distance": {"size": metrics.PATCH_SIZE, "scales": metrics.PATCH_SCALES, "samples": metrics.PATCH_SAMPLES,
                           "projections": metrics.PATCH_PROJECTIONS, "shuffle_tile": metrics.SHUFFLE_TILE,
                           "blend_steps": metrics.BLEND_STEPS}}))


def _with_new_methods(results: dict, wanted: dict, definitions: dict) -> dict:
    """A stored comparison grown by the methods ``wanted`` adds, when that is all that differs: the same
    size, steps, seeds, pairs, weights and precision, its methods first and unchanged (the same options),
    the same metric constants. Then only the new methods' runs are made, beside the stored ones; anything
    else is returned as it is, for `run` to refuse."""
    settings, stored = results.get("settings") or {}, results.get("definitions")
    methods = settings.get("methods", [])
    same_otherwise = {k: v for k, v in settings.items() if k != "methods"} == \
        {k: v for k, v in wanted.items() if k != "methods"}
    if not same_otherwise or methods == wanted["methods"] or wanted["methods"][:len(methods)] != methods:
        return results
    if stored is not None and ({k: v for k, v in stored.items() if k != "methods"} !=
                               {k: v for k, v in definitions.items() if k != "methods"}
                               or any(stored["methods"][m] != definitions["methods"][m] for m in methods)):
        return results
    return {**results, "settings": wanted,
            **({"definitions": definitions} if stored is not None else {})}


def _with_methods_rerun(results: dict, rerun: Sequence[str], definitions: dict) -> dict:
    """A stored comparison whose methods ``rerun`` lose their runs and take today's options: asked for by name
    (a method whose definition changed, as VGG19's when it gained the tutorial's Adam), never implied. The other
    methods' runs and options are kept; any other difference is left for `run` to refuse."""
    if not rerun:
        return results
    unknown = [method for method in rerun if method not in results["settings"]["methods"]
               or method not in definitions["methods"]]
    if unknown:
        raise NstkitError(f"cannot rerun {', '.join(unknown)}: not among both the stored comparison's methods "
                          f"({', '.join(results['settings']['methods'])}) and those asked for now")
    stored = results.get("definitions") or definitions  # a store from before definitions were kept: today's
    return {**results, "definitions": {**stored, "methods": {
                method: definitions["methods"][method] if method in rerun else options
                for method, options in stored["methods"].items()}},
            "runs": {key: run for key, run in results["runs"].items() if run["method"] not in rerun}}


def _key(method: str, pair: Sequence[str], seed: int) -> str:
    return f"{method} | {pair[0]} x {pair[1]} | seed {seed}"


def load(path: os.PathLike | str = RESULTS) -> dict:
    """A stored comparison, or one clear error naming the file and how to make it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NstkitError(f"no stored method comparison at {path}: run `python scripts/compare_methods.py` "
                          "(or --quick) to make it") from None
    except json.JSONDecodeError as error:
        raise NstkitError(f"{path} is not a method comparison ({error.msg}, line {error.lineno}): move it "
                          "away and rerun scripts/compare_methods.py") from None


def _store(path: Path, results: dict) -> None:
    from nstkit.core.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(results, indent=1, sort_keys=True) + "\n")


def run(settings: Settings, path: os.PathLike | str = RESULTS, *, images: os.PathLike | str | None = None,
        progress: Callable[[str], None] | None = print, rerun: Sequence[str] = ()) -> dict:
    """Run every (seed, pair, method) of ``settings`` not already stored at ``path``; return the results.

    The results are stored after every run, atomically, so an interrupted comparison loses one run at
    most and resumes where it stopped. Pairs are the outer loop, then seeds, then methods: a comparison cut
    short has whole pairs, each with all its seeds and methods, so its intervals mean what they say.
    ``images``: a folder for each output and its run record. ``rerun``: stored methods to run again with
    today's options (their old runs dropped).
    """
    from nstkit.measure.metrics import (
        color_distance,
        content_ssim,
        gram_distance,
        patch_distance,
        validate_patch_distance,
    )
    from nstkit.api.stylize import stylize
    from nstkit.media.images import bundled_image
    from nstkit.network.device import cpu_model

    unknown = [method for method in settings.methods if method not in METHODS]
    if unknown:
        raise NstkitError(f"unknown method(s) {', '.join(unknown)}: choose from {', '.join(METHODS)}")
    if BASELINE not in settings.methods:
        raise NstkitError(f"every method is compared with {BASELINE}: add {BASELINE} to the methods")
    path = Path(path)
    wanted = settings.as_dict()
    if path.exists():
        results = load(path)
        results = _with_methods_rerun(results, rerun, _definitions(settings))  # first: a rerun may come with
        results = _with_new_methods(results, wanted, _definitions(settings))  # new methods in one call
        if results.get("settings") != wanted:
            raise NstkitError(f"{path} holds a comparison made with other settings ({results.get('settings')}): "
                              "choose another --out, or move the file away to start again")
    else:
        results = {"settings": wanted, "runs": {}, "validation": None}
    # What the settings do not say: each method's options and the patch distance's constants. A store made
    # before they were recorded takes today's; one made with others is refused, never mixed.
    definitions = _definitions(settings)
    if results.setdefault("definitions", definitions) != definitions:
        raise NstkitError(f"{path} was made with other method options or metric constants "
                          f"({results['definitions']}): choose another --out, or move the file away")
    if results["validation"] is None:
        if progress:
            progress(f"validating the patch distance on {len(settings.pairs)} pairs at {settings.max_dim} px")
        results["validation"] = validate_patch_distance(settings.pairs, settings.max_dim)
        _store(path, results)
    cells = [(seed, pair, method) for pair in settings.pairs for seed in settings.seeds
             for method in settings.methods]
    todo = [cell for cell in cells if _key(cell[2], cell[1], cell[0]) not in results["runs"]]
    if progress and len(todo) < len(cells):
        progress(f"resuming {path}: {len(cells) - len(todo)} of {len(cells)} runs stored")
    for number, (seed, pair, method) in enumerate(todo, 1):
        content, style = (bundled_image(name, settings.max_dim) for name in pair)
        weights = weights_for(settings.weights, seed)
        started = time.perf_counter()
        result = stylize(content, style, steps=settings.steps, max_dim=settings.max_dim, seed=seed,
                         weights=weights, precision=settings.precision, progress=False, **METHODS[method])
        seconds = time.perf_counter() - started
        if result.stopped_early:  # Ctrl-C inside the run: its image is not the budget's, so it is not stored
            raise KeyboardInterrupt
        output = result.image
        metrics = {**content_ssim(output, content), "gram_distance": gram_distance(output, style,
                                                                                   optimised_with=weights),
                   "patch_distance": patch_distance(output, style, seed=seed), **color_distance(output, style),
                   "seconds": seconds, "seconds_per_step": result.record["seconds_per_step"]}
        if images is not None:
            folder = Path(images)
            folder.mkdir(parents=True, exist_ok=True)
            result.save(folder / f"{method.replace(' ', '_').replace('+', '_')}-{Path(pair[0]).stem}-"
                                 f"{Path(pair[1]).stem}-seed{seed}.png")
        results["runs"][_key(method, pair, seed)] = {"method": method, "pair": list(pair), "seed": seed,
                                                     "metrics": metrics, "device": result.record["device"],
                                                     "cpu": cpu_model()}
        _store(path, results)
        if progress:
            progress(f"[{number}/{len(todo)}] {method:20} {pair[0]:>13} x {pair[1]:<12} seed {seed}: "
                     f"gram {metrics['gram_distance']:.3f} patch {metrics['patch_distance']:.4f} "
                     f"ssim {metrics['ssim_luminance']:.3f} ({seconds:.0f} s)")
    return results


# ---- statistics -----------------------------------------------------------------------------------------------

def complete_cells(results: dict) -> list[tuple[tuple[str, str], int]]:
    """The (pair, seed) cells every method of the comparison has a run for, in pairs with at least two such
    seeds (an interval needs a spread): all statistics use these only, so a comparison cut short still
    compares like with like."""
    settings = results["settings"]
    runs = results["runs"]
    least = min(2, len(settings["seeds"]))
    cells = []
    for pair in settings["pairs"]:
        seeds = [seed for seed in settings["seeds"]
                 if all(_key(method, pair, seed) in runs for method in settings["methods"])]
        if len(seeds) >= least:
            cells += [(tuple(pair), seed) for seed in seeds]
    return cells


def _values(results: dict, method: str, metric: str, cells) -> dict[tuple[str, str], np.ndarray]:
    """Per pair, the metric's values over that pair's seeds, in seed order."""
    by_pair: dict[tuple[str, str], list[float]] = {}
    for pair, seed in cells:
        by_pair.setdefault(pair, []).append(results["runs"][_key(method, pair, seed)]["metrics"][metric])
    return {pair: np.asarray(values, np.float64) for pair, values in by_pair.items()}


def stratified_bootstrap(by_pair: dict, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                         level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean over pairs of each pair's mean over seeds, and its percentile bootstrap
    interval with the seeds resampled within each pair (the pairs are fixed strata).

    With random weights a seed is one network for every pair, so seeds are crossed with pairs: where every
    pair has the same seeds (in the same order), one draw of seed indices serves all pairs, keeping that
    correlation. With 3 seeds the interval is rough (10 distinct resamples; a percentile bootstrap's
    spread is (n-1)/n of the true one): read it as the spread of this design, not an exact 95%."""
    rng = np.random.default_rng(seed)
    groups = list(by_pair.values())
    mean = float(np.mean([group.mean() for group in groups]))
    if min(len(group) for group in groups) < 2:
        return mean, float("nan"), float("nan")  # one seed: no spread to resample
    crossed = len({len(group) for group in groups}) == 1
    shared = rng.integers(len(groups[0]), size=(samples, len(groups[0]))) if crossed else None
    draws = np.zeros(samples)
    for group in groups:
        picks = shared if crossed else rng.integers(len(group), size=(samples, len(group)))
        draws += group[picks].mean(axis=1)
    draws /= len(groups)
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return mean, float(low), float(high)


def interval(results: dict, method: str, metric: str) -> tuple[float, float, float]:
    """(mean, low, high) of ``method``'s ``metric`` over the complete cells, with its 95% interval."""
    return stratified_bootstrap(_values(results, method, metric, complete_cells(results)))


def paired(results: dict, method: str, metric: str, baseline: str = BASELINE) -> tuple[float, float, float]:
    """(mean, low, high) of ``method`` minus ``baseline`` on the same pair and seed."""
    cells = complete_cells(results)
    ours, theirs = _values(results, method, metric, cells), _values(results, baseline, metric, cells)
    return stratified_bootstrap({pair: ours[pair] - theirs[pair] for pair in ours})


def summary(results: dict) -> list[dict]:
    """One row per method: each metric's mean with its 95% interval, and the paired differences from
    `BASELINE` in the two style distances and the content SSIM."""
    cells = complete_cells(results)
    if not cells:
        raise NstkitError("the stored comparison has no (pair, seed) with every method run yet: "
                          "run scripts/compare_methods.py to fill it")
    rows = []
    for method in results["settings"]["methods"]:
        row = {"method": method}
        for metric in ("gram_distance", "patch_distance", "ssim_luminance", "color_histogram", "seconds"):
            mean, low, high = stratified_bootstrap(_values(results, method, metric, cells))
            row[metric] = _interval(mean, low, high, metric)
        for metric in ("gram_distance", "patch_distance", "ssim_luminance"):
            short = {"gram_distance": "gram", "patch_distance": "patch", "ssim_luminance": "ssim"}[metric]
            row[f"Δ{short} vs {BASELINE}"] = ("—" if method == BASELINE else
                                              _interval(*paired(results, method, metric), metric, signed=True))
        rows.append(row)
    return rows


def _interval(mean: float, low: float, high: float, metric: str, signed: bool = False) -> str:
    digits = {"seconds": "{:.0f}", "patch_distance": "{:.4f}"}.get(metric, "{:.3f}")
    form = digits.replace("{:", "{:+") if signed else digits
    if np.isnan(low):
        return f"{form.format(mean)} [one seed]"
    return f"{form.format(mean)} [{form.format(low)}, {form.format(high)}]"


def _judgement(results: dict, method: str, distance: str) -> str:
    """Whether one challenger meets the target by one style distance, against `BASELINE`, and if not why."""
    _, _, distance_high = paired(results, method, distance)
    _, _, ssim_high = paired(results, method, "ssim_luminance")
    if np.isnan(distance_high):
        return "cannot be judged yet (one seed per pair)"
    if distance_high >= 0:
        return "does NOT meet the target (not surely nearer the style)"
    if ssim_high < 0:
        return "does NOT meet the target (nearer the style, but surely less content)"
    return "meets the target"


def meets_target(results: dict, method: str, distance: str) -> bool:
    """Whether ``method`` meets the target by ``distance`` (`verdict`'s rule, as a value to compute with)."""
    return _judgement(results, method, distance) == "meets the target"


def verdict(results: dict) -> list[str]:
    """The target, checked per challenger and per style distance: surely nearer the style than `BASELINE`
    (the whole 95% interval of the paired difference below 0) and not surely less content (the SSIM
    difference's interval reaching 0 or above)."""
    lines = []
    for method in results["settings"]["methods"]:
        if method == BASELINE:
            continue
        parts = [f"by the {distance.split('_')[0]} distance it {_judgement(results, method, distance)} "
                 f"(Δ {_interval(*paired(results, method, distance), distance, signed=True)})"
                 for distance in ("gram_distance", "patch_distance")]
        ssim = _interval(*paired(results, method, "ssim_luminance"), "ssim_luminance", signed=True)
        lines.append(f"{method}: {'; '.join(parts)}; ΔSSIM {ssim}")
    return lines


def agreement(results: dict) -> dict:
    """Kendall's tau between the method rankings by the held-out Gram distance and by the patch distance."""
    from scipy.stats import kendalltau

    cells = complete_cells(results)
    methods = results["settings"]["methods"]
    # The table's mean (over pairs of each pair's mean over seeds), so the rankings are the table's order.
    means = {metric: [np.mean([values.mean() for values in _values(results, method, metric, cells).values()])
                      for method in methods] for metric in ("gram_distance", "patch_distance")}
    tau, p_value = kendalltau(means["gram_distance"], means["patch_distance"])
    order = lambda metric: [methods[i] for i in np.argsort(means[metric], kind="stable")]  # noqa: E731
    return {"tau": float(tau), "p_value": float(p_value), "by_gram": order("gram_distance"),
            "by_patch": order("patch_distance")}


def validation_failures(results: dict) -> list[str]:
    """One line per pair on which the patch distance failed its validation (none: it passed)."""
    lines = []
    for check in results["validation"]["pairs"]:
        what = [name for name, ok in (("ranking", check["ranked"]), ("monotone blend", check["monotone"])) if not ok]
        if what:
            lines.append(f"{' x '.join(check['pair'])}: {' and '.join(what)} failed (other crop "
                         f"{check['other_crop']:.4f}, shuffled {check['shuffled']:.4f}, content "
                         f"{check['content']:.4f}; blend {', '.join(f'{v:.4f}' for v in check['blend'].values())})")
    return lines


def validation_report(results: dict) -> str:
    validation = results["validation"]
    failures = validation_failures(results)
    head = (f"patch distance validation at {validation['size']} px on {len(validation['pairs'])} pairs: "
            + ("PASSED (another crop of the style < its tiles shuffled < the content; falls at every quarter "
               "of a content-to-style blend)" if not failures else "FAILED"))
    rows = [f"  {' x '.join(c['pair'])}: other crop {c['other_crop']:.4f}, shuffled {c['shuffled']:.4f}, "
            f"content {c['content']:.4f}; blend t=0..1 by tenths "
            + " ".join(f"{v:.4f}" for v in c["blend_tenths"]) for c in validation["pairs"]]
    return "\n".join([head, *rows, *(f"  {line}" for line in failures)])


def made_by(results: dict) -> str:
    """Which weights, size and budget made the comparison, in one line."""
    settings = results["settings"]
    cells = complete_cells(results)
    weights = ("random weights (one seeded random ResNet-50 per seed), NOT ImageNet"
               if settings["weights"].startswith("random") else f"weights {settings['weights']}")
    total = len(settings["pairs"]) * len(settings["seeds"])
    hours = sum(run["metrics"]["seconds"] for run in results["runs"].values()) / 3600
    return (f"{len(settings['methods'])} methods x {len(cells)} of {total} (pair, seed) cells, "
            f"{settings['steps']} steps at {settings['max_dim']} px, {settings['precision']}; {weights}; "
            f"Gram distance judged by a held-out random ResNet-50; {hours:.1f} h of runs{machines(results)}")


def machines(results: dict) -> str:
    """Which machines made the runs (stored since issue #26; earlier runs did not say): seconds compare
    fairly only between runs of one machine, so a comparison made on several says so."""
    counts: dict[str, list[str]] = {}
    for run in results["runs"].values():
        machine = (f"{run['device']}: {run['cpu']}" if "cpu" in run else run.get("device", "machine not recorded"))
        counts.setdefault(machine, []).append(run["method"])
    if len(counts) < 2:
        return "" if not counts or "machine not recorded" in counts else f"; on {next(iter(counts))}"
    order = {method: index for index, method in enumerate(results["settings"]["methods"])}
    parts = []  # in the settings' method order, whatever order the runs were stored in (the file sorts its keys)
    for machine, methods in sorted(counts.items(), key=lambda item: min(order.get(m, len(order)) for m in item[1])):
        names = sorted(set(methods), key=lambda m: order.get(m, len(order)))
        parts.append(f"{machine} ({len(methods)} runs" + (f": {', '.join(names)})" if len(names) <= 4 else ")"))
    return "; runs on " + " and ".join(parts) + ": compare seconds only within one machine"


def report(results: dict) -> str:
    """The whole comparison as text: what made it, the table, the verdicts, the agreement, the validation."""
    from nstkit.ui.notebook import table

    tau = agreement(results)
    return "\n".join([
        f"# {made_by(results)}", "", table(summary(results)), "",
        "Verdict (95% intervals of paired differences from vanilla, same pair and seed):",
        *(f"- {line}" for line in verdict(results)), "",
        f"Rankings agree? Kendall tau {tau['tau']:+.2f} (p {tau['p_value']:.2g}) between the Gram and patch "
        "distances' method rankings", f"  by Gram:  {', '.join(tau['by_gram'])}",
        f"  by patch: {', '.join(tau['by_patch'])}", "", validation_report(results)])


# ---- the README's copy ----------------------------------------------------------------------------------------
README_START = "<!-- method-comparison:start -->"
README_END = "<!-- method-comparison:end -->"


def markdown_table(results: dict) -> str:
    """The README's table, made from the stored results only."""
    rows = summary(results)
    columns = list(rows[0])
    lines = [f"_{made_by(results)}._", "", "| " + " | ".join(columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows]
    tau = agreement(results)
    failures = validation_failures(results)
    lines += ["", f"Patch distance validation: {'passed' if not failures else 'FAILED on ' + str(len(failures)) + ' pair(s)'}"
              f" at {results['validation']['size']} px. Gram and patch rankings: Kendall tau {tau['tau']:+.2f} "
              f"(p {tau['p_value']:.2g})."]
    return "\n".join(lines)


def readme_with_table(readme: str, results: dict) -> str:
    """``readme`` with the block between the markers replaced by `markdown_table`."""
    if README_START not in readme or README_END not in readme:
        raise NstkitError(f"README.md has no {README_START} ... {README_END} block to put the table in")
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{markdown_table(results)}\n{README_END}{tail}"
