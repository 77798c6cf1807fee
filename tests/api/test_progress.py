"""Progress from Python: `progress=True` shows a bar with the loss terms on standard error, False none, and None
one only where someone watches (a notebook, a terminal; `NSTKIT_PROGRESS` over both)."""

import re

import pytest
from nst_helpers import smooth_image

import nstkit
from nstkit.api import progress
from nstkit.core.errors import NstkitError

CONTENT, STYLE = smooth_image(1), smooth_image(2, 40, 40)
TINY = dict(steps=3, max_dim=48, weights="random")


def _bars(err: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]", err) if "step" in line and "|" in line]


def test_progress_true_shows_a_bar_with_the_loss_terms(capsys):
    nstkit.stylize(CONTENT, STYLE, progress=True, **TINY)
    bars = _bars(capsys.readouterr().err)
    assert bars and "3/3" in bars[-1], bars
    assert all(f"{term}=" in bars[-1] for term in ("total", "content", "style", "tv")), bars[-1]


def test_progress_false_and_a_pipe_show_none(capsys, monkeypatch):
    nstkit.stylize(CONTENT, STYLE, progress=False, **TINY)
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    nstkit.stylize(CONTENT, STYLE, **TINY)  # pytest's captured stderr is no terminal, and no kernel runs here
    assert _bars(capsys.readouterr().err) == []


def test_the_default_follows_the_environment_then_who_watches(monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.setattr(progress, "_stderr_is_a_terminal", lambda: True)
    assert progress.wanted(None) and not progress.wanted(False)
    monkeypatch.setenv(progress.PROGRESS_ENV, "0")
    assert not progress.wanted(None) and progress.wanted(True)
    monkeypatch.setattr(progress, "_stderr_is_a_terminal", lambda: False)
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    assert progress.wanted(None)
    monkeypatch.setenv(progress.PROGRESS_ENV, "yes")
    with pytest.raises(NstkitError, match="NSTKIT_PROGRESS=yes: use 0"):
        progress.wanted(None)


def test_a_batch_counts_its_steps_once_and_shows_the_first_members_losses(capsys):
    results = nstkit.stylize_batch(CONTENT, STYLE, [{"style_weight": 1e6}, {"style_weight": 1e8}], progress=True,
                                   **TINY)
    bars = _bars(capsys.readouterr().err)
    assert bars and "3/3" in bars[-1], bars
    first, second = (f"style={result.history['style'][-1]:.3g}" for result in results)
    assert first in bars[-1] and second not in bars[-1], (first, second, bars[-1])


def test_a_resumed_run_says_so_and_its_bar_starts_at_the_step_it_resumed(tmp_path, capsys):
    checkpoint, run = tmp_path / "run.npz", {**TINY, "steps": 5}
    nstkit.stylize(CONTENT, STYLE, checkpoint=checkpoint, checkpoint_every=1, progress=False,
                   callbacks=[lambda p: p.stop() if p.step == 2 else None], **run)
    capsys.readouterr()
    nstkit.stylize(CONTENT, STYLE, checkpoint=checkpoint, resume=True, progress=True, **run)
    err = capsys.readouterr().err
    assert "nstkit: resuming from step 2 of 5" in err
    bars = _bars(err)
    assert "2/5" in bars[0] and "5/5" in bars[-1] and not any(" 0/5" in bar or "|0/5" in bar for bar in bars), bars


def test_the_bar_closes_when_the_run_fails(monkeypatch):
    closed = []
    real = progress.ProgressBar.close

    def close(self):
        closed.append(self.bar is not None)
        real(self)

    monkeypatch.setattr(progress.ProgressBar, "close", close)

    def fail(p):
        if p.step == 2:
            raise RuntimeError("a callback failed")

    with pytest.raises(RuntimeError, match="a callback failed"):
        nstkit.stylize(CONTENT, STYLE, progress=True, callbacks=[fail], **TINY)
    assert closed == [True]  # opened at the first step, closed on the way out
