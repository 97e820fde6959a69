"""Errors caused by the user's input or machine, reported as one line without a traceback."""


class UserError(Exception):
    """A problem the user can fix; the entry points print its message and exit with status 1."""


class DivergenceError(UserError):
    """A loss became NaN or infinite: the run stops, keeping the checkpoints saved before."""
