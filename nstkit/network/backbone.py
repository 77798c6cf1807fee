"""The ResNet-50 backbone: where its weights come from, and a truncated feature extractor.

Three weight sources, always named in the run record so every figure says
which weights made it:

- ``"imagenet"`` (default): the Keras download-and-cache file. With no
  network nstkit stops with a message naming the remedies; it never falls
  back to random weights on its own.
- a path to a local ``.h5`` / ``.weights.h5`` file of ``ResNet50(include_top=False)``.
- ``"random"`` or ``"random:SEED"``: Keras' default initialisers drawn from a
  local seeded generator, for offline runs and tests (``"random-kaiming[:SEED]"``:
  PyTorch's ResNet initialisation). With random weights a run transfers
  palette and fine texture, not the style's shapes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.catalog import CATALOGS, check_layer_name, deepest
from ..core.config import IMAGENET_FILE, RANDOM_WEIGHTS, parse_weights
from ..core.errors import NstkitError
from .quiet import import_tensorflow_quietly

# The file keras.applications.ResNet50(include_top=False, weights="imagenet") downloads (its name is in
# core.config, beside the weights spec's parser `parse_weights`, which is TensorFlow-free).
# Same name, origin and md5 as keras/src/applications/resnet.py; tests pin them to Keras' own.
IMAGENET_ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + IMAGENET_FILE
IMAGENET_MD5 = "4d473c1dd8becc155b73f8504c6f6626"
# The VGG19 baseline's file (keras/src/applications/vgg19.py).
VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + VGG19_FILE
VGG19_MD5 = "253f8cb515780f3b799900260a226db6"
LABELS = {"resnet50": "ResNet-50", "vgg19": "VGG19"}


def imagenet_file(backbone: str = "resnet50") -> tuple[str, str, str]:
    """(file name, origin, md5) of a backbone's ImageNet weights, read at call time so tests can stand in."""
    if backbone == "vgg19":
        return VGG19_FILE, VGG19_ORIGIN, VGG19_MD5
    return IMAGENET_FILE, IMAGENET_ORIGIN, IMAGENET_MD5


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a backbone carries; goes into every run record."""

    source: str  # imagenet | random | file
    description: str
    path: str | None = None
    md5: str | None = None

    @property
    def is_random(self) -> bool:
        return self.source == "random"


def keras_home() -> Path:
    """Keras' cache folder, read at call time so KERAS_HOME set after import still counts."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    from keras.src.backend.config import keras_home as keras_default_home

    return Path(keras_default_home()).expanduser()


def imagenet_weights_path(backbone: str = "resnet50") -> Path:
    """Return the cached ImageNet weights file, downloading it on first use.

    A cached file with the wrong checksum is reported, not deleted: Keras'
    own `get_file` would remove it and re-download, which offline loses the file.
    """
    file_name, origin, md5 = imagenet_file(backbone)
    cached = keras_home() / "models" / file_name
    if cached.exists():
        digest = file_md5(cached)
        if digest != md5:
            raise NstkitError(
                f"{cached} is not the {LABELS[backbone]} ImageNet weights file (md5 {digest}, expected {md5}): "
                "replace it with the real file, or pass --weights PATH or --weights random")
        return cached
    import keras

    try:
        return Path(keras.utils.get_file(file_name, origin, cache_subdir="models",
                                         file_hash=md5, cache_dir=str(keras_home())))
    except Exception as exc:  # URLError, HTTPError, hash mismatch: all mean "no usable download"
        # Keras says "URL fetch failure on <url>: <code> -- <reason>"; the reason is what helps.
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].rpartition(" -- ")[2][:120]
        raise NstkitError(
            f"could not download the ImageNet {LABELS[backbone]} weights ({reason}); offline, pass --weights PATH "
            f"to a copy of {file_name}, or put it in {cached.parent}, "
            "or use --weights random (mechanics only, no learned features)") from None


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_BACKBONES: dict[tuple[str, str], tuple[object, WeightsInfo]] = {}


def load_resnet50(weights: str = "imagenet"):
    return load_backbone("resnet50", weights)


def load_backbone(backbone: str = "resnet50", weights: str = "imagenet"):
    """Build `keras.applications.ResNet50` (or `VGG19`), ``include_top=False``, with the given weights, frozen.

    Models are cached per (backbone, weights): notebooks and sweeps call this many times.
    Returns ``(model, WeightsInfo)``.
    """
    if (backbone, weights) in _BACKBONES:
        return _BACKBONES[backbone, weights]
    kind, arg = parse_weights(weights)
    import_tensorflow_quietly()  # before Keras imports it, so its C++ start-up lines stay off stderr
    import keras

    builder = keras.applications.VGG19 if backbone == "vgg19" else keras.applications.ResNet50
    model = builder(include_top=False, weights=None, input_shape=(None, None, 3))
    if kind in RANDOM_WEIGHTS:
        _init_random(model, int(arg), kaiming=kind == "random-kaiming")
        init = " Kaiming fan-out" if kind == "random-kaiming" else ""
        info = WeightsInfo("random", f"random{init} (seeded {arg}; not ImageNet: shows mechanics, not learned "
                                     "features)")
    else:
        path = imagenet_weights_path(backbone) if kind == "imagenet" else Path(str(arg))
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise NstkitError(f"could not load {LABELS[backbone]} weights from {path} "
                              f"({str(exc).splitlines()[0][:160]}): give weights saved from "
                              f"{LABELS[backbone].replace('-', '')}(include_top=False), .h5 or .weights.h5") from None
        digest = file_md5(path)
        label = "ImageNet" if kind == "imagenet" else "file"
        info = WeightsInfo(kind, f"{label} weights from {path} (md5 {digest})", str(path), digest)
    model.trainable = False
    _BACKBONES[backbone, weights] = (model, info)
    return model, info


