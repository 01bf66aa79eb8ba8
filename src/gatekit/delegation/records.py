"""What the store keeps for delegation: agent public keys, and the store's side of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["DelegationStore", "KeyRecord", "KeyStatus"]


class KeyStatus:
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One registered agent public key. ``root`` keys may issue tokens from nothing;
    ``not_before``/``not_after`` (seconds since the epoch) bound when it may sign."""

    key_id: str
    identity: str
    public_key: str  # PEM
    algorithm: str = "EdDSA"
    status: str = KeyStatus.ACTIVE
    root: bool = False
    not_before: float | None = None
    not_after: float | None = None
    revoked_at: float | None = None

    def usable_at(self, now: float) -> bool:
        if self.not_before is not None and now < self.not_before:
            return False
        return self.not_after is None or now < self.not_after


@runtime_checkable
class DelegationStore(Protocol):
    """The store methods delegation needs; every one atomic."""

    def add_agent_key(self, record: KeyRecord) -> None:
        """Register a key; registering a known key id again replaces nothing and raises."""
        ...

    def agent_key(self, key_id: str) -> KeyRecord | None: ...

    def revoke_agent_key(self, key_id: str, at: float) -> bool:
        """Mark the key revoked; False if unknown."""
        ...

    def nonce_seen(self, nonce: str) -> bool: ...

    def use_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        """Record ``nonce`` unless it is already there; True only for the first caller
        (in every process on this store). Forgets nonces past their expiry."""
        ...
