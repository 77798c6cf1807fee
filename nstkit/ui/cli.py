"""The `nstkit` command line: stylize, video, recolor, pack, estimate, sweep, layers, presets.

Every flag maps to one `StyleConfig` field and shows its default in --help.
All input is checked before TensorFlow is imported (`media.checks.check_inputs`, as the API checks it), so
a typo costs a fraction of a second and one line on stderr (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable

from .._version import __version__
from ..core import fields
from ..core.catalog import BACKBONES, CATALOGS, LAYER_KINDS, layers_to_spec
from ..core.config import OPTIONS, StyleConfig, init_is_path, resolve_optimizer
from ..core.errors import NstkitError, NstkitWarning
from ..core.presets import all_presets
from ..core.record import record_path
from ..media.images import SUBSAMPLING, sample, sample_names
from ..network.quiet import import_tensorflow_quietly
from ..run.result import RunStopped
from ..run.signals import Interrupted, exit_status, on_signals

# The fields that decide a run's memory: `nstkit estimate` takes these of stylize's flags.
# The fields that decide memory. Not backbone: estimates are calibrated for ResNet-50 only (`measure.memory`).
ESTIMATE_FIELDS = ("max_dim", "preset", "style_layers", "content_layers", "precision", "style_loss")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2) like every other nstkit error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole_number(minimum: int, meaning: str = ""):
    """An argparse type: a whole number >= ``minimum`` (``meaning`` says what the smallest one means)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be {minimum}{f' ({meaning})' if meaning else ''} or more")
        return value

    return parse


_positive_int, _whole_or_zero = _whole_number(1), _whole_number(0, "never")


def add_config_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """One flag per `StyleConfig` field (or those in ``names``), made from the field's own description.

    Every flag defaults to None, meaning "not given": the config's own default
    then applies, so there is one source of defaults, and a sweep can tell a
    fixed field from one its grid sets. Help shows the real default. Values
    stay text here and are parsed by the field's parser (`config_from_flags`),
    so a bad one is the same one line as anywhere else.
    """
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, (field, spec) in OPTIONS.items():
        if names is not None and name not in names:
            continue
        target = groups.get(spec.group)
        if target is None:
            target = groups[spec.group] = parser.add_argument_group(spec.group)
        default = fields.default_text(field, spec)
        help_text = (spec.help + (f" (default: {default})" if default is not None else "")).replace("%", "%%")
        flags = [fields.flag_of(name, spec), *spec.aliases]
        if spec.kind == "bool":
            target.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:  # choices: argparse's own one line names the flag ("argument --swag: invalid choice: ...")
            target.add_argument(*flags, dest=name, default=None, metavar=spec.metavar, help=help_text,
                                choices=spec.choices or None)


