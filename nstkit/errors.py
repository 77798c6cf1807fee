"""The one exception type a user should ever see from nstkit.

Every problem a user can cause (a bad path, an unknown layer, a weight of NaN)
is raised as `NstkitError` with a one-line message that names the problem and
the fix. The CLI prints that line and exits with status 2, so a traceback
always means a bug in nstkit, never a mistake by the user.
"""


class NstkitError(ValueError):
    """A problem with the user's input, phrased as one actionable line."""

    exit_code = 2
