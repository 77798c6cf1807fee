"""Style packs: a style's statistics computed once, saved, and reused by runs, sweeps, batches and video.

Asked for by jcjohnson/neural-style #29 and NNST #4: a style used again and again (a sweep's points, a batch's
members, a clip's frames, a user's next run) is read, resized and passed through the network each time, and a
sampled loss (``remd``, ``nn``, ``mrf``) or the histogram loss summarises its features each time. A pack
(``nstkit pack STYLE... -o style.npz``, `api.pack.make_pack`) holds, for each style it was made from:

- the style's pixels at the size its statistics are taken at (what a run reads from the image: so a run from a
  pack gives the same bytes as one from the image);
- per stage size the config's schedule takes it at, its statistics for every style layer: the Gram matrices,
  or the style loss's summaries (`objective.style_stats`), keyed as the objective's cache keys them;
- the original image's path and sha256, and the config fields the statistics depend on (`PACK_FIELDS`).

Any place that takes a style image takes a pack (``.npz``): its styles stand in the pack's place, in order.
A run whose config differs from the pack's in a field of `PACK_FIELDS` is refused in one line that names the
field; statistics for a stage size the pack lacks (another schedule) are computed from its pixels, with a
one-line warning. No TensorFlow here: a pack is read and checked before it loads.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import NstkitError

PACK_SUFFIX = ".npz"
PACK_FORMAT = "nstkit style pack"
PACK_VERSION = 1
# The config fields a style's statistics depend on: the network and how it sees (backbone, weights, pooling,
# precision, SWAG's smoothing), which layers and which statistic, the size the style is read at, and what
# recolours it before the run. ``precision`` is compared once resolved ("auto" is the device's choice).
PACK_FIELDS = ("backbone", "weights", "pooling", "precision", "swag", "swag_temperature", "swag_alpha",
               "swag_layers", "style_loss", "style_layers", "max_dim", "preserve_color", "color_transfer",
               "color_from")


@dataclass(frozen=True, eq=False)
class PackedStyle:
    """One style of a pack: what a style image gives a run, already read and summarised."""

    pixels: np.ndarray  # float32 RGB at the size its statistics are taken at
    pack: Path
    index: int  # its place among the pack's styles
    source: dict[str, Any]  # the original image: path (or array shape) and sha256
    made_for: dict[str, Any]  # `PACK_FIELDS` of the config the pack was made with
    statistics: dict[tuple, dict] = field(repr=False)  # objective cache key -> {layer: statistic}
    pack_sha256: str = ""  # the pack file's, read once

    def describe(self) -> dict[str, Any]:
        """The run record's entry for this style: the pack's file and hash, and the image it was made from."""
        return {"path": str(self.pack), "sha256": self.pack_sha256, "pack_style": self.index + 1,
                "made_from": self.source}


def is_pack(source: Any) -> bool:
    """Whether a style source names a pack (a path ending in .npz)."""
    return isinstance(source, (str, os.PathLike)) and str(source).lower().endswith(PACK_SUFFIX)


def expand(styles: Sequence[Any]) -> list[Any]:
    """``styles`` with each pack path replaced by its `PackedStyle`\\ s, in order (read once here)."""
    expanded: list[Any] = []
    for source in styles:
        expanded.extend(read_pack(source) if is_pack(source) else [source])
    return expanded


def mismatch(made_for: dict[str, Any], config) -> str | None:
    """The first of `PACK_FIELDS` in which a resolved ``config`` differs from what a pack was made for, as
    "FIELD PACK_VALUE, this run's RUN_VALUE"; None when the pack fits. ``precision`` "auto" is not compared
    (the run resolves it later, and is checked again then)."""
    ours = config_fields(config)
    for name in PACK_FIELDS:
        if name == "precision" and config.precision == "auto":
            continue
        if ours[name] != made_for.get(name):
            return f"{name} {_shown(made_for.get(name))}, this run's {_shown(ours[name])}"
    return None


def check_fits(style: PackedStyle, config) -> None:
    """One line, naming the field, if ``style``'s pack was made for another config than ``config`` (resolved)."""
    problem = mismatch(style.made_for, config)
    if problem is not None:
        raise NstkitError(f"style pack {style.pack} was made for {problem}: make a pack for this run "
                          f"(nstkit pack with the same flags as the run), or give the style image")


