"""Style packs' file format and fit (`nstkit.core.packs`), without TensorFlow."""

import numpy as np
import pytest

from nstkit.core import packs
from nstkit.core.config import StyleConfig
from nstkit.core.errors import NstkitError


def _pack(tmp_path, config=None, name="style.npz"):
    config = (config or StyleConfig(weights="random")).resolved()
    pixels = [np.arange(4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3), np.ones((5, 5, 3), np.float32)]
    gram_key, summary_key = packs.statistic_key("gram_matrix", pixels[0]), packs.statistic_key("remd", pixels[1])
    statistics = {gram_key: {"conv1_relu": np.eye(3, dtype=np.float32)},
                  summary_key: {"conv1_relu": {"mean": np.zeros(3), "points": np.ones((4, 3), np.float32)}}}
    path = packs.write_pack(tmp_path / name, pixels, [{"path": "a.png", "sha256": "0" * 64}, {"array_shape": [5, 5, 3],
                            "sha256": "1" * 64}], packs.config_fields(config), statistics,
                            {gram_key: 0, summary_key: 1})
    return path, pixels, statistics


def test_a_pack_reads_back_each_styles_pixels_and_its_own_statistics(tmp_path):
    path, pixels, statistics = _pack(tmp_path)
    first, second = packs.expand(["other.png", str(path)])[1:]
    np.testing.assert_array_equal(first.pixels, pixels[0])
    np.testing.assert_array_equal(second.pixels, pixels[1])
    assert list(first.statistics) == [packs.statistic_key("gram_matrix", pixels[0])]
    np.testing.assert_array_equal(first.statistics[packs.statistic_key("gram_matrix", pixels[0])]["conv1_relu"],
                                  np.eye(3))
    remd = second.statistics[packs.statistic_key("remd", pixels[1])]["conv1_relu"]
    assert set(remd) == {"mean", "points"} and remd["points"].dtype == np.float32
    assert (first.index, second.index, first.source["path"]) == (0, 1, "a.png")
    assert second.describe()["made_from"]["array_shape"] == [5, 5, 3] and second.describe()["pack_style"] == 2


def test_the_cache_key_is_the_pixels_exactly():
    rgb = np.random.default_rng(0).uniform(0, 255, (8, 8, 3)).astype(np.float32)
    nudged = rgb.copy()
    nudged[0, 0, 0] = np.nextafter(nudged[0, 0, 0], np.float32(300))
    assert packs.statistic_key("gram", rgb) == packs.statistic_key("gram", rgb.copy())
    assert packs.statistic_key("gram", rgb) != packs.statistic_key("gram", nudged)
    assert packs.statistic_key("gram", rgb) != packs.statistic_key("remd", rgb)


@pytest.mark.parametrize("change, field", [
    (dict(style_loss="remd", optimizer="adam"), "style_loss"),
    (dict(style_layers="conv2_block1_out"), "style_layers"),
    (dict(max_dim=256), "max_dim"),
    (dict(weights="random:3"), "weights"),
    (dict(pooling="avg"), "pooling"),
    (dict(precision="bfloat16"), "precision"),
])
def test_a_pack_made_for_other_statistics_is_refused_naming_the_field(tmp_path, change, field):
    path, _, _ = _pack(tmp_path, StyleConfig(weights="random", precision="float32"))
    style = packs.read_pack(path)[0]
    packs.check_fits(style, StyleConfig(weights="random", precision="float32").resolved())  # the same: fits
    with pytest.raises(NstkitError, match=f"was made for {field} ") as refused:
        packs.check_fits(style, StyleConfig(**{"weights": "random", "precision": "float32", **change}).resolved())
    assert "\n" not in str(refused.value)


def test_style_layer_weights_and_other_fields_do_not_unfit_a_pack(tmp_path):
    path, _, _ = _pack(tmp_path, StyleConfig(weights="random", precision="float32"))
    style = packs.read_pack(path)[0]
    layers = StyleConfig(weights="random").resolved().style_layers
    reweighted = {name: 2.0 * weight for name, weight in layers.items()}
    packs.check_fits(style, StyleConfig(weights="random", precision="float32", style_layers=reweighted, steps=5,
                                        style_weight=1.0, content_weight=3.0, seed=4).resolved())


def test_a_missing_damaged_or_foreign_file_is_one_line(tmp_path):
    with pytest.raises(NstkitError, match="does not exist"):
        packs.read_pack(tmp_path / "nowhere.npz")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(_pack(tmp_path)[0].read_bytes()[:200])
    with pytest.raises(NstkitError, match="not a readable nstkit style pack"):
        packs.read_pack(damaged)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(NstkitError, match="not a readable nstkit style pack"):
        packs.read_pack(foreign)


def test_a_weights_file_replaced_at_the_same_path_unfits_the_pack(tmp_path):
    weights = tmp_path / "resnet50.h5"
    weights.write_bytes(b"first weights")
    config = StyleConfig(weights=str(weights), precision="float32")
    path, _, _ = _pack(tmp_path, config)
    style = packs.read_pack(path)[0]
    packs.check_fits(style, config.resolved())
    weights.write_bytes(b"other weights")
    with pytest.raises(NstkitError, match="was made for weights .*sha256"):
        packs.check_fits(style, config.resolved())


def test_style_count_counts_a_packs_own_styles_from_its_metadata(tmp_path):
    path, _, _ = _pack(tmp_path)
    assert packs.style_count(["a.png", str(path), np.zeros((4, 4, 3))]) == 4
    assert packs.style_count([str(tmp_path / "elsewhere.npz")]) is None  # not readable here: not counted
