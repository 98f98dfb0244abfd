"""Read a JSON object from a file a user handed over, refusing it in one line naming the file.

Checkpoint and decider folders carry ``config.json`` files that users copy, edit and truncate.
``json.loads`` alone says ``Expecting value: line 1 column 1 (char 0)`` without the file, and a
``null`` file fails later as ``'NoneType' object has no attribute 'get'``; every reader of such a
file goes through :func:`read_json_object` instead, so the message names the file, the line and
column, and never echoes the file's content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_JSON_TYPES = {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
               str: "a string", list: "an array"}


def json_type(value: object) -> str:
    """How a JSON value's type reads in a message: ``null``, ``an array``, ``a string``..."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def read_json_object(path: str | Path, label: str | None = None) -> dict[str, Any]:
    """The JSON object in ``path``; anything else raises one line naming the file.

    Args:
        path: the file.
        label: how the message names the file (e.g. ``sb3:runs/d/config.json``); default the
            path.

    Raises:
        ValueError: the file is missing, unreadable, not UTF-8, not valid JSON (line and column
            given) or not a JSON object.
    """
    name = label or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{name}: missing") from None
    except OSError as exc:
        raise ValueError(f"{name}: cannot be read ({exc.strerror})") from None
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a JSON object, got {json_type(value)}")
    return value


__all__ = ["json_type", "read_json_object"]
