"""Fixtures for the tests; shared helpers live in nst_helpers.py."""

import pytest
from nst_helpers import smooth_image
from PIL import Image


@pytest.fixture
def tiny_pair(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(smooth_image(1)).save(content)
    Image.fromarray(smooth_image(2, 40, 40)).save(style)
    return content, style
