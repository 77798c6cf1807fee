"""Config fields that describe themselves: each `StyleConfig` field carries its flag, help, parser and rules.

A field is declared once, with `option(default, help=..., kind=..., check=...)`,
and everything that used to copy it by hand is made from that one
declaration: the CLI's flags and their help (with the real default), the
sweep's ``--grid`` values, the widget panel's controls, which fields may
differ between the members of a batch, which values a tiled run supports,
and validation. Adding an option is one edit in `config.py`.

Text from a user (a flag, a grid value) goes through `parse`; a value from
Python goes through the field's ``check``. Both name the field in one line.
No TensorFlow here: the CLI answers a bad flag in milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from .errors import NstkitError

KINDS = ("float", "int", "str", "bool", "floats", "names", "layers")
Check = Callable[[str, Any], None]


@dataclass(frozen=True)
class Option:
    """What a config field is, for every interface that shows or reads it.

    ``kind`` says how text becomes a value: ``float``, ``int`` (a whole
    number), ``str``, ``bool``, ``floats`` and ``names`` (comma-separated
    lists), ``layers`` (a layer spec such as ``"conv1_relu,conv2_block1_out:2"``,
    kept as text for `layers.parse_layers`). ``optional`` lets it be None.
    """

    help: str
    kind: str
    check: Check | None = None
    optional: bool = False
    flag: str | None = None  # None: "--" + the field name with dashes
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # shown in --help and offered by widgets; ``check`` enforces them
    default_text: str | None = None  # the default as --help says it, where the field's default is None
    metavar: str | None = None
    group: str = "style transfer"
    batch: bool = False  # may differ between the members of one batch (`stylize_batch`)
    tiles: tuple[Callable[[Any], bool], str] | None = None  # (supported value?, what tiled runs support)
    widget: tuple | None = None  # ("log", min exponent, max exponent, step) | ("float"|"int", min, max, step) | ("choice",)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown option kind {self.kind!r}")

    @property
    def listed(self) -> bool:
        """Its one value is itself a comma-separated list, so a grid separates its values with ';'."""
        return self.kind in ("floats", "names", "layers")


def option(default: Any = None, **metadata: Any) -> Any:
    """A dataclass field with its `Option` attached."""
    return dataclasses.field(default=default, metadata={"option": Option(**metadata)})


def option_of(field: dataclasses.Field) -> Option:
    return field.metadata["option"]


def options(config_class) -> dict[str, tuple[dataclasses.Field, Option]]:
    """Every field of ``config_class`` with its `Option`, in declaration order."""
    return {f.name: (f, option_of(f)) for f in dataclasses.fields(config_class)}


def flag_of(name: str, spec: Option) -> str:
    return spec.flag or "--" + name.replace("_", "-")


def default_text(field: dataclasses.Field, spec: Option) -> str | None:
    """The default as help text shows it: the field's own default, or the option's description of it."""
    if spec.default_text is not None:
        return spec.default_text
    if field.default is None:
        return None
    if isinstance(field.default, bool):
        return "on" if field.default else "off"
    if isinstance(field.default, float):
        return number_text(field.default)
    return str(field.default)


def number_text(value: float) -> str:
    """1e7 as ``1e7``, 100.0 as ``100``, 0.05 as ``0.05``: how help text and labels write numbers."""
    return f"{value:g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


# --------------------------------------------------------------------------- text -> value


def parse(name: str, spec: Option, text: str, source: str | None = None) -> Any:
    """A user's text as the field's value; a bad one is one `NstkitError` line naming ``source`` (the flag)."""
    source = source or name
    text = text.strip()
    if spec.optional and text.lower() in ("none", "null", ""):
        return None
    kind = spec.kind
    if kind == "float":
        return _number(source, text)
    if kind == "int":
        return _whole(source, text)
    if kind == "bool":
        lowered = text.lower()
        if lowered not in _TRUE + _FALSE:
            raise NstkitError(f"{source}: {text!r} is not true or false")
        return lowered in _TRUE
    if kind == "floats":
        try:
            return [float(part) for part in text.split(",")]
        except ValueError:
            raise NstkitError(f"{source} must be numbers separated by commas, e.g. 0.7,0.3; got {text!r}") from None
    if kind == "names":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text  # str, and layer specs (parsed with the backbone's catalog when the config resolves)


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _number(source: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise NstkitError(f"{source}: {text!r} is not a number") from None


def _whole(source: str, text: str) -> int:
    """The one "whole number" rule for text: 1000, 1e3 and 1000.0 are 1000; 2.5 is refused."""
    number = _number(source, text)
    if not math.isfinite(number) or number != int(number):
        raise NstkitError(f"{source} must be a whole number, got {number:g}")
    return int(number)


# --------------------------------------------------------------------------- value checks (Python values)


def number(*, zero: bool) -> Check:
    """A finite number, >= 0 (``zero``) or > 0."""
    def check(name: str, value: Any) -> None:
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value)
        if bad or value < 0 or (value == 0 and not zero):
            raise NstkitError(f"{name} must be {'a finite number >= 0' if zero else 'a finite number > 0'}, "
                              f"got {value!r}")
    return check


def whole(low: int) -> Check:
    """The one "whole number" rule for values: an int (not a bool) of at least ``low``."""
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise NstkitError(f"{name} must be a whole number >= {low}, got {value!r}")
    return check


def boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise NstkitError(f"{name} must be true or false, got {value!r}")


def fraction(name: str, value: Any) -> None:
    """In [0, 1): Adam's betas."""
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise NstkitError(f"{name} must be in [0, 1), got {value!r}")


def one_of(choices: tuple[str, ...]) -> Check:
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise NstkitError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return check


def numbers(each: Check) -> Check:
    """A list whose every entry passes ``each``."""
    def check(name: str, value: Any) -> None:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise NstkitError(f"{name} must be a list of numbers, e.g. [0.7, 0.3]; got {value!r}")
        for item in value:
            each(name, item)
    return check


def validate(config) -> None:
    """Run every field's own check (None passes where the field is optional)."""
    for name, (_, spec) in options(type(config)).items():
        value = getattr(config, name)
        if value is None and spec.optional:
            continue
        if spec.check is not None:
            spec.check(name, value)
