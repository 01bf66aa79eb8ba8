"""Agent keys: thumbprint ids, private files, registration."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatekit._exceptions import ConfigurationError
from gatekit.delegation import AgentKey, KeyRecord, key_id_of, register_key
from gatekit.store import MemoryStore


def test_the_key_id_is_the_rfc_8037_thumbprint() -> None:
    # RFC 8037, appendix A.1 (the key) and A.3 (its RFC 7638 thumbprint).
    seed = base64.urlsafe_b64decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
    key = Ed25519PrivateKey.from_private_bytes(seed)
    assert key_id_of(key.public_key()) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_saved_key_is_private_and_loads_back(tmp_path: Path) -> None:
    key = AgentKey.generate("worker-7")
    path = key.save(tmp_path / "keys")
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = AgentKey.load(path)
    assert loaded.identity == "worker-7"
    assert loaded.key_id == key.key_id
    assert (tmp_path / "keys" / f"{key.key_id}.pub").read_text() == key.public_pem


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = AgentKey.generate("w").save(tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        AgentKey.load(path)


def test_saving_never_overwrites_a_key(tmp_path: Path) -> None:
    key = AgentKey.generate("w")
    key.save(tmp_path)
    with pytest.raises(FileExistsError):
        key.save(tmp_path)


def test_a_record_must_be_named_by_its_own_thumbprint() -> None:
    key, other = AgentKey.generate("a"), AgentKey.generate("b")
    forged = KeyRecord(key_id=other.key_id, identity="b", public_key=key.public_pem)
    with pytest.raises(ConfigurationError, match="thumbprint"):
        register_key(MemoryStore(), forged)


def test_a_key_is_registered_once() -> None:
    store, key = MemoryStore(), AgentKey.generate("a")
    register_key(store, key)
    with pytest.raises(ValueError, match="already registered"):
        register_key(store, key, root=True)  # no quiet promotion to a root
