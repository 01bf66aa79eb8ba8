"""Offline verification of every audit chain, with only the public keys.

Per writer: each record's stored body must hash to its stored hash, carry the
expected writer, position and previous hash, and match its query columns.
Every checkpoint must be signed by a trusted key and match the record at its
position. A chain must start at seq 1 or right after a signed checkpoint (the
anchor left by retention), and may not end before its last checkpoint or its
recorded head. The first problem found is reported with the record it names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gatekit.audit._keys import signature_valid
from gatekit.audit._records import GENESIS, RECORD_VERSION, AuditRecord, ChainHead, Checkpoint


class AuditSource(Protocol):
    """Where verification reads from: a store, or an exported JSONL file."""

    def audit_heads(self) -> list[ChainHead]: ...
    def audit_checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]: ...
    def audit_records(
        self, writer_id: str | None = None, after_seq: int = 0
    ) -> Iterator[AuditRecord]:
        """Records ordered by writer, then seq."""
        ...


@dataclass(frozen=True, slots=True)
class Problem:
    writer_id: str
    seq: int | None
    record_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"writer {self.writer_id!r}"
        if self.seq is not None:
            where += f", record seq {self.seq}"
        if self.record_id:
            where += f" ({self.record_id})"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class Report:
    records: int = 0
    checkpoints: int = 0
    chains: int = 0
    unsigned: dict[str, int] = field(default_factory=dict)  # records after the last checkpoint
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Broken(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def verify(source: AuditSource, public_keys: dict[str, Ed25519PublicKey]) -> Report:
    """Check every chain in ``source``; stops at the first problem."""
    report = Report()
    heads = {head.writer_id: head for head in source.audit_heads()}
    checkpoints: dict[str, list[Checkpoint]] = {}
    for cp in source.audit_checkpoints():
        checkpoints.setdefault(cp.writer_id, []).append(cp)
    seen: set[str] = set()
    try:
        for cps in checkpoints.values():
            for cp in cps:
                _check_signature(cp, public_keys)
        for writer_id, records in groupby(source.audit_records(), key=lambda r: r.writer_id):
            seen.add(writer_id)
            cps = sorted(checkpoints.get(writer_id, []), key=lambda c: c.seq)
            last = _verify_chain(writer_id, records, cps, report)
            _check_end(writer_id, last, cps, heads.get(writer_id))
            report.chains += 1
            report.checkpoints += len(cps)
        for writer_id in (heads.keys() | checkpoints.keys()) - seen:
            _check_empty_chain(writer_id, heads.get(writer_id), checkpoints.get(writer_id, []))
    except _Broken as broken:
        report.problem = broken.problem
    return report


def _check_signature(cp: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> None:
    def fail(message: str) -> _Broken:
        return _Broken(Problem(cp.writer_id, cp.seq, None, f"checkpoint {message}"))

    key = keys.get(cp.key_id)
    if key is None:
        raise fail(f"is signed by unknown key {cp.key_id!r}")
    if not signature_valid(key, cp.signature, cp.body.encode()):
        raise fail("signature does not verify")
    content = json.loads(cp.body)
    stated = (content.get("writer"), content.get("seq"), content.get("hash"), content.get("key_id"))
    if stated != (cp.writer_id, cp.seq, cp.hash, cp.key_id):
        raise fail("fields differ from what was signed")


def _verify_chain(
    writer_id: str, records: Iterable[AuditRecord], cps: list[Checkpoint], report: Report
) -> AuditRecord | None:
    """Walk one chain in order; returns its last record."""
    pending = iter(cps)
    next_cp = next(pending, None)
    expected_seq, prev, last = 1, GENESIS, None
    for record in records:
        if last is None:
            expected_seq, prev, next_cp = _start(writer_id, record, cps, next_cp, pending)
        if hashlib.sha256(record.body.encode()).hexdigest() != record.hash:
            raise _bad(record, "content does not match its hash (edited)")
        if not _links_fast(record, expected_seq, prev):
            _check_links(record, expected_seq, prev)
        while next_cp is not None and next_cp.seq == record.seq:
            if next_cp.hash != record.hash:
                raise _bad(record, "does not match the signed checkpoint at this position")
            next_cp = next(pending, None)
        prev, expected_seq, last = record.hash, expected_seq + 1, record
        report.records += 1
    signed_up_to = cps[-1].seq if cps else 0
    if last is not None and last.seq > signed_up_to:
        report.unsigned[writer_id] = last.seq - signed_up_to
    return last


def _links_fast(record: AuditRecord, seq: int, prev: str) -> bool:
    """The common case without parsing JSON: canonical bodies sort their keys, so
    the columns and chain position must appear literally at the start and end.
    Any mismatch (or a value needing escapes) falls back to ``_check_links``."""
    decision = "null" if record.decision_id is None else f'"{record.decision_id}"'
    return (
        record.seq == seq
        and record.body.endswith(
            f',"decision_id":{decision},"id":"{record.record_id}","kind":"{record.kind}",'
            f'"prev":"{prev}","seq":{seq},"v":{RECORD_VERSION},"writer":"{record.writer_id}"}}'
        )
        and record.body.startswith(f'{{"at":"{record.at}","data":')
    )


def _check_links(record: AuditRecord, seq: int, prev: str) -> None:
    """Parse the body and say precisely what does not fit."""
    content = json.loads(record.body)
    if content.get("seq") != seq or record.seq != seq:
        raise _bad(record, f"expected seq {seq} here (records deleted or reordered)")
    if content.get("prev") != prev:
        raise _bad(record, "does not link to the previous record (deleted, inserted or moved)")
    stated = tuple(content.get(k) for k in ("writer", "id", "kind", "decision_id", "at", "v"))
    actual = (record.writer_id, record.record_id, record.kind, record.decision_id, record.at)
    if stated != (*actual, RECORD_VERSION):
        raise _bad(record, "columns differ from the hashed content (edited)")


def _start(
    writer_id: str,
    first: AuditRecord,
    cps: list[Checkpoint],
    next_cp: Checkpoint | None,
    pending: Iterator[Checkpoint],
) -> tuple[int, str, Checkpoint | None]:
    """Where a chain begins: seq 1, or right after the checkpoint retention kept."""
    if first.seq <= 1:
        return 1, GENESIS, next_cp
    anchor = next((cp for cp in cps if cp.seq == first.seq - 1), None)
    if anchor is None:
        raise _bad(first, f"records before seq {first.seq} are missing and no checkpoint anchors")
    if cps[0].seq < anchor.seq:  # retention removes older checkpoints with the records
        raise _bad(first, f"records before seq {first.seq} were deleted outside retention")
    while next_cp is not None and next_cp.seq <= anchor.seq:
        next_cp = next(pending, None)
    return first.seq, anchor.hash, next_cp


def _check_end(
    writer_id: str, last: AuditRecord | None, cps: list[Checkpoint], head: ChainHead | None
) -> None:
    end = last.seq if last else 0
    if cps and cps[-1].seq > end:
        raise _Broken(
            Problem(
                writer_id,
                end + 1,
                None,
                f"chain ends at seq {end} but a checkpoint covers seq {cps[-1].seq} (truncated)",
            )
        )
    if head is not None and (head.seq != end or (last is not None and head.hash != last.hash)):
        raise _Broken(
            Problem(
                writer_id,
                end + 1 if head.seq > end else end,
                None,
                f"chain ends at seq {end} but its head is seq {head.seq} (truncated or altered)",
            )
        )


def _check_empty_chain(writer_id: str, head: ChainHead | None, cps: list[Checkpoint]) -> None:
    """A chain without records is fine only if retention pruned it up to its signed head."""
    if head is not None and head.seq == 0:
        return
    latest = max(cps, key=lambda c: c.seq, default=None)
    if (
        head is not None
        and latest is not None
        and (latest.seq, latest.hash) == (head.seq, head.hash)
    ):
        return
    raise _Broken(Problem(writer_id, None, None, "all records of this chain are gone"))


def _bad(record: AuditRecord, message: str) -> _Broken:
    return _Broken(Problem(record.writer_id, record.seq, record.record_id, message))
