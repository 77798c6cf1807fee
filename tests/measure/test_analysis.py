import numpy as np
import pytest
from nst_helpers import smooth_image

from nstkit.measure.analysis import layer_statistics, normalised_entropy, peakiness


def test_peakiness_and_entropy_of_known_arrays():
    flat = np.ones(100)
    spike = np.zeros(100)
    spike[3] = 5.0
    assert peakiness(flat) == pytest.approx(1.0)
    assert peakiness(spike) == pytest.approx(100.0)
    assert normalised_entropy(flat) == pytest.approx(1.0)
    assert normalised_entropy(spike) == pytest.approx(0.0)
    half = np.r_[np.ones(50), np.zeros(50)]
    assert normalised_entropy(half) == pytest.approx(np.log(50) / np.log(100))


def test_layer_statistics_rows():
    rows = layer_statistics(smooth_image(0, 64, 64), ["conv1_relu", "conv3_block1_out"])
    assert [r["layer"] for r in rows] == ["conv1_relu", "conv3_block1_out"]
    for row in rows:
        assert row["feature_peakiness"] >= 1 and 0 < row["feature_entropy"] <= 1
        assert row["gram_peakiness"] >= 1 and 0 < row["gram_entropy"] <= 1
