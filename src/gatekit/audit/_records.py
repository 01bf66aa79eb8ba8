"""Audit records and checkpoints: what is chained, hashed and signed.

A record's ``body`` is the canonical JSON of everything it says, including its
writer, position (``seq``) and the previous record's hash; its ``hash`` is the
SHA-256 of that body (``gatekit._models.canonical_digest`` of the same dict).
Verification hashes the stored bytes, so it never re-serialises.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gatekit._canonical import canonical_json

GENESIS = "0" * 64
RECORD_VERSION = 1


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something to record, before it has a place in a chain."""

    writer_id: str
    record_id: str
    kind: str  # decision | review | consume | consume_refused | expire | outcome
    at: str  # ISO 8601, UTC
    decision_id: str | None
    data: dict[str, Any]

    def seal(self, seq: int, prev: str) -> AuditRecord:
        """Place the event at ``seq`` after the record whose hash is ``prev``."""
        body = canonical_json(
            {
                "v": RECORD_VERSION,
                "writer": self.writer_id,
                "seq": seq,
                "prev": prev,
                "id": self.record_id,
                "at": self.at,
                "kind": self.kind,
                "decision_id": self.decision_id,
                "data": self.data,
            }
        )
        return AuditRecord(
            writer_id=self.writer_id,
            seq=seq,
            record_id=self.record_id,
            at=self.at,
            kind=self.kind,
            decision_id=self.decision_id,
            body=body.decode(),
            hash=hashlib.sha256(body).hexdigest(),
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A sealed record as stored. Columns besides ``body`` and ``hash`` are for queries."""

    writer_id: str
    seq: int
    record_id: str
    at: str
    kind: str
    decision_id: str | None
    body: str
    hash: str

    def content(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "record",
            "writer_id": self.writer_id,
            "seq": self.seq,
            "record_id": self.record_id,
            "at": self.at,
            "kind": self.kind,
            "decision_id": self.decision_id,
            "hash": self.hash,
            "body": self.body,
        }


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last record of one writer's chain."""

    writer_id: str
    seq: int
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "head", "writer_id": self.writer_id, "seq": self.seq, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: writer ``writer_id``'s chain reached ``seq`` with ``hash``.

    ``body`` is the canonical JSON that was signed; ``signature`` is Ed25519, hex.
    """

    writer_id: str
    seq: int
    hash: str
    at: str
    key_id: str
    body: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "checkpoint",
            "writer_id": self.writer_id,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "key_id": self.key_id,
            "body": self.body,
            "signature": self.signature,
        }


def checkpoint_body(writer_id: str, seq: int, hash_: str, at: str, key_id: str) -> bytes:
    return canonical_json(
        {
            "v": RECORD_VERSION,
            "type": "checkpoint",
            "writer": writer_id,
            "seq": seq,
            "hash": hash_,
            "at": at,
            "key_id": key_id,
        }
    )
