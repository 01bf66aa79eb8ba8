"""Canonical JSON (RFC 8785) bytes for digests and audit records, fast for the common case.

The ``rfc8785`` library is exact but pure Python (tens of µs per record). For
values made only of strings with ASCII keys, safe integers, booleans and null,
RFC 8785 output is byte-identical to ``json.dumps`` with sorted keys, compact
separators and no ASCII escaping, which runs in C. Anything else (floats,
non-ASCII keys whose UTF-16 order may differ, huge integers) goes to ``rfc8785``.
A test pins the equivalence.

Telling the two apart is done on ``json.dumps``'s own output where it can be (in
C): all-ASCII text has no non-ASCII keys, and re-reading the text with hooks on
numbers finds any float or unsafe integer. Text that is not all ASCII is walked
in Python, as before.

Values the caller typed itself (the engine's own strings, ids and lists of
them) need none of that: ``typed_json`` and ``json_string`` write them straight.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring  # the C escaper json.dumps uses
from typing import Any

import rfc8785

__all__ = ["canonical_json", "json_string", "typed_json"]

_SAFE_INT = 2**53 - 1


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encoder() -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)``, with its C encoder built once rather than on every call (as
    ``JSONEncoder.encode`` does). Without the cycle check: a value holding itself
    fails on the recursion limit instead, as deep values already do."""
    try:
        from _json import make_encoder  # what json.encoder uses when it can
    except ImportError:  # pragma: no cover - CPython always has the C module
        encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        )
        return encoder.encode
    chunks = make_encoder(None, _not_json, encode_basestring, None, ":", ",", True, False, False)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


_encode = _encoder()


class _NotPlain(Exception):
    pass


def _no_floats(_: str) -> float:
    raise _NotPlain


def _safe_int(text: str) -> int:
    # 2**53 has 16 digits: anything shorter is safe without converting it.
    if len(text) > 15 and abs(int(text)) > _SAFE_INT:
        raise _NotPlain
    return 0


_CHECKER = json.JSONDecoder(parse_float=_no_floats, parse_int=_safe_int)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` as UTF-8 bytes."""
    try:
        text = _encode(value)
    except (TypeError, ValueError):  # not plain JSON (e.g. NaN): the library says why
        return rfc8785.dumps(value)
    if text.isascii():
        return text.encode() if _only_safe_numbers(text) else rfc8785.dumps(value)
    return text.encode() if _plain(value) else rfc8785.dumps(value)


def typed_json(value: Any) -> bytes:
    """Canonical JSON of a value whose types the caller made itself: strings,
    booleans, None, integers within ±2**53, and lists and dicts of them with
    ASCII keys. For those, RFC 8785 is exactly the C encoder's output, so
    nothing is checked; agent-supplied values go through ``canonical_json``."""
    return _encode(value).encode()


def json_string(text: str) -> bytes:
    """One string as RFC 8785 writes it (the escapes of ``JSON.stringify``)."""
    return encode_basestring(text).encode()


def _only_safe_numbers(text: str) -> bool:
    try:
        _CHECKER.decode(text)
    except _NotPlain:
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
