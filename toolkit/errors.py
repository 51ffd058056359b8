"""Errors the command line reports as one line (no traceback): bad input, not bugs.

``recur`` turns a :class:`UserError` (and its subclasses) into ``recur <command>: error: <message>`` and
exit status 2; any other exception is a bug and keeps its traceback (exit status 1). So raise a
``UserError`` only for what the user can fix (a missing or unreadable file, a bad option value, an
unusable corpus), never to wrap whatever exception a block of code happens to raise.
"""


class UserError(Exception):
    """Bad input from the user: a missing file, a bad config key, an unusable corpus.

    The message names the file or key and says how to fix it.
    """


class ConfigError(UserError, ValueError):
    """A bad option or config value (``--jobs 0``, ``max_seconds: -1``).

    Also a ``ValueError``, so Python callers that validate arguments with ``except ValueError`` (and
    tests with ``pytest.raises(ValueError)``) keep working when a library function raises it.
    """