def config_fields(config) -> dict[str, Any]:
    """`PACK_FIELDS` of a resolved config, as a pack stores them (JSON values; style layers by name only: their
    weights do not change the statistics)."""
    fields = json.loads(json.dumps({name: getattr(config, name) for name in PACK_FIELDS}, default=str))
    fields["style_layers"] = sorted(config.style_layers)
    fields["weights"] = _weights_identity(config.weights)
    return fields


def _weights_identity(weights: str) -> str:
    """The weights as a pack compares them: the spec, and for a file its sha256 too (a file replaced at the same
    path makes other statistics)."""
    from .config import parse_weights

    kind, value = parse_weights(weights, check_file=False)
    if kind != "file" or not Path(value).is_file():
        return weights
    stat = Path(value).stat()
    return f"{weights} (sha256 {_file_sha256(value, stat.st_size, stat.st_mtime_ns)})"


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return _sha256(Path(path))


def statistic_key(kind: str, rgb: np.ndarray) -> tuple:
    """The objective's cache key for a style image at one size: (statistic, shape, sha256 of its float32 bytes)."""
    pixels = np.ascontiguousarray(rgb, np.float32)
    return kind, tuple(pixels.shape), hashlib.sha256(pixels.tobytes()).hexdigest()


def write_pack(path: os.PathLike | str, pixels: list[np.ndarray], sources: list[dict], made_for: dict,
               statistics: dict[tuple, dict], owners: dict[tuple, int]) -> Path:
    """Write a pack (atomic). ``owners``: each statistics key -> the index of the style it is of."""
    from .files import atomic_write

    arrays: dict[str, np.ndarray] = {f"style_{i}": np.asarray(rgb, np.float32) for i, rgb in enumerate(pixels)}
    entries = []
    for number, (key, layers) in enumerate(statistics.items()):
        names = {}
        for layer, value in layers.items():
            parts = value if isinstance(value, dict) else {"": value}
            for part, array in parts.items():
                name = f"entry{number}/{layer}/{part}"
                arrays[name] = np.asarray(array)
                names.setdefault(layer, []).append(part)
        entries.append({"kind": key[0], "shape": list(key[1]), "sha256": key[2], "style": owners[key],
                        "layers": names})
    meta = {"format": PACK_FORMAT, "version": PACK_VERSION, "made_for": made_for, "sources": sources,
            "entries": entries}
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def read_pack(path: os.PathLike | str) -> list[PackedStyle]:
    """A pack's styles; a missing, damaged or foreign file is one line."""
    path = Path(path)
    if not path.is_file():
        raise NstkitError(f"style pack {path} does not exist: check the path, or make it with nstkit pack")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except Exception as error:  # a truncated zip, a plain npz, bad JSON: all "not a pack"
        raise NstkitError(f"{path} is not a readable nstkit style pack ({type(error).__name__}): make it again "
                          "with nstkit pack") from None
    if meta.get("format") != PACK_FORMAT or meta.get("version") != PACK_VERSION:
        raise NstkitError(f"{path} is not an nstkit style pack of version {PACK_VERSION}: make it again with "
                          "nstkit pack")
    statistics: list[dict[tuple, dict]] = [{} for _ in meta["sources"]]
    for number, entry in enumerate(meta["entries"]):
        layers = {}
        for layer, parts in entry["layers"].items():
            values = {part: arrays[f"entry{number}/{layer}/{part}"] for part in parts}
            layers[layer] = values[""] if parts == [""] else values
        statistics[entry["style"]][(entry["kind"], tuple(entry["shape"]), entry["sha256"])] = layers
    digest = _sha256(path)
    return [PackedStyle(arrays[f"style_{i}"], path, i, source, meta["made_for"], statistics[i], digest)
            for i, source in enumerate(meta["sources"])]


def style_count(sources: Sequence[Any]) -> int | None:
    """How many styles ``sources`` stand for, a pack counting its own (read from its metadata only); None when
    a pack cannot be read here (a cluster's workers may see files this machine does not)."""
    count = 0
    for source in sources:
        if isinstance(source, PackedStyle) or not is_pack(source):
            count += 1
            continue
        try:
            with np.load(source, allow_pickle=False) as data:
                count += len(json.loads(data["meta"].tobytes().decode())["sources"])
        except Exception:
            return None
    return count


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
