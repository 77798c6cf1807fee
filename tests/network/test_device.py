"""The device's defaults: precision "auto" becomes what the device computes natively, and the record says why.

CPU features are monkeypatched: the test machine's own are whatever CI runs on.
"""

from __future__ import annotations

import pytest
from nst_helpers import smooth_image

import nstkit
from nstkit.core.config import StyleConfig
from nstkit.network import device


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(device, "gpu_details", lambda: [])
    monkeypatch.setattr(device, "import_tensorflow_quietly", lambda: (None, []))


@pytest.mark.parametrize("features, native", [
    (frozenset({"avx2", "fma", "avx512f", "avx512_bf16"}), True),  # AMD Zen 4
    (frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}), True),  # Xeon with AMX
    (frozenset({"avx2", "fma", "avx512f"}), False),  # AVX-512 without BF16: bfloat16 would be emulated
    (frozenset({"avx2", "fma"}), False),
])
def test_auto_keeps_float32_and_says_which_native_precision_it_passed_over(monkeypatch, no_gpu, features, native):
    monkeypatch.setattr(device, "cpu_features", lambda: features)
    for optimizer, cost in (("lbfgs", "L-BFGS in bfloat16 stalls above"), ("adam", "Adam in bfloat16 ends above")):
        config, why = device.resolve_precision(StyleConfig(optimizer=optimizer))
        assert config.precision == "float32"  # bfloat16 failed the 2% quality rule with both (BENCHMARKS.md)
        assert why.startswith("auto: float32, from ")
        assert ("CPU's native bfloat16" in why) == native and ("no native bfloat16" in why) == (not native)
        assert (cost in why) == native, why


def test_a_precision_given_is_kept(monkeypatch, no_gpu):
    monkeypatch.setattr(device, "cpu_features", lambda: frozenset({"avx512_bf16"}))
    config, why = device.resolve_precision(StyleConfig(precision="float32"))
    assert config.precision == "float32" and why is None


def test_auto_never_picks_float16_where_the_run_cannot_take_it(monkeypatch):
    monkeypatch.setattr(device, "preferred_precision", lambda: "float16")  # a 7.x GPU
    monkeypatch.setattr(device, "gpu_details", lambda: [{"name": "Tesla T4", "compute_capability": (7, 5)}])
    monkeypatch.setattr(device, "import_tensorflow_quietly", lambda: (None, ["gpu"]))
    for options in (dict(tile_size=512), dict(optimizer="lbfgs"), {}):
        config, why = device.resolve_precision(StyleConfig(**options))
        assert config.precision == "float32" and "Tesla T4" in why, options


def test_a_run_records_the_precision_it_took_and_why(monkeypatch):
    monkeypatch.setattr(device, "cpu_features", lambda: frozenset())  # no native bfloat16 here
    result = nstkit.stylize(smooth_image(1), smooth_image(2, 40, 40), steps=2, max_dim=64, weights="random")
    assert result.record["config"]["precision"] == "float32"
    assert result.record["precision_chosen"] == "auto: float32, from no native bfloat16 on this CPU"
    given = nstkit.stylize(smooth_image(1), smooth_image(2, 40, 40), steps=2, max_dim=64, weights="random",
                           precision="float32")
    assert "precision_chosen" not in given.record


def test_peak_flops_follow_cores_clock_and_isa(monkeypatch):
    monkeypatch.setattr(device, "cpu_features", lambda: frozenset({"avx2", "fma", "avx512f", "avx512_bf16"}))
    fields = {"cpu MHz": "2500.000", "vendor_id": "AuthenticAMD", "cpu family": "25"}
    monkeypatch.setattr(device, "_cpuinfo_field", fields.get)
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1})
    float32, how = device.cpu_peak_flops("float32")
    assert float32 == 2 * 2.5e9 * 32 and "2 cores x 2.50 GHz x 32 FLOP/cycle" in how  # Zen 4: 256-bit FMA units
    assert device.cpu_peak_flops("bfloat16")[0] == 2 * float32
    fields["vendor_id"] = "GenuineIntel"
    assert device.cpu_peak_flops("float32")[0] == 2 * 2.5e9 * 64


@pytest.mark.parametrize("driver", [False, True])
def test_a_cuda_start_up_error_is_shown_only_where_a_gpu_driver_is_installed(monkeypatch, driver):
    """A CPU-only machine with TensorFlow's CUDA build logs "failed call to cuInit" at import: that is not a
    fault to show a reader unless there is a driver that failed."""
    tf, _ = device.import_tensorflow_quietly()
    monkeypatch.setattr(tf.test, "is_built_with_cuda", lambda: True)
    monkeypatch.setattr(device, "gpu_details", lambda: [])
    monkeypatch.setattr(device, "import_messages", lambda: [
        "E0000 00:00:1 123 cuda_executor.cc:1228] failed call to cuInit: INTERNAL: CUDA error: UNKNOWN ERROR (303)"])
    monkeypatch.setattr(device, "gpu_driver_present", lambda: driver)
    line = device.describe()
    assert line.startswith("CPU: ")
    if driver:
        assert line.endswith("(no GPU: failed call to cuInit: INTERNAL: CUDA error: UNKNOWN ERROR (303))")
    else:
        assert "cuInit" not in line and line.endswith("(no GPU: no GPU driver on this machine)")
