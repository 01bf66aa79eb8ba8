"""API keys of the decision server: who may call which route.

A key is ``gk_<key id>_<secret>``: the key id finds the record, the secret (256
random bits) proves possession. Only a SHA-256 of the whole key is stored — a
slow password hash buys nothing for a secret that cannot be guessed — and it is
compared in constant time. A key is shown once, when created, and can be revoked.

Roles nest: an ``admin`` may do what a ``reviewer`` may, who may do what an
``agent`` may.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from gatekit._exceptions import ConfigurationError, ValidationError
from gatekit._identity import canonical_identity

__all__ = [
    "ApiKeyRecord",
    "ApiKeyStore",
    "Principal",
    "Role",
    "authenticate",
    "create_key",
    "key_id_of",
    "list_keys",
    "revoke_key",
]

_PREFIX = "gk_"
_KEY_ID_BYTES = 8
_HEX = frozenset("0123456789abcdef")
_MAX_TOKEN = 200  # anything longer is not ours; refused before hashing


class Role(StrEnum):
    AGENT = "agent"  # decide, consume, report outcomes, preview
    REVIEWER = "reviewer"  # also list, approve and reject reviews
    ADMIN = "admin"  # also the audit log and the keys

    def allows(self, needed: Role) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.AGENT: 0, Role.REVIEWER: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    name: str
    role: Role
    secret_hash: str
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the key's holder, as recorded (e.g. as the reviewer)."""

    key_id: str
    name: str
    role: Role


@runtime_checkable
class ApiKeyStore(Protocol):
    """The store methods API keys need; every one atomic."""

    def add_api_key(self, record: ApiKeyRecord) -> None: ...

    def api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    def api_keys(self) -> list[ApiKeyRecord]: ...

    def revoke_api_key(self, key_id: str, at: float) -> bool:
        """Mark the key revoked; False if unknown."""
        ...


def create_key(store: object, *, name: str, role: Role | str) -> tuple[str, ApiKeyRecord]:
    """A new key for ``name`` with ``role``: the key itself (show it once, it is not
    kept) and its stored record."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("an API key needs a name of 1 to 200 characters", field="name")
    canonical_identity(name, field="name")  # it becomes the reviewer's identity: visible only
    try:
        role = Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ValidationError(f"unknown role {role!r} (one of {choices})", field="role") from None
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    token = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKeyRecord(key_id, name, role, _hash(token), created_at=time.time())
    _key_store(store).add_api_key(record)
    return token, record


def authenticate(store: object, token: str) -> Principal | None:
    """The holder of ``token``, or None for a malformed, unknown or revoked key."""
    key_id = key_id_of(token)
    if key_id is None:
        return None
    record = _key_store(store).api_key(key_id)
    if record is None or record.revoked_at is not None:
        return None
    if not hmac.compare_digest(record.secret_hash, _hash(token)):
        return None
    return Principal(record.key_id, record.name, record.role)


def list_keys(store: object) -> list[ApiKeyRecord]:
    """Every key ever created, revoked ones included, oldest first."""
    return _key_store(store).api_keys()


def revoke_key(store: object, key_id: str) -> bool:
    """Revoke a key at once (in every replica: the check reads the store)."""
    return _key_store(store).revoke_api_key(key_id, time.time())


def key_id_of(token: str) -> str | None:
    """The public key id in a well-formed key, else None."""
    if len(token) > _MAX_TOKEN or not token.startswith(_PREFIX):
        return None
    key_id, _, secret = token[len(_PREFIX) :].partition("_")
    if len(key_id) != 2 * _KEY_ID_BYTES or not secret or not _HEX.issuperset(key_id):
        return None
    return key_id


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _key_store(store: object) -> ApiKeyStore:
    if not isinstance(store, ApiKeyStore):
        raise ConfigurationError(f"{type(store).__name__} cannot keep API keys")
    return store
