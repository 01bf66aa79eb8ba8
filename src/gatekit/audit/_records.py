"""Audit records and checkpoints: what is chained, hashed and signed.

A record's ``body`` is the canonical JSON of everything it says, including its
writer, position (``seq``) and the previous record's hash; its ``hash`` is the
SHA-256 of that body (``gatekit._models.canonical_digest`` of the same dict).
Verification hashes the stored bytes, so it never re-serialises.

Sealing runs inside the store's write transaction, so it does as little as it
can there: an event's data is serialised when the event is made, and the seal
only writes the envelope around those bytes (a test pins the result to the
canonical JSON of the whole record).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gatekit._canonical import canonical_json, json_string

GENESIS = "0" * 64
RECORD_VERSION = 1
_RECORD_VERSION = str(RECORD_VERSION).encode()


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something to record, before it has a place in a chain. ``data`` is what it
    says: a dict, or that dict's canonical JSON when it was made already."""

    writer_id: str
    record_id: str
    kind: str  # decision | review | consume | consume_refused | expire | outcome
    at: str  # ISO 8601, UTC
    decision_id: str | None
    data: dict[str, Any] | bytes
    # The record's canonical JSON around its place in the chain, made with the
    # event (outside any store transaction): sealing only fills in prev and seq.
    _head: bytes = field(init=False, repr=False, compare=False)
    _tail: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        data = self.data if isinstance(self.data, bytes) else canonical_json(self.data)
        decision_id = b"null" if self.decision_id is None else json_string(self.decision_id)
        # {"v", "writer", "seq", "prev", "id", "at", "kind", "decision_id", "data"}
        # with its keys in sorted order; every value but the data is the engine's
        # own string, integer or null.
        head = b"".join(
            (
                b'{"at":',
                json_string(self.at),
                b',"data":',
                data,
                b',"decision_id":',
                decision_id,
                b',"id":',
                json_string(self.record_id),
                b',"kind":',
                json_string(self.kind),
                b',"prev":',
            )
        )
        tail = b',"v":' + _RECORD_VERSION + b',"writer":' + json_string(self.writer_id) + b"}"
        object.__setattr__(self, "_head", head)
        object.__setattr__(self, "_tail", tail)

    def sealed(self, seq: int, prev: str) -> tuple[str, str]:
        """The body and hash of this event placed at ``seq`` after the record whose
        hash is ``prev``."""
        body = b"".join((self._head, json_string(prev), b',"seq":', b"%d" % seq, self._tail))
        return body.decode(), hashlib.sha256(body).hexdigest()

    def seal(self, seq: int, prev: str) -> AuditRecord:
        """Place the event at ``seq`` after the record whose hash is ``prev``."""
        body, hash_ = self.sealed(seq, prev)
        return AuditRecord(
            writer_id=self.writer_id,
            seq=seq,
            record_id=self.record_id,
            at=self.at,
            kind=self.kind,
            decision_id=self.decision_id,
            body=body,
            hash=hash_,
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