def _init_random(model, seed: int, kaiming: bool = False) -> None:
    """Keras' default initialisers (Glorot-uniform kernels, zero biases, identity BN), from a local RNG; with
    ``kaiming``, PyTorch's ResNet initialisation instead: kernels normal with standard deviation
    sqrt(2 / fan_out), fan_out = kernel area x output channels (He et al. 2015, "mode fan_out", the ReLU
    gain; torchvision's `resnet50`), the one SWAG's paper (Wang et al. CVPR 2021) stylised with untrained.

    Drawing from our own `numpy.random.Generator` keeps the user's global
    seeds untouched and gives the same weights on every machine.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for variable in layer.weights:
            shape = tuple(variable.shape)
            name = variable.path.rsplit("/", 1)[-1]
            if name == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                fan_out = int(np.prod(shape[:-2])) * shape[-1]
                if kaiming:
                    values.append(rng.normal(0.0, np.sqrt(2.0 / fan_out), shape).astype(np.float32))
                else:
                    limit = np.sqrt(6.0 / (fan_in + fan_out))
                    values.append(rng.uniform(-limit, limit, shape).astype(np.float32))
            elif name in ("gamma", "moving_variance"):
                values.append(np.ones(shape, np.float32))
            else:  # bias, beta, moving_mean
                values.append(np.zeros(shape, np.float32))
        if values:
            layer.set_weights(values)


class FeatureExtractor:
    """Maps an image batch (caffe BGR) to ``{layer name: float32 activation}`` for the requested layers.

    Built as a Keras functional model whose outputs are the requested layers;
    Keras keeps only the layers those outputs depend on, so nothing past the
    deepest requested layer is computed (the seed's robust set stops in
    conv4_block2, skipping ~60% of ResNet-50's FLOPs at the same image size).
    The network runs with BatchNorm folded into the convs (`folding`), in
    ``precision``; the activations come out as float32 so every loss is
    reduced in float32 whatever the network computed in.
    """

    def __init__(self, model, layer_names: Sequence[str], backbone: str = "resnet50",
                 precision: str = "float32", fold: bool = True, pooling: str = "max"):
        import keras

        from ..core.config import PRECISIONS

        self.catalog = CATALOGS[backbone]
        self.layer_names = list(dict.fromkeys(layer_names))
        if not self.layer_names:
            raise NstkitError("no layers requested for the feature extractor")
        for name in self.layer_names:
            check_layer_name(name, backbone)
        if precision not in PRECISIONS:
            raise NstkitError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        rebuilt = fold or precision != "float32" or pooling != "max"
        network = inference_graph(model, self.layer_names, precision, pooling) if rebuilt else model
        outputs = [network.get_layer(name).output for name in self.layer_names]
        self.model = keras.Model(network.input, outputs, name="nstkit_features")
        self.deepest = deepest(self.layer_names, backbone).name

    def computed_layers(self) -> list[str]:
        """Catalog layers this extractor actually runs (used by the truncation test)."""
        return [layer.name for layer in self.model.layers if layer.name in self.catalog]

    def __call__(self, image):
        from keras import ops

        return {name: ops.cast(output, "float32") for name, output in self.native_activations(image).items()}

    def native_activations(self, image):
        """The activations in the network's own precision, for losses that can use it (`losses.gram_matrix`).

        Casting a bfloat16 map to float32 doubles the bytes the loss reads;
        the optimisation loop skips that cast where the loss allows it.
        """
        outputs = self.model(image, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return dict(zip(self.layer_names, outputs))


_INFERENCE_GRAPHS: dict[tuple[int, str, frozenset, str], object] = {}


def inference_graph(model, layer_names: Sequence[str], precision: str = "float32", pooling: str = "max"):
    """``model`` with BatchNorm folded (taps in ``layer_names`` kept exact), cached: cloning takes ~1 s."""
    from .folding import fold_batchnorm

    keep = frozenset(name for name in layer_names if name.endswith("_conv"))
    key = (id(model), precision, keep, pooling)
    if key not in _INFERENCE_GRAPHS:
        _INFERENCE_GRAPHS[key] = (model, fold_batchnorm(model, keep, precision, pooling))  # holding model pins its id
    return _INFERENCE_GRAPHS[key][1]