def config_from_flags(args: argparse.Namespace, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The fields the user gave on the command line, parsed by each field's own parser."""
    given = {}
    for name, (_, spec) in OPTIONS.items():
        value = getattr(args, name, None)
        if value is None or (names is not None and name not in names):
            continue
        given[name] = value if spec.kind == "bool" else fields.parse(name, spec, value, fields.flag_of(name, spec))
    return given


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nstkit", description="Neural style transfer on a ResNet-50 backbone.")
    parser.add_argument("--version", action="version", version=f"nstkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("stylize", help="stylize CONTENT in the style of STYLE")
    run.add_argument("content", help="content image (JPEG, PNG, WebP, BMP, TIFF)")
    run.add_argument("style", nargs="+", help="style image(s); several are blended (see --style-blend)")
    run.add_argument("-o", "--output", required=True, help="output image: .png, .jpg, .tif or .webp (the format "
                     "follows the extension; PNG, JPEG and TIFF carry an sRGB profile); its run record goes beside "
                     "it as .json")
    run.add_argument("--bit-depth", type=int, choices=(8, 16), default=8,
                     help="bits per channel; 16 (PNG, TIFF) writes the unrounded image (default: 8)")
    run.add_argument("--quality", type=_positive_int, default=95, metavar="Q",
                     help="JPEG and WebP quality, 1-100; WebP at 100 is lossless (default: 95)")
    run.add_argument("--subsampling", choices=tuple(SUBSAMPLING), default="4:4:4",
                     help="JPEG chroma subsampling (default: 4:4:4, full colour resolution)")
    run.add_argument("--save-every", type=_positive_int, metavar="N",
                     help="also save the current image every N steps as OUTPUT_stepNNNNN (the output's format, 8 bits)")
    run.add_argument("--checkpoint-every", type=_whole_or_zero, metavar="N",
                     help="save the run's state every N steps to OUTPUT.checkpoint.npz (0: never; default: about "
                          "once a minute for runs expected to take over 3 minutes, and whenever a run is stopped)")
    run.add_argument("--resume", action="store_true",
                     help="continue from OUTPUT.checkpoint.npz (same inputs and options): the same image as an "
                          "uninterrupted run")
    run.add_argument("--overwrite", action="store_true",
                     help="start afresh even though OUTPUT.checkpoint.npz holds a stopped run, replacing it "
                          "(without it, or --resume, such a run is refused)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_config_flags(run)

    # `nstkit recolor`: colour-only transfer, no network (nstkit/api/recolor.py).
    recolor = commands.add_parser("recolor", help="give CONTENT the colours of COLORS (no style, no network): "
                                                  "a palette tried in a second")
    recolor.add_argument("content", help="content image")
    recolor.add_argument("colors", nargs="+", help="image(s) to take the colours from; several are pooled")
    recolor.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .tif, .webp); its record "
                                                               "goes beside it as .json")
    recolor.add_argument("--color-transfer", dest="method", choices=("histogram", "mean_cov"), default="histogram",
                         help="match each channel's histogram, or the colours' mean and covariance "
                              "(default: histogram)")
    recolor.add_argument("--max-dim", type=_positive_int, metavar="PX",
                         help="downscale the content so its long side is at most PX (default: its own size)")
    recolor.add_argument("--bit-depth", type=int, choices=(8, 16), default=8,
                         help="bits per channel; 16 (PNG, TIFF) writes the unrounded image (default: 8)")

    # `nstkit pack`: a style's statistics computed once for the runs of a config (nstkit/api/pack.py).
    pack = commands.add_parser("pack", help="compute the statistics of STYLE(s) once, for the runs of the flags "
                                            "given, into a style pack that stylize, sweep and video take as a style")
    pack.add_argument("style", nargs="+", help="style image(s); a run given the pack takes them all, in order")
    pack.add_argument("-o", "--output", required=True, help="the pack to write (.npz); a record goes beside it")
    pack.add_argument("--content-size", metavar="WxH", help="the size of the contents the runs will take, which "
                                                           "decides their stages (default: a square at --max-dim)")
    add_config_flags(pack)

    # `nstkit estimate`: the predicted peak memory of a stylize run (nstkit/measure/memory.py), with stylize's own flags.
    estimate = commands.add_parser("estimate", help="predict the peak memory of a stylize run before starting it")
    estimate.add_argument("content", help="content image (its size after --max-dim decides the memory)")
    estimate.add_argument("--style", help="style image, if its size differs from the content's")
    add_config_flags(estimate, ESTIMATE_FIELDS)

    layers = commands.add_parser("layers", help="list the layers usable as features")
    layers.add_argument("--backbone", choices=BACKBONES, default="resnet50", help="network")
    layers.add_argument("--kind", choices=LAYER_KINDS, help="only this kind of layer")
    layers.add_argument("--stage", type=int, choices=range(1, 6), help="only this stage (1 = stem)")

    commands.add_parser("presets", help="list the layer presets")
    samples = commands.add_parser("samples", help="the bundled sample images' paths (all, or the one named): "
                                  'nstkit stylize "$(nstkit samples chelsea.jpg)" ...')
    samples.add_argument("name", nargs="?", help="one sample's file name, e.g. chelsea.jpg")

    # `nstkit video`: a clip, each frame warm-started from the previous one, with a temporal loss (nstkit/api/video.py).
    video = commands.add_parser("video", help="stylize a clip (a video, a folder of frames or a glob) without "
                                              "flicker: warm starts along the optical flow and a temporal loss")
    video.add_argument("input", help="a video file (MP4, MOV, WebM, AVI...), a folder of frames, or a quoted glob "
                                     "such as 'frames/*.png'")
    video.add_argument("-s", "--style", nargs="+", required=True, help="style image(s); several are blended")
    video.add_argument("-o", "--output", required=True, help="the H.264 .mp4 to write; its run record goes beside it")
    video.add_argument("--fps", type=float, help="frames per second of a folder or glob (default: 24); a video "
                                                 "keeps its own")
    video.add_argument("--frames-dir", metavar="DIR", help="keep every stylised frame there as PNG (default: a "
                                                          "hidden folder beside the output, removed once it is whole)")
    video.add_argument("--frame-steps", type=_positive_int, default=None, metavar="N",
                       help="steps of every frame after the first, which takes --steps (default: 150)")
    video.add_argument("--no-warm-start", dest="warm_start", action="store_false",
                       help="start every frame as --init says, not from the previous frame warped onto it")
    video.add_argument("--resume", action="store_true", help="skip the frames an earlier, stopped run finished")
    video.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_config_flags(video)

    # `nstkit sweep`: one run per point of a grid, on local processes or a Dask cluster (nstkit/sweep/).
    sweep_parser = commands.add_parser(
        "sweep", help="stylize once per point of a parameter grid; write a table, a contact sheet and every image")
    sweep_parser.add_argument("content", help="content image")
    sweep_parser.add_argument("style", nargs="+", help="style image(s); several are blended")
    sweep_parser.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2",
                              help="a StyleConfig field and its values, e.g. style_weight=1e6,1e7 or "
                                   "preset=robust,vanilla; repeat for more fields: every combination runs, the "
                                   "last --grid varying fastest. List-valued fields (layers, style_blend, "
                                   "style_scale) separate values with ';'. One value fixes a field for every run")
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
    sweep_parser.add_argument("--resume", action="store_true",
                              help="keep the points the folder already holds finished (same config), run the rest")
    sweep_parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no line per finished run")
    add_config_flags(sweep_parser)  # any field can be fixed for every run of the grid
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always", NstkitWarning)
        warnings.showwarning = _show_warning
        return _command(args)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """nstkit's own warnings as one line each (`errors.NstkitWarning`); any other as Python shows it."""
    if issubclass(category, NstkitWarning):
        print(f"nstkit: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)


def _command(args: argparse.Namespace) -> int:
    try:
        if args.command == "layers":
            return _list_layers(args)
        if args.command == "presets":
            return _list_presets()
        if args.command == "samples":
            return _list_samples(args.name)
        if args.command == "estimate":
            return _estimate_command(args)
        if args.command == "sweep":
            return _sweep_command(args)
        if args.command == "video":
            return _video_command(args)
        if args.command == "recolor":
            return _recolor_command(args)
        if args.command == "pack":
            return _pack_command(args)
        return _stylize(args)
    except RunStopped as stopped:
        print(f"nstkit: {stopped}; nothing saved", file=sys.stderr)
        return stopped.exit_code
    except NstkitError as error:
        print(f"nstkit: error: {error}", file=sys.stderr)
        return error.exit_code
    except Interrupted as interrupted:
        print(f"nstkit: interrupted ({interrupted.name}) before anything was computed; nothing saved",
              file=sys.stderr)
        return interrupted.exit_status
    except KeyboardInterrupt:
        print("nstkit: interrupted", file=sys.stderr)
        return 130


def _recolor_command(args: argparse.Namespace) -> int:
    from ..api.recolor import recolor
    from ..media.images import Encoding, check_output_path
    from ..run.result import OutputNotSaved

    inputs = (args.content, *args.colors)
    output = check_output_path(args.output, inputs)
    encoding = Encoding(args.bit_depth)
    encoding.check(output)
    result = recolor(args.content, args.colors, args.method, args.max_dim)
    try:
        saved = result.save(output, protect=inputs, encoding=encoding)
    except OutputNotSaved as lost:
        print(f"nstkit: error: {lost}", file=sys.stderr)
        return lost.exit_code
    print(f"nstkit: recoloured ({args.method}): {saved} and {record_path(saved)}")
    return 0


def _pack_command(args: argparse.Namespace) -> int:
    from ..api.pack import make_pack
    from ..media.images import check_output_path

    output = check_output_path(args.output, tuple(args.style), formats=(".npz",))
    shape = None
    if args.content_size:
        try:
            width, height = (int(side) for side in args.content_size.lower().split("x"))
        except ValueError:
            raise NstkitError(f"--content-size must be WIDTHxHEIGHT, e.g. 512x384, got '{args.content_size}'") from None
        shape = (height, width)
    config = StyleConfig(**config_from_flags(args))
    written = make_pack(args.style, output, config, content_shape=shape)
    print(f"nstkit: wrote style pack {written} and {record_path(written)}")
    return 0


def _list_samples(name: str | None) -> int:
    for path in [sample(name)] if name else [sample(each) for each in sample_names()]:
        print(path)
    return 0


class _Signals:
    """Ctrl-C and SIGTERM around a stylize command, outside the run's own "stop after this step" handling.

    Before the run starts (checking images, importing TensorFlow) a signal
    stops at once, with one line. Once a step has run, a result exists: from
    then on (the run's own handling ends with its loop; then its record is
    built and the result saved) a signal only counts, so the result is saved
    whole: a signal never loses a computed result or leaves it half saved.
    The exit status is 128 + the first signal's number (130, 143). The handler
    is installed, and the status counted, by `run.signals` (`on_signals`, `exit_status`).
    """

    def __init__(self):
        self.received: int | None = None
        self.saving = False  # from the run's first step on: a result exists, so signals only count

    def handle(self, signum, frame) -> None:
        self.received = self.received or signum
        if not self.saving:
            raise Interrupted(signum)


def _stylize(args: argparse.Namespace) -> int:
    signals = _Signals()
    with on_signals(signals.handle):
        return _stylize_run(args, signals)


def _stylize_run(args: argparse.Namespace, signals: _Signals) -> int:
    from ..media.checks import check_inputs
    from ..media.images import Encoding, check_output_path
    from ..run.checkpoint import check_start, checkpoint_path_for

    config = StyleConfig(**config_from_flags(args))
    resolved = config.resolved()
    styles = args.style
    init = (resolved.init,) if init_is_path(resolved.init) else ()
    mask = (resolved.mask,) if resolved.mask else ()
    inputs = (args.content, *styles, *init, *mask)
    output = check_output_path(args.output, inputs)
    encoding = Encoding(args.bit_depth, args.quality, args.subsampling)
    encoding.check(output)
    checkpoint = checkpoint_path_for(output)
    check_start(checkpoint, args.resume, args.overwrite)  # before TensorFlow loads: a stopped run's work is kept
    checked = check_inputs(args.content, styles, resolved)  # a bad input: one line, before TensorFlow loads
    content_shape, style_shapes = checked.content.shape[:2], checked.style_shapes  # the sizes the run takes
    del checked  # the run reads its own: these pixels would only hold memory while it runs

    import_tensorflow_quietly()
    from ..network.device import resolve_precision

    resolved = resolve_precision(resolved)[0]  # "auto" as this device makes it, for the estimate and snapshots
    if not resolved.tile_size:  # a tiled run holds one window's activations, not the whole image's
        _warn_if_short_of_memory(resolved, content_shape, max(style_shapes, key=lambda shape: shape[0] * shape[1]))
    from ..api.stylize import stylize
    from ..run.result import OutputNotSaved

    def result_exists(progress) -> None:
        signals.saving = True  # a step has run: a signal from here on must not lose its result

    callbacks = [result_exists]
    if args.save_every:
        callbacks.append(_snapshot_saver(output, args.save_every, inputs, resolved))
    result = stylize(args.content, styles if len(styles) > 1 else styles[0], config, callbacks=callbacks,
                     checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume,
                     overwrite=args.overwrite,
                     progress=not args.quiet)
    signals.saving = True
    record = result.record
    stopped_by = record.get("stopped_by")
    interrupted = exit_status(stopped_by) if stopped_by else None
    try:
        saved = result.save(output, protect=inputs, encoding=encoding)
    except OutputNotSaved as lost:
        print(f"nstkit: error: {lost}", file=sys.stderr)
        return lost.exit_code
    status = (f"stopped ({stopped_by}) at step {record['steps_run']} of {record['steps_planned']}; saved the best "
              "image so far" if result.stopped_early else f"ran {record['steps_run']} steps")
    resume = f"; resume with --resume (checkpoint {checkpoint})" if result.stopped_early and checkpoint.exists() else ""
    print(f"nstkit: {status}: {saved} (best after {record['best_step']} updates, "
          f"loss {_loss(record['best_loss'])}) and {record_path(saved)}; "
          f"weights: {record['weights']['description']}{resume}")
    if result.no_improvement:
        print(f"nstkit: warning: {result.no_improvement}", file=sys.stderr)
    if signals.received and interrupted is None:
        interrupted = exit_status(signals.received)  # it came while saving: the save finished first
    return interrupted or 0


def _video_command(args: argparse.Namespace) -> int:
    """Stylise a clip; Ctrl-C or SIGTERM keeps the finished frames and writes the clip so far (exit 130, 143).

    A clip its folder cannot take is written elsewhere (exit 74, the `OutputNotSaved` line says where)."""
    from ..api.video import VIDEO_FRAME_STEPS, stylize_video, video_config
    from ..media.checks import check_inputs
    from ..media.clips import check_video_output, read_clip

    config = video_config(StyleConfig(**config_from_flags(args)))
    resolved = config.resolved()
    check_video_output(args.output, (args.input, *args.style))
    clip = read_clip(args.input, fps=args.fps, max_dim=resolved.max_dim)  # a bad clip: one line before TF
    style_shapes = check_inputs(clip.frames[0], args.style, resolved).style_shapes  # a frame stands for each
    import_tensorflow_quietly()
    frames_run = resolve_optimizer(config, video=True)[0].resolved()  # "auto" is Adam for frames: its memory
    _warn_if_short_of_memory(frames_run, clip.size,
                             max(style_shapes, key=lambda shape: shape[0] * shape[1]))  # one frame's run at a time
    frame_steps = args.frame_steps or VIDEO_FRAME_STEPS
    result = stylize_video(clip, args.style if len(args.style) > 1 else args.style[0], args.output, config,
                           fps=args.fps, frames_dir=args.frames_dir, frame_steps=frame_steps,
                           warm_start=args.warm_start, resume=args.resume, progress=not args.quiet)
    record = result.record
    where = f"{result.path} and {record_path(result.path)}" if result.path else "nothing written"
    # The signal that stopped it (or came while the clip was saved) gives the status, as for stylize.
    status = exit_status(result.stopped_by) if result.stopped_by else 130 if result.stopped_early else 0
    if result.stopped_early:
        print(f"nstkit: stopped{f' ({result.stopped_by})' if result.stopped_by else ''} after {record['frames_done']} "
              f"of {record['frames_planned']} frames: {where} (the clip so far); the frames are kept in "
              f"{result.frames_dir}: rerun with --resume to finish", file=sys.stderr)
        return status
    per_frame = record["seconds_per_frame"]
    later = f", {per_frame['later_median']:.1f} s per later frame" if per_frame["later_median"] else ""
    print(f"nstkit: {record['frames_done']} frames at {record['fps']:g} fps: {where}; first frame "
          f"{per_frame['first'] or 0:.1f} s{later}; weights: {(record['weights'] or {}).get('description')}")
    return status


def _loss(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.4g}"


def _snapshot_saver(output: Path, every: int, inputs: tuple, config: StyleConfig):
    from ..core.errors import warn
    from ..core.files import reason
    from ..core.record import build_record, write_record
    from ..media.images import save_image

    failed = []

    def save_snapshot(progress) -> None:
        if progress.step % every or failed:
            return
        path = output.with_name(f"{output.stem}_step{progress.step:05d}{output.suffix}")
        try:
            save_image(path, progress.image(), protect=inputs)
            write_record(path, build_record(config=config.to_dict(), snapshot_of=str(output), step=progress.step,
                                            losses=progress.losses, weights=progress.weights))
        except (OSError, NstkitError) as error:  # a snapshot is a view of the run, not the run: it goes on
            failed.append(path)
            warn(f"could not write snapshot {path} ({reason(error)}); the run goes on, without more snapshots")

    return save_snapshot


def _sweep_command(args: argparse.Namespace) -> int:
    """`nstkit sweep`: the grid, the inputs and the folder are checked before any worker (or TensorFlow) starts.

    Exit status 1 if some runs failed (their rows say why), 2 for bad input, 74 (as stylize's `OutputNotSaved`)
    if a run's image and record or the summary could not be written in the folder (full, read-only, deleted):
    nothing computed is lost, a line says where it went instead, and 74 wins over 1.
    """
    from tqdm.auto import tqdm

    from ..run.result import OutputNotSaved
    from ..sweep import dask_client, expand_grid, parse_grid, short_value, sweep

    grid = parse_grid(args.grid)
    options = config_from_flags(args)  # fields fixed for every run
    jobs = expand_grid(grid, **options)  # a bad grid costs no connection to a scheduler
    if args.scheduler and args.workers:
        raise NstkitError("--workers sizes the local pool; with --scheduler, the Dask workers you started run the jobs")
    styles = args.style if len(args.style) > 1 else args.style[0]
    finished = []

    def report(row: dict) -> None:
        finished.append(row)
        if not args.quiet:
            outcome = (f"failed: {row['error']}" if row.get("error") else
                       f"loss {_loss(row['best_loss'])}, {row['seconds_per_step']:.3g} s/step"
                       + (f"; {row['save_error']}" if row.get("save_error") else ""))
            label = " ".join(f"{key}={short_value(row[key])}" for key in grid)
            tqdm.write(f"nstkit: run {len(finished)}/{len(jobs)} ({label}) {outcome}", file=sys.stderr)  # above the bar

    run = dict(out_dir=args.out_dir, overwrite=args.overwrite, resume=args.resume, on_row=report,
               progress=not args.quiet, **options)
    summary_lost = None
    try:
        if args.scheduler:
            with dask_client(args.scheduler) as client:
                result = sweep(args.content, styles, grid, executor=client.get_executor(), **run)
        else:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the worker processes inherit it
            result = sweep(args.content, styles, grid, workers=args.workers, **run)
    except OutputNotSaved as lost:  # every run is done; the summary is not in the folder
        result, summary_lost = lost.result, lost
    columns = ["job", *grid, "final_content", "final_style", "best_loss", "seconds_per_step", "output",
               *(["save_error"] if result.unsaved else []), *(["error"] if result.failed else [])]
    print(result.table(columns))
    done = f"nstkit: {len(jobs) - len(result.failed)} of {len(jobs)} runs done"
    if summary_lost is None:
        print(f"{done}; table, contact sheet and record: {Path(args.out_dir) / 'sweep.csv'}, contact_sheet.png, "
              "sweep.json")
    else:
        print(done)
        print(f"nstkit: error: {summary_lost}", file=sys.stderr)
    if result.unsaved:
        print(f"nstkit: error: {len(result.unsaved)} of {len(jobs)} runs could not be saved in {args.out_dir}: the "
              f"table's output column says where each went (the first: {result.unsaved[0]['save_error']})",
              file=sys.stderr)
    if summary_lost is not None or result.unsaved:
        return OutputNotSaved.exit_code
    return 1 if result.failed else 0


def _estimate_command(args: argparse.Namespace) -> int:
    """`nstkit estimate`: the predicted peak memory of the stylize run these flags describe, and its parts."""
    from ..media.checks import check_inputs

    config = StyleConfig(**config_from_flags(args, ESTIMATE_FIELDS)).resolved()
    checked = check_inputs(args.content, [args.style] if args.style else [], config)  # before TensorFlow loads
    height, width = checked.content.shape[:2]
    style_shape = checked.style_shapes[0] if args.style else None
    import_tensorflow_quietly()
    from ..measure.memory import available_memory_bytes, estimate_peak_bytes, gpu_note

    estimate = estimate_peak_bytes(height, width, config, style_shape=style_shape)  # random weights: same memory
    if config.max_dim > max(height, width):
        print(f"nstkit: note: {args.content} is {width}x{height} px and nstkit never upscales, so this is the "
              f"estimate at {width}x{height}, not at --max-dim {config.max_dim}", file=sys.stderr)
    print(estimate.describe(available_memory_bytes()))
    print("\n".join(estimate.breakdown_lines()))
    note = gpu_note()
    if note:
        print(f"nstkit: note: {note}", file=sys.stderr)
    return 0


def _warn_if_short_of_memory(config: StyleConfig, content_shape, style_shape) -> None:
    """One stderr line if the run is predicted not to fit in memory; the run still goes ahead (it is an estimate)."""
    from ..measure.memory import format_bytes, shortfall
    from ..network.device import resolve_precision

    config = resolve_precision(config)[0]  # "auto": what this device will run, as the estimate counts it
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
