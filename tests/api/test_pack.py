"""Style packs made and used (`nstkit.api.pack`, `nstkit pack`): a run from a pack is the run from its images,
byte for byte, without their statistics' passes; a pack made for other statistics is refused in one line."""

import json
import warnings

import pytest
from nst_helpers import run_cli, smooth_image
from PIL import Image

import nstkit
from nstkit.api.pack import make_pack
from nstkit.core.record import record_path
from nstkit.objective import terms

COMMON = dict(steps=3, max_dim=64, weights="random:1", precision="float32")


@pytest.fixture
def computed(monkeypatch):
    """Every objective's list of the style statistics it computed itself (not taken from a pack)."""
    made = []
    real = terms.Objective.__init__

    def spied(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self.computed_style_stats)

    monkeypatch.setattr(terms.Objective, "__init__", spied)
    return made


@pytest.mark.parametrize("options", [{}, {"style_loss": "remd", "optimizer": "adam"}], ids=["gram", "remd"])
def test_a_run_from_a_pack_is_the_run_from_its_image_without_the_styles_passes(tiny_pair, tmp_path, computed,
                                                                               options):
    content, style = tiny_pair
    pack = make_pack([style], tmp_path / "style.npz", **COMMON, **options)
    assert json.loads(record_path(pack).read_text())["made_for"]["style_loss"] == options.get("style_loss", "gram")
    from_image = nstkit.stylize(content, str(style), **COMMON, **options, progress=False)
    assert computed[-1]  # the image's run computed its style's statistics
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the pack has every stage's statistics: nothing to warn about
        from_pack = nstkit.stylize(content, str(pack), **COMMON, **options, progress=False)
    assert computed[-1] == []
    assert from_pack.image.tobytes() == from_image.image.tobytes()
    assert from_pack.record["inputs"]["style"]["made_from"]["sha256"] == from_image.record["inputs"]["style"]["sha256"]


def test_a_pack_of_two_styles_blends_as_its_images_do_and_serves_a_batch(tmp_path, computed):
    content = smooth_image(1)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(smooth_image(2, 40, 40)).save(first)
    Image.fromarray(smooth_image(3, 48, 40)).save(second)
    pack = make_pack([first, second], tmp_path / "two.npz", **COMMON)
    options = dict(COMMON, style_blend=[0.3, 0.7], optimizer="adam", learning_rate=5.0, progress=False)
    variants = [{"style_weight": 1e6}, {"style_weight": 1e8}]
    from_images = nstkit.stylize_batch(content, [str(first), str(second)], variants, **options)
    from_pack = nstkit.stylize_batch(content, str(pack), variants, **options)
    assert computed[-1] == []
    for a, b in zip(from_images, from_pack):
        assert a.image.tobytes() == b.image.tobytes()


def test_a_stage_the_pack_lacks_is_computed_from_its_pixels_and_said(tmp_path):
    content, style = smooth_image(1, 96, 128), tmp_path / "style.png"
    Image.fromarray(smooth_image(2, 96, 96)).save(style)
    options = dict(COMMON, max_dim=96)
    run = dict(options, coarse_levels=1, progress=False)
    pack = make_pack([style], tmp_path / "style.npz", **options)  # one stage at 96 px
    from_image = nstkit.stylize(content, str(style), **run)
    with pytest.warns(nstkit.core.errors.NstkitWarning, match="no statistics for this run's stage at 48x36 px"):
        from_pack = nstkit.stylize(content, str(pack), **run)
    assert from_pack.image.tobytes() == from_image.image.tobytes()


def test_cli_makes_a_pack_and_refuses_one_made_for_other_statistics_in_one_line(tiny_pair, tmp_path):
    content, style = tiny_pair
    pack = tmp_path / "style.npz"
    flags = ("--max-dim", "64", "--weights", "random:1", "--precision", "float32")
    made = run_cli("pack", style, "-o", pack, *flags)
    assert made.returncode == 0, made.stderr
    assert str(pack) in made.stdout and record_path(pack).exists()
    refused = run_cli("stylize", content, pack, "-o", tmp_path / "out.png", "--steps", "2", "--style-loss", "remd",
                      *flags)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "was made for style_loss gram, this run's remd" in refused.stderr and not (tmp_path / "out.png").exists()
    ran = run_cli("stylize", content, pack, "-o", tmp_path / "out.png", "--steps", "2", "-q", *flags)
    assert ran.returncode == 0, ran.stderr
    before = style.read_bytes()
    for args, words in [(("-o", style), "must end in .npz"), (("-o", pack, "--style-scale", "2"), "style_scale"),
                        (("-o", pack, "--preserve-color", "luminance"), "preserve_color luminance"),
                        (("-o", pack, "--color-transfer", "histogram"), "color_from content")]:
        refused = run_cli("pack", style, *args, *flags)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and words in refused.stderr, refused.stderr
    assert style.read_bytes() == before


def test_a_clip_from_a_pack_is_the_clip_from_its_image(tiny_pair, tmp_path, computed):
    from nstkit.api.video import stylize_video
    from nstkit.media.clips import Clip

    _, style = tiny_pair
    base = smooth_image(1, 80, 120)
    clip = Clip([base[4:68, 2 * i: 2 * i + 96] for i in range(3)], 10.0, "pan", [f"frame_{i:05d}" for i in range(3)])
    options = dict(weights="random:1", steps=2, frame_steps=1, max_dim=64, precision="float32", progress=False)
    pack = make_pack([style], tmp_path / "style.npz", max_dim=64, weights="random:1", precision="float32")
    from_image = stylize_video(clip, str(style), None, **options)
    from_pack = stylize_video(clip, str(pack), None, **options)
    assert computed[-1] == []  # one objective for the clip's frames, and the pack gave it every style statistic
    assert [f.tobytes() for f in from_pack.frames] == [f.tobytes() for f in from_image.frames]
    assert from_pack.record["inputs"]["styles"][0]["made_from"] == from_image.record["inputs"]["styles"][0]


def test_a_batch_whose_members_need_more_layers_than_the_pack_holds_computes_them(tiny_pair, tmp_path):
    # The batch's objective takes the union of its members' layers; the pack's entry has its own only.
    content, style = tiny_pair
    pack = make_pack([style], tmp_path / "style.npz", **COMMON)
    options = dict(COMMON, optimizer="adam", learning_rate=5.0, progress=False)
    variants = [{}, {"style_layers": "conv1_relu,conv2_block1_out", "style": str(style)}]
    from_image = nstkit.stylize_batch(content, str(style), variants, **options)
    from_pack = nstkit.stylize_batch(content, str(pack), variants, **options)
    for a, b in zip(from_image, from_pack):
        assert a.image.tobytes() == b.image.tobytes()


def test_a_sweep_counts_a_packs_styles_for_its_blend(tmp_path):
    import concurrent.futures

    first, second = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(smooth_image(2, 40, 40)).save(first)
    Image.fromarray(smooth_image(3, 48, 40)).save(second)
    pack = make_pack([first, second], tmp_path / "two.npz", **COMMON)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        swept = nstkit.sweep(smooth_image(1), str(pack), {"style_weight": [1e7]}, executor=executor,
                             style_blend=[0.3, 0.7], progress=False, **dict(COMMON, steps=1))
    assert [row.get("error") for row in swept.rows] == [None]
