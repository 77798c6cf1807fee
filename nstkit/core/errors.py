"""The one exception type a user should ever see from nstkit.

Every problem a user can cause (a bad path, an unknown layer, a weight of NaN)
is raised as `NstkitError` with a one-line message that names the problem and
the fix. The CLI prints that line and exits with status 2, and a notebook
shows just that line, so a traceback always means a bug in nstkit, never a
mistake by the user.
"""


class NstkitError(ValueError):
    """A problem with the user's input, phrased as one actionable line."""

    exit_code = 2

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback: in a notebook too, a user's mistake is one line."""
        return [f"nstkit: error: {self}"]


class NstkitWarning(UserWarning):
    """Something nstkit did other than asked, said once in one line (the CLI prints ``nstkit: warning: ...``):
    nothing is ever dropped or changed without a word."""


def warn(message: str) -> None:
    import warnings

    warnings.warn(message, NstkitWarning, stacklevel=3)
