"""The tested TensorFlow range: one warning past its top, and the same range in pyproject, Makefile and README."""

import re
import warnings
from importlib import metadata

import pytest
from nst_helpers import ROOT

from nstkit.network import support


@pytest.mark.parametrize("installed, warns", [("2.16.2", False), ("2.21.0", False), ("2.22.0rc1", True),
                                              ("3.0.0", True)])
def test_only_a_newer_tensorflow_than_tested_warns(monkeypatch, installed, warns):
    monkeypatch.setattr(support.metadata, "version", lambda name: installed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = support.warn_if_untested_tensorflow()
    assert bool(message) == warns and len(caught) == warns
    if warns:
        assert installed in message and "pip install 'tensorflow<2.22'" in message


def test_no_tensorflow_distribution_no_warning(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(support.metadata, "version", missing)
    assert support.warn_if_untested_tensorflow() is None


def test_the_tested_range_is_what_pyproject_ci_and_readme_say():
    oldest, newest = support.TESTED_TENSORFLOW
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"tensorflow>={oldest}"' in pyproject  # the floor, and no cap
    assert re.search(rf"tensorflow=={re.escape(oldest)}\.\d+", (ROOT / "Makefile").read_text())
    assert f"TensorFlow {oldest} to {newest}" in (ROOT / "README.md").read_text()
