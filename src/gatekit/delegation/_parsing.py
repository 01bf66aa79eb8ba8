"""Strict reading of compact JWS before anything trusts them: sizes, base64url,
JSON without duplicate keys or NaN/Infinity, exact claim types, and the header
allow-list. PyJWT's EdDSA algorithm checks the signature afterwards, over the
signing input split out here; it never sees a token that fails here."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gatekit.delegation.errors import DelegationRefused
from gatekit.delegation.scope import DelegationScope
from gatekit.delegation.tokens import ALGORITHM

__all__ = ["MAX_BODY_BYTES", "MAX_TOKENS", "MAX_TOKEN_BYTES", "Jws", "parse"]

MAX_TOKEN_BYTES = 8192
MAX_TOKENS = 32  # a hard bound on work, before the (smaller) depth setting applies
MAX_BODY_BYTES = 1024 * 1024
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256: a thumbprint
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ALLOWED_HEADER = frozenset({"alg", "typ", "kid"})


@dataclass(frozen=True, slots=True)
class Jws:
    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes  # the ASCII of `header.claims`, what the signature covers
    signature: bytes

    @property
    def key_id(self) -> str:
        return str(self.header["kid"])


def _b64decode(segment: str) -> bytes:
    if not _B64URL.match(segment):
        raise DelegationRefused("malformed")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        raise DelegationRefused("malformed") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DelegationRefused("malformed")
        found[key] = value
    return found


def _no_constants(name: str) -> Any:
    raise DelegationRefused("malformed")  # NaN, Infinity, -Infinity


def _object(segment: str) -> dict[str, Any]:
    try:
        text = _b64decode(segment).decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, an int of 5000 digits…
        raise DelegationRefused("malformed") from None
    if not isinstance(value, dict):
        raise DelegationRefused("malformed")
    return value


_MAX_TIME = 2**53  # seconds since the epoch that a double holds exactly


def _is_int(value: Any) -> bool:
    return type(value) is int and 0 <= value < _MAX_TIME  # not bool, not "999", not 1e400


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 512


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def _is_cnf(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"jkt"} and _is_str(value["jkt"])


def _is_scope(value: Any) -> bool:
    try:
        DelegationScope.from_claims(value)
    except ValueError:
        return False
    return True


Shape = dict[str, Callable[[Any], bool]]

TOKEN_CLAIMS: Shape = {
    "iss": _is_str,
    "aud": _is_str,
    "jti": _is_str,
    "iat": _is_int,
    "nbf": _is_int,
    "exp": _is_int,
    "sub": _is_str,
    "cnf": _is_cnf,
    "scope": _is_scope,
}
# ``for``: the parent's delegatee, on a child a root key issued on its behalf.
OPTIONAL_TOKEN_CLAIMS: Shape = {"parent": _is_hex64, "for": _is_str}
PROOF_CLAIMS: Shape = {
    "iss": _is_str,
    "aud": _is_str,
    "iat": _is_int,
    "nonce": lambda v: isinstance(v, str) and 16 <= len(v) <= 128,
    "bh": _is_hex64,
    "th": _is_hex64,
    "op": _is_str,
}


def _check_claims(claims: dict[str, Any], required: Shape, optional: Shape) -> None:
    if not set(required) <= set(claims) or not set(claims) <= set(required) | set(optional):
        raise DelegationRefused("malformed")
    for name, value in claims.items():
        if not {**required, **optional}[name](value):
            raise DelegationRefused("malformed")


def parse(raw: Any, typ: str, required: Shape, optional: Shape | None = None) -> Jws:
    """Step 1 (size and strict parsing) for one compact JWS. Claim types are checked
    against what ``typ`` requires; a JWS of another type (a proof offered as a token)
    is left for the header step to refuse by name."""
    if not isinstance(raw, str) or not raw:
        raise DelegationRefused("malformed")
    if len(raw) > MAX_TOKEN_BYTES:
        raise DelegationRefused("too_large")
    parts = raw.split(".")
    if len(parts) != 3 or not parts[2]:
        raise DelegationRefused("malformed")
    header, claims = _object(parts[0]), _object(parts[1])
    signature = _b64decode(parts[2])
    if header.get("typ") == typ:
        _check_claims(claims, required, optional or {})
    # Every segment matched the base64url alphabet above, so the text is ASCII.
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return Jws(raw, header, claims, signing_input, signature)


def check_header(jws: Jws, typ: str) -> None:
    """Step 2: only ``alg: EdDSA``, the expected gatekit ``typ`` and a thumbprint ``kid``;
    ``none``, HMAC, ``jku``/``x5u``/``jwk``/``crit`` or anything unknown is refused."""
    header = jws.header
    if header.get("alg") != ALGORITHM:
        raise DelegationRefused("alg_not_allowed")
    if not set(header) <= _ALLOWED_HEADER:
        raise DelegationRefused("header_not_allowed")
    if header.get("typ") != typ:
        raise DelegationRefused("typ_not_allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KEY_ID.match(kid):
        raise DelegationRefused("bad_key_id")
