"""What every optimisation run needs around its loop, whole-image (`optimize`) or tiled (`tiling`).

The start image, the blend of several styles and the style targets, Ctrl-C
as "stop after this step", and TF's retracing warning silenced where a new
trace per run is the design. Kept apart so both loops share them as public functions.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path

import numpy as np

from .config import StyleConfig
from .errors import NstkitError
from .images import load_image, preprocess, resize_to


def initial_image(config: StyleConfig, content_rgb: np.ndarray) -> np.ndarray:
    """Where the optimisation starts: the content (the seed's choice), seeded noise, or a given image."""
    if config.init == "content":
        return content_rgb
    if config.init == "noise":
        rng = np.random.default_rng(config.seed)
        return rng.uniform(0, 255, content_rgb.shape).astype(np.float32)
    if not Path(config.init).exists():
        raise NstkitError(f"init must be 'content', 'noise' or an image path; {config.init} does not exist")
    start = load_image(config.init, None, what="init image", check_min_size=False)  # resized to the content
    return resize_to(start, *content_rgb.shape[:2])


class OneTracePerRunFilter(logging.Filter):
    """Drop TF's "N calls triggered tf.function retracing" warning: each run compiles its own step by design.

    Real retracing within a run is still visible: the run record's ``step_traces`` counts it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def quiet_retracing_warnings() -> None:
    """Install `OneTracePerRunFilter` on TF's logger, once."""
    import tensorflow as tf

    logger = tf.get_logger()
    if not any(isinstance(f, OneTracePerRunFilter) for f in logger.filters):
        logger.addFilter(OneTracePerRunFilter())


def style_blend(config: StyleConfig, count: int) -> list[float]:
    """Blend weights for several style images, normalised to sum to 1 (equal if not given)."""
    blend = list(config.style_blend) if config.style_blend else [1.0] * count
    if len(blend) != count:
        raise NstkitError(f"style_blend has {len(blend)} weights for {count} style image(s): give one per style")
    total = sum(blend)
    return [w / total for w in blend]


@contextlib.contextmanager
def stop_on_signals(stop_event: threading.Event):
    """Turn the first Ctrl-C / SIGTERM into "stop after this step"; a second Ctrl-C aborts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if stop_event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop_event.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def style_targets(features_of, style_rgbs: list[np.ndarray], blend: list[float], style_layers,
                  cache: dict | None = None) -> dict:
    """The style loss's targets: the Gram matrices of the style image(s), mixed by ``blend``; float32.

    ``features_of`` maps a caffe-BGR batch to ``{layer: activations}``. One
    forward pass per style image; ``cache`` (style bytes -> Grams), shared
    between calls, lets the members of a batch that share a style compute it once.
    """
    import tensorflow as tf

    from .losses import gram_matrix

    cache = {} if cache is None else cache
    targets: dict = {}
    for style_rgb, share in zip(style_rgbs, blend):
        key = style_rgb.tobytes()
        if key not in cache:
            features = features_of(tf.constant(preprocess(style_rgb)))
            cache[key] = {name: gram_matrix(features[name]) for name in style_layers}
        for name in style_layers:
            targets[name] = targets.get(name, 0.0) + share * cache[key][name]
    return targets
