"""A run's plan: coarse-to-fine levels below the full size, a tiled run's start then its tiles, and a word
when fewer levels run than were asked for (#24: it was silent)."""

import warnings

import pytest

from nstkit import StyleConfig
from nstkit.core.errors import NstkitWarning
from nstkit.run.schedule import schedule


def test_coarse_levels_come_first_each_a_factor_smaller():
    config = StyleConfig(steps=10, coarse_levels=2).resolved()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NstkitWarning)  # all levels fit: no word
        stages = schedule(config, (256, 384))
    assert [stage.size for stage in stages] == [(64, 96), (128, 192), (256, 384)]
    assert [stage.steps for stage in stages] == [5, 5, 10] and stages[-1].scale == 1.0


def test_levels_that_would_be_too_small_are_dropped_with_one_warning():
    config = StyleConfig(steps=4, coarse_levels=8).resolved()
    with pytest.warns(NstkitWarning, match=r"coarse_levels 8: 1 coarse level\(s\) run, since level 2 would be under "
                                           r"32 px at 96x64 px") as caught:
        stages = schedule(config, (64, 96))
    assert [stage.size for stage in stages] == [(32, 48), (64, 96)] and len(caught) == 1


def test_a_tiled_run_starts_in_one_pass_below_its_tiles():
    config = StyleConfig(steps=3, tile_size=256, tile_start_dim=512, tile_start_steps=7).resolved()
    stages = schedule(config, (1024, 1536))
    assert [(stage.source, stage.size, stage.steps) for stage in stages] == [("image", (341, 512), 7),
                                                                             ("tiles", (1024, 1536), 3)]
