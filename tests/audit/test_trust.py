"""Verification trusts the keys gatekit made (its trust file) or keys named with
--key, never a public key someone dropped into the key directory."""

from __future__ import annotations

import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatekit import ConfigurationError
from gatekit.audit import KeyRing, Signer
from gatekit.audit._keys import TRUST_FILE, load_public_keys
from gatekit.audit.witness import WITNESS_FILE
from tests.audit.tampering import audit_cli, closed_log, rewrite_and_resign, verify_cli


def _plant_rogue_key(keys_dir):
    """A key pair of the attacker's; its public half is dropped beside gatekit's keys."""
    private = Ed25519PrivateKey.generate()
    signer = Signer(private)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (keys_dir / f"{signer.key_id}.pub").write_bytes(public_pem)
    return signer


def test_the_trust_file_lists_every_key_gatekit_makes(tmp_path):
    ring = KeyRing(tmp_path / "keys")
    first = ring.signer()
    second = ring.rotate()
    trust = tmp_path / "keys" / TRUST_FILE
    assert stat.S_IMODE(trust.stat().st_mode) == 0o600
    listed = json.loads(trust.read_text())["keys"]
    assert set(listed) == {first.key_id, second.key_id}
    assert set(ring.public_keys()) == {first.key_id, second.key_id}


def test_a_rogue_public_key_in_the_key_directory_is_not_trusted(db):
    closed_log(db)
    keys_dir = db.data_dir / "keys"
    rogue = _plant_rogue_key(keys_dir)
    rewrite_and_resign(db, 3, rogue)
    code, output = verify_cli(db, "--witness", str(db.data_dir / WITNESS_FILE))
    assert code == 1
    assert f"checkpoint is signed by unknown key {rogue.key_id!r}, which is not trusted" in output
    assert rogue.key_id not in KeyRing(keys_dir).public_keys()
    # Named explicitly, the key is trusted; the witness still holds the real checkpoint.
    code, output = verify_cli(
        db, "-k", str(keys_dir / f"{rogue.key_id}.pub"), "-k", str(keys_dir / TRUST_FILE)
    )
    assert code == 1
    assert "differs from the signed checkpoint in the audit witness" in output


def test_a_key_directory_from_before_the_trust_file_trusts_only_its_own_keys(tmp_path):
    keys_dir = tmp_path / "keys"
    ring = KeyRing(keys_dir)
    own = ring.signer()
    (keys_dir / TRUST_FILE).unlink()  # as written by an older gatekit
    rogue = _plant_rogue_key(keys_dir)
    assert set(ring.public_keys()) == {own.key_id}
    KeyRing(keys_dir).signer()  # the next start writes the trust file
    listed = json.loads((keys_dir / TRUST_FILE).read_text())["keys"]
    assert set(listed) == {own.key_id}
    assert rogue.key_id not in load_public_keys([keys_dir])


def test_a_trust_file_others_can_write_is_refused(tmp_path):
    ring = KeyRing(tmp_path)
    ring.signer()
    os.chmod(tmp_path / TRUST_FILE, 0o666)
    with pytest.raises(ConfigurationError, match="writable by other users"):
        ring.public_keys()


def test_a_trust_file_listing_a_key_under_another_id_is_refused(tmp_path):
    ring = KeyRing(tmp_path)
    signer = ring.signer()
    trust = tmp_path / TRUST_FILE
    document = json.loads(trust.read_text())
    document["keys"]["0" * 16] = document["keys"].pop(signer.key_id)
    trust.write_text(json.dumps(document))
    os.chmod(trust, 0o600)
    with pytest.raises(ConfigurationError, match="listed with another key's data"):
        ring.public_keys()


def test_an_export_verifies_elsewhere_with_the_trust_file_and_a_witness_copy(db, tmp_path):
    closed_log(db)
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    code, output = audit_cli("export", *db.cli_options, "-o", str(offsite / "audit.jsonl"))
    assert code == 0, output
    for name in (f"keys/{TRUST_FILE}", WITNESS_FILE):
        (offsite / os.path.basename(name)).write_bytes((db.data_dir / name).read_bytes())
    os.chmod(offsite / TRUST_FILE, 0o600)
    code, output = audit_cli(
        "verify",
        "--data-dir",
        str(tmp_path / "not-here"),
        "--input",
        str(offsite / "audit.jsonl"),
        "--key",
        str(offsite / TRUST_FILE),
        "--witness",
        str(offsite / WITNESS_FILE),
        "--strict",
    )
    assert code == 0, output
    assert "OK 24 records in 1 chain(s), 5 signed checkpoint(s), 1 witness(es)" in output


def test_verify_without_any_trusted_key_says_how_to_name_one(tmp_path):
    (tmp_path / "gatekit.db").touch()
    code, output = audit_cli("verify", "--data-dir", str(tmp_path))
    assert code == 2
    assert "no trusted public keys" in output
    assert "--key" in output
