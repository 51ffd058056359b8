"""Atomic writes for training outputs: the names the rest of the toolkit imports.

The writing itself is :mod:`toolkit.data.io`'s (temp file beside the target, then ``os.replace``);
these wrappers keep the interface callers rely on: parent folders created, the path returned.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from toolkit.data.io import write_json, write_text


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    write_text(path, text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; returns the path."""
    write_json(path, obj)
    return Path(path)
