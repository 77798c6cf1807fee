"""Making a style pack (`core.packs`): the style statistics a config's runs need, computed once by the run's
own code path (`api.stylize.prepare`, `run.schedule`, the objective's targets), so a run from the pack finds
exactly the entries it would compute, and gives the same bytes as a run from the image."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._version import __version__
from ..core.config import StyleConfig
from ..core.errors import NstkitError
from ..core.packs import PACK_SUFFIX, config_fields, is_pack, statistic_key, write_pack
from ..core.record import build_record, describe_input, write_record
from ..media.checks import check_inputs
from ..media.images import ImageInput


def make_pack(styles: ImageInput | Sequence[ImageInput], output: os.PathLike | str, config: StyleConfig | None = None,
              *, content_shape: tuple[int, int] | None = None, **options: Any) -> Path:
    """Write a pack of ``styles`` for the runs of ``config`` (+ ``options``) to ``output`` (.npz), with a JSON
    record beside it; return its path.

    ``content_shape``: (height, width) of the content the runs will take, which decides their stages (a
    coarse-to-fine level, L-BFGS's half-size start on a large image); default a square at ``max_dim``. A run
    whose stages differ computes what the pack lacks and says so in one line.
    """
    from ..network.quiet import import_tensorflow_quietly

    output = Path(output)
    if output.suffix.lower() != PACK_SUFFIX:
        raise NstkitError(f"a style pack's file must end in {PACK_SUFFIX}, got {output}: e.g. -o style{PACK_SUFFIX}")
    sources = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    if not sources:
        raise NstkitError("a style pack needs at least one style image")
    if any(is_pack(source) for source in sources):
        raise NstkitError("a style pack is made from style images, not from packs: give the images")
    requested = (config or StyleConfig()).replace(**options)
    resolved = requested.resolved()
    if resolved.style_scale:
        raise NstkitError("style_scale sizes a style by each content, and a pack holds one size: leave style_scale "
                          "out of the pack (and give the style image to runs that scale it)")
    if resolved.preserve_color != "none":
        raise NstkitError(f"preserve_color {resolved.preserve_color} recolours the style by each content, so its "
                          "statistics are each run's own: make the pack without preserve_color")
    if resolved.color_transfer != "none" and resolved.color_from == "content":
        raise NstkitError("color_from content recolours the style by each content, so its statistics are each "
                          "run's own: a pack fits color_from style or a palette, or no colour transfer")
    shape = tuple(content_shape) if content_shape else (resolved.max_dim, resolved.max_dim)
    content = np.full((*shape, 3), 127.0, np.float32)  # only its size counts: the styles are the pack's
    checked = check_inputs(content, sources, resolved)
    import_tensorflow_quietly()
    from ..objective.terms import Objective
    from ..run.schedule import schedule, stage_inputs
    from .stylize import prepare

    member = prepare(content, sources, requested)
    objective = Objective([member.config])
    owners: dict[tuple, int] = {}
    for stage in schedule(member.config, member.content_rgb.shape[:2]):  # at max_dim, as the run plans it
        if stage.precision not in (None, member.config.precision):
            continue  # a float32 finish of a bfloat16 run: another network's statistics, computed by that run
        inputs = stage_inputs([member], stage)
        for index, rgb in enumerate(inputs.styles[0]):
            owners.setdefault(statistic_key("", rgb)[2], index)
        for term in objective.terms:
            if term.name == "style" and term.used and term.targets is not None:
                term.targets(objective, inputs)
    keys = list(dict.fromkeys(objective.computed_style_stats))
    made_for = config_fields(member.config)
    written = write_pack(output, checked.style_images(), [describe_input(source) for source in sources], made_for,
                         objective.style_statistics(keys), {key: owners[key[2]] for key in keys})
    write_record(written, build_record(kind="style pack", nstkit=__version__, made_for=made_for,
                                       content_shape=list(member.content_rgb.shape[:2]), entries=len(keys),
                                       inputs={f"style_{i + 1}": describe_input(s) for i, s in enumerate(sources)},
                                       output=str(written)))
    return written
