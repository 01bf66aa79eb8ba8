"""Canonical JSON (RFC 8785) bytes for digests and audit records, fast for the common case.

The ``rfc8785`` library is exact but pure Python (tens of µs per record). For
values made only of strings with ASCII keys, safe integers, booleans and null,
RFC 8785 output is byte-identical to ``json.dumps`` with sorted keys, compact
separators and no ASCII escaping, which runs in C. Anything else (floats,
non-ASCII keys whose UTF-16 order may differ, huge integers) goes to ``rfc8785``.
A test pins the equivalence.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_SAFE_INT = 2**53 - 1


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` as UTF-8 bytes."""
    if _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return rfc8785.dumps(value)


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
