"""Ed25519 signing keys for checkpoints: generated on first use, rotated on demand.

A key directory holds ``<key_id>.key`` (private, PEM, mode 0600), ``<key_id>.pub``
(public, PEM), ``active`` (the id of the key that signs now) and ``trusted.json``,
the trust file: the id and public key of every key gatekit itself created here.
Rotation adds a key and switches ``active``; old keys stay trusted, so old
checkpoints still verify. Verification needs only public keys.

Verification trusts the keys in the trust file (or keys named explicitly), never
whatever ``.pub`` happens to lie in the directory: a planted public key must not
vouch for checkpoints its owner signed. A key directory from before the trust file
gets one listing the keys whose private half is there, i.e. the keys gatekit made.

Signatures prove who signed, not that nothing was re-signed: whoever holds the
private key can truncate the log and sign a new checkpoint over what is left. The
audit witness (``gatekit.audit.witness``) and copies of it, or of exported
checkpoints, kept on another system are what catch that.

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
from gatekit.audit._files import exclusive, read_json, write_private_json

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
_PUBLIC_PEM = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
TRUST_FILE = "trusted.json"
_TRUST_FORMAT = "gatekit-trusted-keys"


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
            signer = Signer(self._load_private(active.read_text().strip()))
            self._ensure_trust_file()
            return signer

    def rotate(self) -> Signer:
        """Make a new key the active one; earlier public keys remain for verification."""
        with self._lock:
            self._refuse_shared_directory()
            return self._generate()

    @property
    def trust_file(self) -> Path:
        return self.directory / TRUST_FILE

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """The keys to trust: those in the trust file, else those gatekit made here."""
        self._refuse_shared_directory()
        if self.trust_file.exists():
            return read_trust_file(self.trust_file)
        return self._keys_made_here()

    def _keys_made_here(self) -> dict[str, Ed25519PublicKey]:
        """Public halves of the private keys in the directory: a planted ``.pub`` has none."""
        keys: dict[str, Ed25519PublicKey] = {}
        for path in sorted(self.directory.glob("*.key")):
            public = self._load_private(path.stem).public_key()
            keys[key_id_of(public)] = public
        return keys

    def _ensure_trust_file(self) -> None:
        """Key directories made before the trust file existed get one, once."""
        if self.trust_file.exists():
            return
        with exclusive(self.trust_file):
            if not self.trust_file.exists():
                write_private_json(self.trust_file, _trust_document(self._keys_made_here()))

    def _trust(self, key_id: str, key: Ed25519PublicKey) -> None:
        with exclusive(self.trust_file):
            trusted = (
                read_trust_file(self.trust_file)
                if self.trust_file.exists()
                else self._keys_made_here()
            )
            trusted[key_id] = key
            write_private_json(self.trust_file, _trust_document(trusted))

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
        public_pem = key.public_key().public_bytes(*_PUBLIC_PEM)
        (self.directory / f"{signer.key_id}.pub").write_bytes(public_pem)
        self._trust(signer.key_id, key.public_key())  # before ``active`` names it
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
    """Public keys by key id, from what the caller names: ``.pub`` files, trust files
    (``.json``), or directories: a directory's trust file when it has one, else every
    ``.pub`` in it (the caller chose that directory)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        if path.is_dir():
            trust = path / TRUST_FILE
            if trust.exists():
                keys.update(read_trust_file(trust))
            else:
                for file in sorted(path.glob("*.pub")):
                    keys.update(_read_public_pem(file))
        elif path.suffix == ".json":
            keys.update(read_trust_file(path))
        else:
            keys.update(_read_public_pem(path))
    return keys


def _read_public_pem(file: Path) -> dict[str, Ed25519PublicKey]:
    key = _public_key(file.read_bytes(), file)
    return {key_id_of(key): key}


def _public_key(pem: bytes, origin: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise ConfigurationError(f"{origin}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{origin}: not an Ed25519 public key")
    return key


def read_trust_file(path: Path) -> dict[str, Ed25519PublicKey]:
    """The keys a trust file lists; each must hash to the id it is listed under."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigurationError(
            f"the audit trust file {path} is writable by other users (mode {mode:04o}), "
            f"so it cannot be trusted: run `chmod go-w {path}`"
        )
    try:
        document = read_json(path)
        listed = document["keys"] if document.get("format") == _TRUST_FORMAT else None
    except (ValueError, AttributeError, KeyError):
        listed = None
    if not isinstance(listed, dict):
        raise ConfigurationError(f"{path} is not a gatekit trust file")
    keys: dict[str, Ed25519PublicKey] = {}
    for key_id, entry in listed.items():
        pem = entry.get("public_key") if isinstance(entry, dict) else None
        key = _public_key(str(pem).encode(), path)
        if key_id_of(key) != key_id:
            raise ConfigurationError(f"{path}: key {key_id!r} is listed with another key's data")
        keys[key_id] = key
    return keys


def _trust_document(keys: dict[str, Ed25519PublicKey]) -> dict[str, object]:
    return {
        "format": _TRUST_FORMAT,
        "version": 1,
        "keys": {
            key_id: {"public_key": key.public_bytes(*_PUBLIC_PEM).decode()}
            for key_id, key in sorted(keys.items())
        },
    }


def signature_valid(key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
