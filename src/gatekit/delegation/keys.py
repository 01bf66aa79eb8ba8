"""Agent keys: an Ed25519 key pair per agent identity, named by its JWK thumbprint.

The key id is the RFC 7638 thumbprint of the public key, so anyone holding the
public key computes the same id, and a token's ``cnf`` can name a key without
trusting whoever sent it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gatekit._exceptions import ConfigurationError

__all__ = ["AgentKey", "b64url", "key_id_of", "public_key_from_pem", "public_pem"]

_RAW_PUBLIC = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required JWK members, sorted, no spaces."""
    x = b64url(public_key.public_bytes(*_RAW_PUBLIC))
    members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return b64url(hashlib.sha256(members.encode("ascii")).digest())


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_from_pem(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError("an agent public key must be Ed25519")
    return key


@dataclass(frozen=True, slots=True)
class AgentKey:
    """An agent's identity and its private key (which signs tokens and request proofs)."""

    identity: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, identity: str) -> AgentKey:
        if not identity.strip():
            raise ConfigurationError("an agent key needs an identity")
        return cls(identity, Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    @property
    def public_pem(self) -> str:
        return public_pem(self.public_key)

    def save(self, directory: Path | str) -> Path:
        """Write ``<key_id>.key`` (private, 0600, created so: never readable by others
        even for a moment) and ``<key_id>.pub``; returns the private key's path."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        private = folder / f"{self.key_id}.key"
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        header = f"# gatekit agent key; identity: {self.identity}\n".encode()
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(header + pem)
        (folder / f"{self.key_id}.pub").write_text(self.public_pem)
        return private

    @classmethod
    def load(cls, path: Path | str) -> AgentKey:
        """Read a key written by ``save``; refuses a private key others may read."""
        file = Path(path)
        if file.stat().st_mode & 0o077:
            raise ConfigurationError(f"{file} is readable by others; chmod 600 it")
        header, _, pem = file.read_bytes().partition(b"\n")
        prefix = b"# gatekit agent key; identity: "
        if not header.startswith(prefix):
            raise ConfigurationError(f"{file} is not a gatekit agent key")
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"{file} does not hold an Ed25519 key")
        return cls(header[len(prefix) :].decode().strip(), key)
