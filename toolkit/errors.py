"""Errors the command line reports as one line (no traceback): bad input, not bugs."""


class UserError(Exception):
    """Bad input from the user: a missing file, a bad config key, an unusable corpus.

    The message names the file or key and says how to fix it.
    """
