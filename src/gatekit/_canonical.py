"""Canonical JSON (RFC 8785) bytes for digests and audit records, fast for the common case.

The ``rfc8785`` library is exact but pure Python (tens of µs per record). For
values made only of strings with ASCII keys, safe integers, booleans and null,
RFC 8785 output is byte-identical to ``json.dumps`` with sorted keys, compact
separators and no ASCII escaping, which runs in C. Anything else (floats,
non-ASCII keys whose UTF-16 order may differ, huge integers) goes to ``rfc8785``.
A test pins the equivalence.

Telling the two apart is done on ``json.dumps``'s own output where it can be (in
C): all-ASCII text has no non-ASCII keys, a run of 16 digits is the only way an
unsafe integer can appear, and re-reading the text finds any float. Text that
is not all ASCII is walked in Python, as before.
"""

from __future__ import annotations

import json
import re
from typing import Any

import rfc8785

_SAFE_INT = 2**53 - 1


_LONG_DIGITS = re.compile(r"[0-9]{16}")


class _FloatFound(Exception):
    pass


def _no_floats(_: str) -> float:
    raise _FloatFound


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` as UTF-8 bytes."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):  # not plain JSON (e.g. NaN): the library says why
        return rfc8785.dumps(value)
    if text.isascii():
        if _LONG_DIGITS.search(text) is None and _without_floats(text):
            return text.encode()
        return rfc8785.dumps(value)
    return text.encode() if _plain(value) else rfc8785.dumps(value)


def _without_floats(text: str) -> bool:
    try:
        json.loads(text, parse_float=_no_floats)
    except _FloatFound:
        return False
    return True


def _plain(value: Any) -> bool:
    # Exact type checks and loops rather than all(...): this runs on every decision.
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_SAFE_INT <= value <= _SAFE_INT)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not _plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110 - all() with a generator is slower here
            if not _plain(item):
                return False
        return True
    return False  # floats, str/int subclasses, anything else: the exact library path
