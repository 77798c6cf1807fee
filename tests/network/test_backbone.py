import h5py
import numpy as np
import pytest

from nstkit.core.catalog import CATALOG
from nstkit.core.errors import NstkitError
from nstkit.network import backbone
from nstkit.network.backbone import FeatureExtractor, file_md5, load_resnet50


@pytest.fixture
def fresh_cache(monkeypatch):
    """Forget built backbones so each test loads weights for real."""
    monkeypatch.setattr(backbone, "_BACKBONES", {})


def _save_legacy_h5(model, path):
    """Write weights the way Keras 2 wrote the ImageNet notop file (by-layer-name HDF5)."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


def _same_weights(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_imagenet_constants_match_keras():
    from keras.src.applications import resnet

    assert backbone.IMAGENET_MD5 == resnet.WEIGHTS_HASHES["resnet50"][1]
    assert backbone.IMAGENET_ORIGIN == resnet.BASE_WEIGHTS_PATH + backbone.IMAGENET_FILE


def test_random_weights_are_seeded(fresh_cache):
    a, info = load_resnet50("random:1")
    b, _ = backbone._BACKBONES.pop(("resnet50", "random:1"))
    backbone._BACKBONES.clear()
    again, _ = load_resnet50("random:1")
    other, _ = load_resnet50("random:2")
    assert info.is_random and "not ImageNet" in info.description
    assert again is not a and _same_weights(a, again)
    assert not _same_weights(a, other)


def test_random_kaiming_draws_pytorchs_resnet_initialisation(fresh_cache):
    """Kernels normal with std sqrt(2 / fan_out), fan_out = kernel area x output channels; BN identity, seeded."""
    model, info = load_resnet50("random-kaiming:1")
    glorot, _ = load_resnet50("random:1")
    assert info.is_random and "Kaiming fan-out" in info.description
    for name in ("conv1_conv", "conv2_block1_2_conv", "conv4_block3_3_conv"):
        kernel = model.get_layer(name).get_weights()[0]
        fan_out = kernel.shape[0] * kernel.shape[1] * kernel.shape[3]
        assert kernel.mean() == pytest.approx(0.0, abs=3 * np.sqrt(2 / fan_out / kernel.size))
        assert kernel.std() == pytest.approx(np.sqrt(2 / fan_out), rel=0.05), name
        kurtosis = lambda k: ((k - k.mean()) ** 4).mean() / k.var() ** 2  # noqa: E731 (normal 3, uniform 1.8)
        assert kurtosis(kernel) == pytest.approx(3.0, abs=0.3)
        assert kurtosis(glorot.get_layer(name).get_weights()[0]) == pytest.approx(1.8, abs=0.2)
    gamma, beta, mean, variance = model.get_layer("conv2_block1_1_bn").get_weights()
    assert (gamma == 1).all() and (beta == 0).all() and (mean == 0).all() and (variance == 1).all()
    backbone._BACKBONES.clear()
    assert _same_weights(model, load_resnet50("random-kaiming:1")[0])
    with pytest.raises(NstkitError, match="the seed after 'random-kaiming:' must be a whole number"):
        load_resnet50("random-kaiming:x")


def test_imagenet_path_loads_the_cached_file_offline(tmp_path, monkeypatch, fresh_cache):
    """The real "imagenet" code path, with the Keras cache holding a file of the expected name."""
    source, _ = load_resnet50("random:7")
    backbone._BACKBONES.clear()
    cached = tmp_path / "models" / backbone.IMAGENET_FILE
    cached.parent.mkdir()
    _save_legacy_h5(source, cached)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(backbone, "IMAGENET_MD5", file_md5(cached))  # our stand-in's checksum
    model, info = load_resnet50("imagenet")
    assert info.source == "imagenet" and info.path == str(cached) and "ImageNet" in info.description
    assert _same_weights(model, source)


def test_imagenet_with_a_wrong_cached_file_stops_and_keeps_it(tmp_path, monkeypatch, fresh_cache):
    cached = tmp_path / "models" / backbone.IMAGENET_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"partial download")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(NstkitError, match="not the ResNet-50 ImageNet weights.*--weights random"):
        load_resnet50("imagenet")
    assert cached.read_bytes() == b"partial download"


def test_imagenet_download_failure_names_every_remedy(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(backbone, "IMAGENET_ORIGIN", "http://127.0.0.1:9/" + backbone.IMAGENET_FILE)
    with pytest.raises(NstkitError) as error:
        load_resnet50("imagenet")
    message = str(error.value)
    assert "could not download" in message and "--weights PATH" in message
    assert str(tmp_path / "models") in message and "--weights random" in message
    assert "\n" not in message
    assert not backbone._BACKBONES  # no silent fallback was cached


@pytest.mark.parametrize("suffix", [".h5", ".weights.h5"])
def test_local_weights_file(tmp_path, fresh_cache, suffix):
    source, _ = load_resnet50("random:3")
    path = tmp_path / f"mine{suffix}"
    if suffix == ".h5":
        _save_legacy_h5(source, path)
    else:
        source.save_weights(path)
    backbone._BACKBONES.clear()
    model, info = load_resnet50(str(path))
    assert info.source == "file" and info.md5 == file_md5(path)
    assert _same_weights(model, source)


def test_bad_weights_files(tmp_path, fresh_cache):
    with pytest.raises(NstkitError, match="weights file not found"):
        load_resnet50(str(tmp_path / "nope.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(NstkitError, match="could not load ResNet-50 weights"):
        load_resnet50(str(junk))
    with pytest.raises(NstkitError, match="whole number"):
        load_resnet50("random:x")


def test_extractor_stops_at_the_deepest_requested_layer():
    model, _ = load_resnet50("random")
    extractor = FeatureExtractor(model, ["conv1_relu", "conv2_block3_3_conv", "conv4_block2_2_conv"])
    computed = extractor.computed_layers()
    limit = CATALOG["conv4_block2_2_conv"].depth
    assert "conv4_block2_2_conv" in computed
    assert max(CATALOG[n].depth for n in computed) == limit
    assert not any(n.startswith(("conv5", "conv4_block3")) for n in computed)
    # ResNet-50 is a chain of blocks, so everything up to the deepest layer is needed, and nothing after.
    assert set(computed) == {n for n, info in CATALOG.items() if info.depth <= limit}
    full = FeatureExtractor(model, ["conv5_block3_out"]).computed_layers()
    assert len(full) == len(CATALOG)


def test_extractor_returns_the_requested_layers():
    model, _ = load_resnet50("random")
    features = FeatureExtractor(model, ["conv2_block1_out", "conv1_relu", "conv1_relu"])(
        np.zeros((1, 64, 64, 3), np.float32))
    assert list(features) == ["conv2_block1_out", "conv1_relu"]
    assert features["conv2_block1_out"].shape == (1, 16, 16, 256)


def test_vgg19_backbone_through_the_same_api(fresh_cache):
    import inspect

    from keras.src.applications import vgg19

    from nstkit.core.catalog import VGG19_CATALOG

    assert backbone.VGG19_ORIGIN == vgg19.WEIGHTS_PATH_NO_TOP
    assert f'file_hash="{backbone.VGG19_MD5}"' in inspect.getsource(vgg19)
    model, info = backbone.load_backbone("vgg19", "random")
    assert {layer.name for layer in model.layers[1:]} == set(VGG19_CATALOG)
    extractor = FeatureExtractor(model, ["block1_conv1", "block3_conv2"], "vgg19")
    assert max(VGG19_CATALOG[n].depth for n in extractor.computed_layers()) == VGG19_CATALOG["block3_conv2"].depth
    features = extractor(np.zeros((1, 64, 64, 3), np.float32))
    assert features["block3_conv2"].shape == (1, 16, 16, 256)
