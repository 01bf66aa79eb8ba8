"""Registering agents' public keys in the store, and revoking them."""

from __future__ import annotations

import time

from gatekit._exceptions import ConfigurationError
from gatekit.delegation.keys import AgentKey, key_id_of, public_key_from_pem, public_pem
from gatekit.delegation.records import DelegationStore, KeyRecord

__all__ = ["register_key", "revoke_key"]


def register_key(
    store: object,
    key: AgentKey | KeyRecord,
    *,
    root: bool = False,
    not_before: float | None = None,
    not_after: float | None = None,
) -> KeyRecord:
    """Register an agent's public key (only the public half is stored). ``root``
    keys may issue delegation tokens from nothing. A record's key id must be its
    key's thumbprint, so nobody registers a key under another key's name."""
    delegation_store = _delegation_store(store)
    if isinstance(key, AgentKey):
        record = KeyRecord(
            key_id=key.key_id,
            identity=key.identity,
            public_key=public_pem(key.public_key),
            root=root,
            not_before=not_before,
            not_after=not_after,
        )
    else:
        record = key
        if key_id_of(public_key_from_pem(record.public_key)) != record.key_id:
            raise ConfigurationError("the key id is not the public key's thumbprint")
    delegation_store.add_agent_key(record)
    return record


def revoke_key(store: object, key_id: str, *, at: float | None = None) -> bool:
    """Revoke a key: it signs nothing more, and every token under it stops working."""
    return _delegation_store(store).revoke_agent_key(key_id, time.time() if at is None else at)


def _delegation_store(store: object) -> DelegationStore:
    if not isinstance(store, DelegationStore):
        raise ConfigurationError(f"{type(store).__name__} cannot keep delegation keys")
    return store
