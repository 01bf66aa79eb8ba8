"""Ed25519 signing keys for checkpoints: generated on first use, rotated on demand.

A key directory holds ``<key_id>.key`` (private, PEM, mode 0600), ``<key_id>.pub``
(public, PEM) and ``active`` (the id of the key that signs now). Rotation adds a
key and switches ``active``; old public keys stay, so old checkpoints still verify.
Verification needs only ``.pub`` files.

Whoever can write the directory can swap the signing key or plant a public key,
and a key others can read is no longer private; fixing the modes afterwards would
not undo either. So a key directory writable by group or others, or a private
key file they may access at all, is refused with a ConfigurationError saying how
to fix it, rather than repaired quietly. A directory created here is 0700.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gatekit._exceptions import ConfigurationError

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the start of its SHA-256."""
    return hashlib.sha256(public_key.public_bytes(*_RAW)).hexdigest()[:16]


class Signer:
    """Signs with one private key; ``key_id`` names it in every checkpoint."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id_of(private_key.public_key())

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


class KeyRing:
    """The signing keys kept in one directory."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def signer(self) -> Signer:
        """The active key, created (0600) on first use."""
        with self._lock:
            self._refuse_shared_directory()
            active = self.directory / "active"
            if not active.exists():
                return self._generate()
            return Signer(self._load_private(active.read_text().strip()))

    def rotate(self) -> Signer:
        """Make a new key the active one; earlier public keys remain for verification."""
        with self._lock:
            self._refuse_shared_directory()
            return self._generate()

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        self._refuse_shared_directory()
        return load_public_keys([self.directory])

    def _refuse_shared_directory(self) -> None:
        try:
            mode = stat.S_IMODE(self.directory.stat().st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return  # created 0700 on first use, or the attempt says why not
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ConfigurationError(
                f"the audit key directory {self.directory} is writable by other users "
                f"(mode {mode:04o}), so its keys cannot be trusted: "
                f"run `chmod go-w {self.directory}`"
            )

    def _load_private(self, key_id: str) -> Ed25519PrivateKey:
        path = self.directory / f"{key_id}.key"
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            pem = path.read_bytes()
        except FileNotFoundError:
            raise ConfigurationError(
                f"the active audit key {key_id} is missing from {self.directory}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"the audit signing key {path} is accessible by other users (mode {mode:04o}): "
                f"run `chmod 600 {path}`, then `gatekit audit rotate-key` if it may have leaked"
            )
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"audit key {key_id} is not an Ed25519 key")
        return key

    def _generate(self) -> Signer:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the audit key directory {self.directory}: {exc.strerror or exc}"
            ) from exc
        key = Ed25519PrivateKey.generate()
        signer = Signer(key)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.directory / f"{signer.key_id}.key", pem)
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (self.directory / f"{signer.key_id}.pub").write_bytes(public_pem)
        # Write-then-rename so a crash never leaves ``active`` naming a missing key; the
        # temporary name is this key's own, as processes starting at once race here.
        pointer = self.directory / f"active.{signer.key_id}.tmp"
        pointer.write_text(signer.key_id + "\n")
        pointer.replace(self.directory / "active")
        return signer


def _write_private(path: Path, data: bytes) -> None:
    # Created with 0600 from the start: never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_public_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id, from ``.pub`` files or directories holding them."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.pub")) if path.is_dir() else [path])
    keys: dict[str, Ed25519PublicKey] = {}
    for file in files:
        key = serialization.load_pem_public_key(file.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigurationError(f"{file} is not an Ed25519 public key")
        keys[key_id_of(key)] = key
    return keys


def signature_valid(key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
