"""Start images (`nstkit.media.start`): an init that is neither a start mode nor an existing file is one line that
lists the modes (a mistyped mode, e.g. "gaussian", is not reported as a missing image alone)."""

import pytest

from nstkit.core.config import INIT_CHOICES
from nstkit.core.errors import NstkitError
from nstkit.media.start import load_init_image


def test_an_unknown_start_mode_lists_the_modes(tmp_path):
    with pytest.raises(NstkitError) as refused:
        load_init_image(str(tmp_path / "gaussian"))
    message = str(refused.value)
    assert "\n" not in message and message.endswith("gaussian does not exist")
    assert all(f"'{mode}'" in message for mode in INIT_CHOICES if mode != "noise")  # "noise": the old name
