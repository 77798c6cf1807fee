"""The `nstkit` command line: stylize, estimate, sweep, layers, presets.

Every flag maps to one `StyleConfig` field and shows its default in --help.
All input is checked before TensorFlow is imported, so a typo costs a
fraction of a second and one line on stderr (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
from pathlib import Path

from .config import COLOR_MODES, PARAMETERIZATIONS, SWAG_VARIANTS, StyleConfig
from .errors import NstkitError
from .folding import PRECISIONS
from .layers import BACKBONES, CATALOGS, LAYER_KINDS, PRESET_NAMES, all_presets, layers_to_spec
from .quiet import import_tensorflow_quietly

DEFAULTS = StyleConfig()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2) like every other nstkit error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show "(default: x)" only where there is a default to show."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


def _share_flags(source: argparse.ArgumentParser, target: argparse.ArgumentParser, *flags: str,
                 unset: bool = False) -> None:
    """Give ``target`` some of ``source``'s flags: the same action objects (type, choices, default, help),
    as argparse's ``parents=`` does, so each flag is defined once.

    ``unset`` shares copies whose default is None, so ``target`` can tell "not given" from "given the
    default" (a sweep's grid may set the field instead); their help still names the default.
    """
    actions = {option: action for action in source._actions for option in action.option_strings}
    for flag in flags:
        action = actions[flag]
        if unset and action.default is not None:
            action = copy.copy(action)
            action.help = f"{action.help} (default: {action.default})"
            action.default = None
        target._add_action(action)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nstkit", description="Neural style transfer on a ResNet-50 backbone.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("stylize", help="stylize CONTENT in the style of STYLE",
                              formatter_class=_HelpFormatter)
    run.add_argument("content", help="content image (JPEG, PNG, WebP, BMP, TIFF)")
    run.add_argument("style", nargs="+", help="style image(s); several are blended (see --style-blend)")
    run.add_argument("-o", "--output", required=True, help="output image, .png or .jpg; its run record goes "
                     "beside it as .json")
    run.add_argument("--preset",
                     help=f"layer preset: {', '.join(PRESET_NAMES)} (conv_relu:0.25 puts 25%% of the style "
                          "weight on ReLU layers; default: robust, or vgg19 with --backbone vgg19)")
    run.add_argument("--backbone", choices=BACKBONES, help="network (default: resnet50; vgg19 is the baseline)")
    run.add_argument("--style-layers", help="override the preset's style layers: 'name,name:2,...' "
                     "(':w' weights a layer; a repeated name adds up)")
    run.add_argument("--content-layers", help="override the preset's content layers, same syntax")
    run.add_argument("--content-weight", type=_number, help="content loss weight (default: the preset's, else 1e2)")
    run.add_argument("--style-weight", type=_number, help="style loss weight (default: the preset's, else 1e7)")
    run.add_argument("--tv-weight", type=_number, default=DEFAULTS.tv_weight, help="total-variation weight")
    run.add_argument("--lr", "--learning-rate", dest="learning_rate", type=_number,
                     help="Adam learning rate (default: 20 in caffe pixel units; 0.05 with --param fourier)")
    run.add_argument("--beta1", dest="beta_1", type=_number, default=DEFAULTS.beta_1, help="Adam beta_1")
    run.add_argument("--beta2", dest="beta_2", type=_number, default=DEFAULTS.beta_2, help="Adam beta_2")
    run.add_argument("--epsilon", type=_number, default=DEFAULTS.epsilon, help="Adam epsilon")
    run.add_argument("--steps", type=_number, default=DEFAULTS.steps, help="optimisation steps")
    run.add_argument("--max-dim", type=_number, default=DEFAULTS.max_dim,
                     help="downscale images so the long side is at most this many px")
    run.add_argument("--init", default=DEFAULTS.init, help="start from 'content', 'noise' or an image path")
    run.add_argument("--seed", type=_number, default=DEFAULTS.seed, help="seed for noise init")
    run.add_argument("--weights", default=DEFAULTS.weights,
                     help="'imagenet' (downloaded once to the Keras cache), a local .h5 path, or "
                          "'random[:SEED]' for offline runs")
    beyond = run.add_argument_group("beyond the seed")
    beyond.add_argument("--swag", choices=SWAG_VARIANTS,
                        help="smooth activations before the losses (Wang et al. 2021): softmax over C*H*W, "
                             "channel_softmax over channels, or scale (default: the preset's, else none)")
    beyond.add_argument("--swag-temperature", type=_number, default=DEFAULTS.swag_temperature,
                        help="softmax temperature T")
    beyond.add_argument("--swag-alpha", type=_number, default=DEFAULTS.swag_alpha, help="factor for --swag scale")
    beyond.add_argument("--swag-layers", help="layers to smooth, 'a,b,...' (default: those in stages 3-5)")
    beyond.add_argument("--param", choices=PARAMETERIZATIONS, default=DEFAULTS.param,
                        help="optimise pixels, or a colour-decorrelated Fourier spectrum (Mordvintsev et al. 2018)")
    beyond.add_argument("--jitter", type=_number, default=DEFAULTS.jitter,
                        help="shift the image by up to this many px each step")
    beyond.add_argument("--normalize-style-layers", action="store_true",
                        help="divide each style layer's loss by its target's scale (He et al. 2016)")
    beyond.add_argument("--preserve-color", choices=COLOR_MODES, default=DEFAULTS.preserve_color,
                        help="keep the content's colours: 'luminance' transfers luminance only, 'match' gives the "
                             "style the content's colour statistics first (Gatys et al. 2017)")
    beyond.add_argument("--coarse-levels", type=_number, default=DEFAULTS.coarse_levels,
                        help="first optimise at 1/2, 1/4, ... of the size (steps // 2 each), then upsample")
    beyond.add_argument("--style-blend", help="weights of several style images, e.g. 0.7,0.3 (default: equal)")
    run.add_argument("--save-every", type=_positive_int, metavar="N",
                     help="also save the current image every N steps as OUTPUT_stepNNNNN.png")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    speed = run.add_argument_group("speed and memory")
    speed.add_argument("--precision", choices=PRECISIONS, default=DEFAULTS.precision,
                       help="the network's compute precision; bfloat16 halves the activations' memory "
                            "(the image and the losses stay float32)")
    speed.add_argument("--jit-compile", action=argparse.BooleanOptionalAction,
                       help="compile the step with XLA (default: on with a GPU, off on CPUs)")
    tiles = run.add_argument_group("huge images (tiles)")
    tiles.add_argument("--tile-size", type=_number, metavar="PX",
                       help="stylise in tiles of PX px, shifted every step, for images too large for one pass "
                            "(e.g. 512 with --max-dim 4096); --steps then counts the tiled steps at full size")
    tiles.add_argument("--tile-overlap", type=_number, default=DEFAULTS.tile_overlap, metavar="PX",
                       help="px of context each tile's window reaches past the tile on every side")
    tiles.add_argument("--tile-start-dim", type=_number, default=DEFAULTS.tile_start_dim, metavar="PX",
                       help="first stylise in one pass at this long side, then refine with tiles; 0: no start")
    tiles.add_argument("--tile-start-steps", type=_number, default=DEFAULTS.tile_start_steps, metavar="N",
                       help="steps of that one-pass start")

    # `nstkit estimate`: the predicted peak memory of a stylize run (nstkit/memory.py), with stylize's own flags.
    estimate = commands.add_parser("estimate", formatter_class=_HelpFormatter,
                                   help="predict the peak memory of a stylize run before starting it")
    estimate.add_argument("content", help="content image (its size after --max-dim decides the memory)")
    estimate.add_argument("--style", help="style image, if its size differs from the content's")
    _share_flags(run, estimate, "--max-dim", "--preset", "--backbone", "--style-layers", "--content-layers",
                 "--precision")

    layers = commands.add_parser("layers", help="list the layers usable as features")
    layers.add_argument("--backbone", choices=BACKBONES, default="resnet50", help="network")
    layers.add_argument("--kind", choices=LAYER_KINDS, help="only this kind of layer")
    layers.add_argument("--stage", type=int, choices=range(1, 6), help="only this stage (1 = stem)")

    commands.add_parser("presets", help="list the layer presets")

    # `nstkit sweep`: one run per point of a grid, on local processes or a Dask cluster (nstkit/sweep.py).
    sweep_parser = commands.add_parser(
        "sweep", formatter_class=_HelpFormatter,
        help="stylize once per point of a parameter grid; write a table, a contact sheet and every image")
    sweep_parser.add_argument("content", help="content image")
    sweep_parser.add_argument("style", nargs="+", help="style image(s); several are blended")
    sweep_parser.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2",
                              help="a StyleConfig field and its values, e.g. style_weight=1e6,1e7 or "
                                   "preset=robust,vanilla; repeat for more fields: every combination runs, the "
                                   "last --grid varying fastest. Layer lists and style_blend separate values "
                                   "with ';'. One value fixes a field for every run")
    sweep_parser.add_argument("-o", "--output-dir", dest="out_dir", required=True, metavar="DIR",
                              help="folder (created if missing) for every image and run record, sweep.csv, "
                                   "contact_sheet.png and sweep.json")
    sweep_parser.add_argument("--workers", type=_positive_int, metavar="N",
                              help="local worker processes (default: half the cores, at least 1)")
    sweep_parser.add_argument("--scheduler", metavar="ADDRESS",
                              help="run the jobs on a Dask cluster, e.g. tcp://host:8786; its workers must "
                                   "see the input paths and have nstkit (and the weights) installed")
    sweep_parser.add_argument("--overwrite", action="store_true",
                              help="replace the outputs of an earlier sweep in the folder")
    _share_flags(run, sweep_parser, "--preset", "--steps", "--max-dim", "--weights", "--seed", "--content-weight",
                 "--style-weight", "--lr", "--init", unset=True)
    sweep_parser.add_argument("-q", "--quiet", action="store_true", help="no line per finished run")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "layers":
            return _list_layers(args)
        if args.command == "presets":
            return _list_presets()
        if args.command == "estimate":
            return _estimate_command(args)
        if args.command == "sweep":
            return _sweep_command(args)
        return _stylize(args)
    except NstkitError as error:
        print(f"nstkit: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("nstkit: interrupted", file=sys.stderr)
        return 130


def _numbers(flag: str, text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise NstkitError(f"--{flag} must be numbers separated by commas, e.g. 0.7,0.3; got {text!r}") from None


def _whole(name: str, value: float) -> int:
    if not math.isfinite(value) or value != int(value):
        raise NstkitError(f"--{name.replace('_', '-')} must be a whole number, got {value:g}")
    return int(value)


def _stylize(args: argparse.Namespace) -> int:
    from .images import check_output_path, load_image

    config = StyleConfig(
        preset=args.preset, style_layers=args.style_layers, content_layers=args.content_layers,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        learning_rate=args.learning_rate, beta_1=args.beta_1, beta_2=args.beta_2, epsilon=args.epsilon,
        steps=_whole("steps", args.steps), max_dim=_whole("max_dim", args.max_dim),
        init=args.init, seed=_whole("seed", args.seed), weights=args.weights, backbone=args.backbone,
        swag=args.swag, swag_temperature=args.swag_temperature, swag_alpha=args.swag_alpha,
        swag_layers=args.swag_layers.split(",") if args.swag_layers else None, param=args.param,
        jitter=_whole("jitter", args.jitter), normalize_style_layers=args.normalize_style_layers,
        preserve_color=args.preserve_color, coarse_levels=_whole("coarse_levels", args.coarse_levels),
        style_blend=_numbers("style-blend", args.style_blend),
        precision=args.precision, jit_compile=args.jit_compile,
        tile_size=None if args.tile_size is None else _whole("tile_size", args.tile_size),
        tile_overlap=_whole("tile_overlap", args.tile_overlap),
        tile_start_dim=_whole("tile_start_dim", args.tile_start_dim),
        tile_start_steps=_whole("tile_start_steps", args.tile_start_steps),
    )
    resolved = config.resolved()
    styles = args.style
    init = (args.init,) if args.init not in ("content", "noise") else ()
    inputs = (args.content, *styles, *init)
    output = check_output_path(args.output, inputs)
    if resolved.style_blend and len(resolved.style_blend) != len(styles):
        raise NstkitError(f"--style-blend has {len(resolved.style_blend)} weights for {len(styles)} style image(s)")
    # fail on a bad image before loading TensorFlow
    content_shape = load_image(args.content, resolved.max_dim, what="content image").shape[:2]
    style_shapes = [load_image(style, resolved.max_dim, what="style image").shape[:2] for style in styles]
    for path in init:
        load_image(path, resolved.max_dim, what="init image", check_min_size=False)
    from .backbone import parse_weights

    parse_weights(resolved.weights)

    import_tensorflow_quietly()
    if not resolved.tile_size:  # a tiled run holds one window's activations, not the whole image's
        _warn_if_short_of_memory(resolved, content_shape, max(style_shapes, key=lambda shape: shape[0] * shape[1]))
    from .optimize import stylize  # routes tile_size to nstkit/tiling.py itself

    callbacks = []
    bar = None if args.quiet else _progress_bar(resolved.steps)
    if bar is not None:
        callbacks.append(bar)
    if args.save_every:
        callbacks.append(_snapshot_saver(output, args.save_every, inputs, resolved))
    try:
        result = stylize(args.content, styles if len(styles) > 1 else styles[0], config, callbacks=callbacks)
    finally:
        if bar is not None:
            bar.close()
    saved = result.save(output, protect=inputs)
    record = result.record
    planned = record.get("steps_planned", resolved.steps)  # a tiled run adds its one-pass start's steps
    status = (f"stopped at step {record['steps_run']} of {planned}; saved the best image so far"
              if result.stopped_early else f"ran {record['steps_run']} steps")
    print(f"nstkit: {status}: {saved} (best after {record['best_step']} updates, "
          f"loss {record['best_loss']:.4g}) and {saved.with_suffix('.json')}; "
          f"weights: {record['weights']['description']}")
    return 0


class _progress_bar:
    """A tqdm bar with the weighted loss terms and an ETA, as a stylize callback.

    Opened at the first step, so model loading (and a failed ImageNet download) prints no empty bar.
    """

    def __init__(self, steps: int):
        self.steps = steps
        self.bar = None

    def __call__(self, progress) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=progress.steps, unit="step", dynamic_ncols=True, file=sys.stderr)
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in progress.losses.items()}, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _snapshot_saver(output: Path, every: int, inputs: tuple, config: StyleConfig):
    from .images import save_image
    from .record import build_record, write_record

    def save_snapshot(progress) -> None:
        if progress.step % every:
            return
        path = output.with_name(f"{output.stem}_step{progress.step:05d}{output.suffix}")
        save_image(path, progress.image(), protect=inputs)
        write_record(path, build_record(config=config.to_dict(), snapshot_of=str(output), step=progress.step,
                                        losses=progress.losses, weights=progress.weights))

    return save_snapshot


def _sweep_command(args: argparse.Namespace) -> int:
    """`nstkit sweep`: the grid, the inputs and the folder are checked before any worker (or TensorFlow) starts.

    Exit status 1 if some runs failed (their rows say why), 2 for bad input.
    """
    from .sweep import dask_client, expand_grid, parse_grid, short_value, sweep

    grid = parse_grid(args.grid)
    options = {"preset": args.preset, "weights": args.weights, "init": args.init,
               "content_weight": args.content_weight, "style_weight": args.style_weight,
               "learning_rate": args.learning_rate,
               **{name: _whole(name, getattr(args, name)) for name in ("steps", "max_dim", "seed")
                  if getattr(args, name) is not None}}
    options = {name: value for name, value in options.items() if value is not None}
    jobs = expand_grid(grid, **options)  # a bad grid costs no connection to a scheduler
    if args.scheduler and args.workers:
        raise NstkitError("--workers sizes the local pool; with --scheduler, the Dask workers you started run the jobs")
    styles = args.style if len(args.style) > 1 else args.style[0]
    finished = []

    def report(row: dict) -> None:
        finished.append(row)
        if not args.quiet:
            outcome = (f"failed: {row['error']}" if row.get("error") else
                       f"loss {row['best_loss']:.4g}, {row['seconds_per_step']:.3g} s/step")
            label = " ".join(f"{key}={short_value(row[key])}" for key in grid)
            print(f"nstkit: run {len(finished)}/{len(jobs)} ({label}) {outcome}", file=sys.stderr, flush=True)

    run = dict(out_dir=args.out_dir, overwrite=args.overwrite, on_row=report, **options)
    if args.scheduler:
        with dask_client(args.scheduler) as client:
            result = sweep(args.content, styles, grid, executor=client.get_executor(), **run)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the worker processes inherit it
        result = sweep(args.content, styles, grid, workers=args.workers, **run)
    columns = ["job", *grid, "final_content", "final_style", "best_loss", "seconds_per_step", "output",
               *(["error"] if result.failed else [])]
    print(result.table(columns))
    print(f"nstkit: {len(jobs) - len(result.failed)} of {len(jobs)} runs done; table, contact sheet and record: "
          f"{Path(args.out_dir) / 'sweep.csv'}, contact_sheet.png, sweep.json")
    return 1 if result.failed else 0


def _estimate_command(args: argparse.Namespace) -> int:
    """`nstkit estimate`: the predicted peak memory of the stylize run these flags describe, and its parts."""
    from .images import load_image

    config = StyleConfig(preset=args.preset, backbone=args.backbone, style_layers=args.style_layers,
                         content_layers=args.content_layers, precision=args.precision,
                         max_dim=_whole("max_dim", args.max_dim)).resolved()
    height, width = load_image(args.content, config.max_dim, what="content image").shape[:2]
    style_shape = load_image(args.style, config.max_dim, what="style image").shape[:2] if args.style else None
    import_tensorflow_quietly()
    from .memory import available_memory_bytes, estimate_peak_bytes, gpu_note

    estimate = estimate_peak_bytes(height, width, config, style_shape=style_shape)  # random weights: same memory
    print(estimate.describe(available_memory_bytes()))
    print("\n".join(estimate.breakdown_lines()))
    note = gpu_note()
    if note:
        print(f"nstkit: note: {note}", file=sys.stderr)
    return 0


def _warn_if_short_of_memory(config: StyleConfig, content_shape, style_shape) -> None:
    """One stderr line if the run is predicted not to fit in memory; the run still goes ahead (it is an estimate)."""
    from .memory import format_bytes, shortfall

    short = shortfall(*content_shape, config, style_shape=style_shape, weights=config.weights)
    if short is not None:
        needed, available = short
        advice = "lower --max-dim" + (" or use --precision bfloat16" if config.precision == "float32" else "")
        print(f"nstkit: warning: this run needs about {format_bytes(needed)} but only {format_bytes(available)} "
              f"is available; {advice}", file=sys.stderr)


def _list_layers(args: argparse.Namespace) -> int:
    rows = [info for info in CATALOGS[args.backbone].values()
            if (args.kind is None or info.kind == args.kind) and (args.stage is None or info.stage == args.stage)]
    print(f"{'layer':24} {'stage':>5} {'block':>5} {'kind':5} {'channels':>8} {'stride':>6}")
    for info in rows:
        print(f"{info.name:24} {info.stage:>5} {info.block:>5} {info.kind:5} {info.channels:>8} {info.stride:>6}")
    return 0


def _list_presets() -> int:
    for preset in all_presets():
        weights = ", ".join(f"{k} {v:g}" for k, v in
                            (("content weight", preset.content_weight), ("style weight", preset.style_weight))
                            if v is not None) or "seed defaults (content 1e2, style 1e7)"
        print(f"{preset.name}: {preset.description}\n"
              f"  style:   {layers_to_spec(preset.style_layers)}\n"
              f"  content: {layers_to_spec(preset.content_layers)}\n"
              f"  weights: {weights}\n  source:  {preset.source}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
