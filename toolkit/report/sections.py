"""Generated sections inside a hand-written markdown file (a recipe's ``RESULTS.md``).

A section is everything from ``<!-- recur report: begin KEY -->`` to the next ``<!-- recur report: end -->``
(``KEY``: the experiment folder it was generated from, e.g. ``exp/fsdd``). Replacing one leaves every other
byte of the file as it was, so the hand-written parts around it (commands, what did not help) survive.
"""

from __future__ import annotations

import re

from toolkit.errors import UserError

_BEGIN = re.compile(r"<!-- recur report: begin (.+?) -->")
_END = re.compile(r"<!-- recur report: end(?: [^>]*)? -->")
END_MARKER = "<!-- recur report: end -->"


def begin_marker(key: str) -> str:
    return f"<!-- recur report: begin {key} -->"


def section(key: str, body: str) -> str:
    """The markers with ``body`` between them (``body`` ends with a newline or is empty)."""
    return f"{begin_marker(key)}\n{body}{END_MARKER}"


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def spans(text: str, where: str = "the file") -> dict[str, tuple[int, int]]:
    """{key: (start of its begin marker, end of its end marker)} for every section of ``text``; a begin marker
    without its end marker, an end marker without a begin, or a key used twice is a one-line error."""
    found: dict[str, tuple[int, int]] = {}
    pos = 0
    while True:
        begin = _BEGIN.search(text, pos)
        end = _END.search(text, pos)
        if begin is None:
            if end is not None:
                raise UserError(f"{where}, line {_line(text, end.start())}: '{END_MARKER}' without a begin marker")
            return found
        if end is None or end.start() < begin.start():
            at = begin.start() if end is None else end.start()
            raise UserError(
                f"{where}, line {_line(text, at)}: recur report's markers do not pair up (every "
                f"'{begin_marker('KEY')}' needs its own '{END_MARKER}' after it)"
            )
        nested = _BEGIN.search(text, begin.end(), end.start())
        if nested is not None:
            raise UserError(
                f"{where}, line {_line(text, nested.start())}: a begin marker inside the section opened on line "
                f"{_line(text, begin.start())}; close that one first with '{END_MARKER}'"
            )
        key = begin.group(1).strip()
        if key in found:
            raise UserError(f"{where}, line {_line(text, begin.start())}: a second section for {key}; keep one of them")
        found[key] = (begin.start(), end.end())
        pos = end.end()


def replace_section(text: str, key: str, body: str, where: str = "the file") -> tuple[str, str]:
    """``text`` with ``key``'s section holding ``body``, and what happened: ``"unchanged"``, ``"replaced"`` or
    ``"added"`` (no section for ``key`` yet: appended at the end under a heading naming it)."""
    found = spans(text, where)
    new = section(key, body)
    if key in found:
        start, stop = found[key]
        if text[start:stop] == new:
            return text, "unchanged"
        return text[:start] + new + text[stop:], "replaced"
    sep = "" if not text else "\n" if text.endswith("\n") else "\n\n"
    return f"{text}{sep}## `{key}`\n\n{new}\n", "added"
