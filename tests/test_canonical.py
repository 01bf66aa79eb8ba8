"""The fast canonical-JSON path is byte-identical to RFC 8785 wherever it is used."""

from __future__ import annotations

import random

import pytest
import rfc8785

from gatekit._canonical import _plain, canonical_json
from gatekit._models import canonical_digest
from gatekit.audit._records import AuditEvent

ALPHABET = "aZ09 \"\\/\b\f\n\r\t\x00\x1f\x7féß€\u2028\U0001f600<>&'"


def _random_value(rng: random.Random, depth: int = 0):
    choice = rng.randrange(7 if depth < 3 else 4)
    if choice == 0:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(8)))
    if choice == 1:
        return rng.randrange(-(2**53) + 1, 2**53)
    if choice == 2:
        return rng.choice([True, False, None])
    if choice == 3:
        return rng.random() * 10 ** rng.randrange(-5, 25)
    if choice == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 5))) for _ in range(4)]
    return {k: _random_value(rng, depth + 1) for k in keys}


@pytest.mark.parametrize("seed", range(20))
def test_canonical_json_equals_rfc8785(seed):
    rng = random.Random(seed)
    for _ in range(200):
        value = {"v": _random_value(rng)}
        assert canonical_json(value) == rfc8785.dumps(value)


def test_floats_and_unicode_keys_take_the_exact_path():
    assert not _plain({"amount": 1.0})
    assert not _plain({"ключ": "x"})
    assert not _plain({"n": 2**60})
    assert canonical_json({"amount": 1.0, "b": [1e21]}) == b'{"amount":1,"b":[1e+21]}'


def test_a_record_hash_is_the_canonical_digest_of_its_content():
    event = AuditEvent(
        "w",
        "rec_1",
        "decision",
        "2026-01-01T00:00:00.000000+00:00",
        "dec_1",
        {"amount": 12.5, "note": "é"},
    )
    record = event.seal(3, "0" * 64)
    assert record.hash == canonical_digest(record.content())
