"""Offline verification of every audit chain, with only the trusted public keys.

Per writer: each record's stored body must hash to its stored hash, carry the
expected writer, position and previous hash, and match its query columns.
Every checkpoint must be signed by a trusted key and match the record at its
position. A chain must start at seq 1 or right after a signed checkpoint (the
anchor left by retention), and may not end before its last checkpoint or its
recorded head. The first problem found is reported with the record it names.

That proves the records are intact, not that they are all there: a log cut back
to an earlier checkpoint, or without one writer, is consistent in itself. The
audit witnesses (``gatekit.audit.witness``) say what must be there: a writer a
witness knows must still exist, reach the witness's checkpoint and agree with it.

What nothing outside the database vouches for is reported as a warning (a
failure with ``strict``): records after a writer's last checkpoint, a writer
that ended without a final checkpoint (crash?), a writer no witness knows, and
verifying without any witness at all.

Trust comes from the keys passed in, never from the data: whoever holds a
trusted signing key can sign a checkpoint over any log, which is why a copy of
the witness kept on another system is the anchor that counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gatekit.audit._keys import signature_valid
from gatekit.audit._records import GENESIS, RECORD_VERSION, AuditRecord, ChainHead, Checkpoint
from gatekit.audit.witness import WitnessState, WriterWitness


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
    writer_id: str | None  # None: about the log as a whole
    seq: int | None
    record_id: str | None
    message: str

    def __str__(self) -> str:
        if self.writer_id is None:
            return self.message
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
    warnings: list[Problem] = field(default_factory=list)  # failures under ``strict``
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(slots=True)
class _Chain:
    """One writer's chain as verified: where it ends, and the hashes witnesses ask about."""

    writer_id: str
    end: int = 0  # seq of the last record (or of the head, when retention left none)
    start: int = 1  # seq of the first record still stored
    signed_up_to: int = 0  # seq of the last checkpoint
    hashes: dict[int, str] = field(default_factory=dict)


class _Broken(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def verify(
    source: AuditSource,
    public_keys: dict[str, Ed25519PublicKey],
    *,
    witnesses: Sequence[WitnessState] = (),
    strict: bool = False,
) -> Report:
    """Check every chain in ``source`` against ``witnesses``; stops at the first problem.

    With ``strict``, the first warning (whatever keeps the log from being proven
    complete) is the problem.
    """
    report = Report()
    try:
        chains = _verify_chains(source, public_keys, witnesses, report)
        for witness in witnesses:
            _compare_with_witness(witness, chains, public_keys)
    except _Broken as broken:
        report.problem = broken.problem
        return report
    report.warnings = _unproven(chains, report.unsigned, witnesses)
    if strict and report.warnings:
        report.problem = report.warnings[0]
    return report


def _verify_chains(
    source: AuditSource,
    keys: dict[str, Ed25519PublicKey],
    witnesses: Sequence[WitnessState],
    report: Report,
) -> dict[str, _Chain]:
    heads = {head.writer_id: head for head in source.audit_heads()}
    checkpoints: dict[str, list[Checkpoint]] = {}
    for cp in source.audit_checkpoints():
        checkpoints.setdefault(cp.writer_id, []).append(cp)
    for cps in checkpoints.values():
        for cp in cps:
            _check_signature(cp, keys, "checkpoint")
    chains: dict[str, _Chain] = {}
    for writer_id, records in groupby(source.audit_records(), key=lambda r: r.writer_id):
        cps = sorted(checkpoints.get(writer_id, []), key=lambda c: c.seq)
        chain = _Chain(writer_id, signed_up_to=cps[-1].seq if cps else 0)
        wanted = _positions_witnessed(writer_id, witnesses)
        last = _verify_chain(chain, records, cps, report, wanted)
        _check_end(writer_id, last, cps, heads.get(writer_id))
        chains[writer_id] = chain
        report.chains += 1
        report.checkpoints += len(cps)
    for writer_id in (heads.keys() | checkpoints.keys()) - chains.keys():
        head = heads.get(writer_id)
        _check_empty_chain(writer_id, head, checkpoints.get(writer_id, []))
        if head is not None:  # every record pruned: the head is the anchor checkpoint
            chains[writer_id] = _Chain(
                writer_id, head.seq, head.seq + 1, head.seq, {head.seq: head.hash}
            )
    return chains


def _positions_witnessed(writer_id: str, witnesses: Sequence[WitnessState]) -> set[int]:
    entries = (w.writers.get(writer_id) for w in witnesses)
    return {e.checkpoint.seq for e in entries if e is not None and e.checkpoint is not None}


def _check_signature(cp: Checkpoint, keys: dict[str, Ed25519PublicKey], what: str) -> None:
    def fail(message: str) -> _Broken:
        return _Broken(Problem(cp.writer_id, cp.seq, None, f"{what} {message}"))

    key = keys.get(cp.key_id)
    if key is None:
        raise fail(
            f"is signed by unknown key {cp.key_id!r}, which is not trusted "
            "(not in the trust file, nor given with --key)"
        )
    if not signature_valid(key, cp.signature, cp.body.encode()):
        raise fail("signature does not verify")
    content = json.loads(cp.body)
    stated = (content.get("writer"), content.get("seq"), content.get("hash"), content.get("key_id"))
    if stated != (cp.writer_id, cp.seq, cp.hash, cp.key_id):
        raise fail("fields differ from what was signed")


def _verify_chain(
    chain: _Chain,
    records: Iterable[AuditRecord],
    cps: list[Checkpoint],
    report: Report,
    wanted: set[int],
) -> AuditRecord | None:
    """Walk one chain in order, noting in ``chain`` where it starts and ends and the
    hashes at ``wanted`` positions; returns its last record."""
    pending = iter(cps)
    next_cp = next(pending, None)
    expected_seq, prev, last = 1, GENESIS, None
    for record in records:
        if last is None:
            expected_seq, prev, next_cp = _start(chain.writer_id, record, cps, next_cp, pending)
            chain.start = expected_seq
        if hashlib.sha256(record.body.encode()).hexdigest() != record.hash:
            raise _bad(record, "content does not match its hash (edited)")
        if not _links_fast(record, expected_seq, prev):
            _check_links(record, expected_seq, prev)
        while next_cp is not None and next_cp.seq == record.seq:
            if next_cp.hash != record.hash:
                raise _bad(record, "does not match the signed checkpoint at this position")
            next_cp = next(pending, None)
        if record.seq in wanted:
            chain.hashes[record.seq] = record.hash
        prev, expected_seq, last = record.hash, expected_seq + 1, record
        report.records += 1
    chain.end = last.seq if last is not None else 0
    if last is not None and last.seq > chain.signed_up_to:
        report.unsigned[chain.writer_id] = last.seq - chain.signed_up_to
    for anchor in cps:  # a witnessed position retention pruned: its checkpoint stayed
        if anchor.seq in wanted:
            chain.hashes.setdefault(anchor.seq, anchor.hash)
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


# -- what the witnesses say must be there --------------------------------------------


def _compare_with_witness(
    witness: WitnessState, chains: dict[str, _Chain], keys: dict[str, Ed25519PublicKey]
) -> None:
    for writer_id, entry in sorted(witness.writers.items()):
        cp = entry.checkpoint
        if cp is None:
            continue
        _check_signature(cp, keys, f"the checkpoint in the audit witness {witness.path}")
        chain = chains.get(writer_id)
        if chain is None:
            raise _Broken(
                Problem(
                    writer_id,
                    None,
                    None,
                    f"the whole chain is missing (writer deleted): the audit witness "
                    f"{witness.path} holds its signed checkpoint at seq {cp.seq}",
                )
            )
        if chain.end < cp.seq:
            raise _Broken(
                Problem(
                    writer_id,
                    chain.end + 1,
                    None,
                    f"records missing after seq {chain.end}: the chain ends there, but the "
                    f"audit witness {witness.path} holds its signed checkpoint at seq {cp.seq} "
                    "(truncated back to an earlier checkpoint, or an older database restored)",
                )
            )
        stored = chain.hashes.get(cp.seq)
        if stored is not None and stored != cp.hash:
            raise _Broken(
                Problem(
                    writer_id,
                    cp.seq,
                    None,
                    f"differs from the signed checkpoint in the audit witness {witness.path} "
                    "(the chain was rewritten)",
                )
            )


def _unproven(
    chains: dict[str, _Chain], unsigned: dict[str, int], witnesses: Sequence[WitnessState]
) -> list[Problem]:
    """What keeps each chain from being proven complete and genuine."""
    warnings: list[Problem] = []
    if not witnesses:
        warnings.append(
            Problem(
                None,
                None,
                None,
                "no audit witness to compare with: a log truncated back to an earlier "
                "checkpoint, or a deleted writer, cannot be detected",
            )
        )
    for writer_id, chain in sorted(chains.items()):
        entries = [w.writers[writer_id] for w in witnesses if writer_id in w.writers]
        warning = _unproven_chain(chain, unsigned.get(writer_id, 0), entries, bool(witnesses))
        if warning is not None:
            warnings.append(Problem(writer_id, None, None, warning))
    return warnings


def _unproven_chain(
    chain: _Chain, unsigned: int, entries: list[WriterWitness], witnessed: bool
) -> str | None:
    signed = chain.signed_up_to
    tail = f"{unsigned} record(s) after the last checkpoint (seq {signed}) are not signed"
    if any(entry.still_open for entry in entries):
        if unsigned:
            return f"{tail}: still running, or ended without a final checkpoint (crash?)"
        return (
            "ended without a final checkpoint (crash?), or is still running: nothing "
            f"vouches for records after seq {signed}"
        )
    closed = [e.checkpoint for e in entries if e.closed_cleanly and e.checkpoint is not None]
    if unsigned and closed:
        final = max(cp.seq for cp in closed)
        return (
            f"{tail}, yet the writer closed cleanly at seq {final}: they were added "
            "afterwards by something other than gatekit (forged?)"
        )
    if unsigned:
        return f"{tail}: nothing vouches for them"
    if witnessed and not entries:
        return (
            "no audit witness knows this writer: a truncation back to an earlier "
            "checkpoint would go unnoticed"
        )
    return None


def _bad(record: AuditRecord, message: str) -> _Broken:
    return _Broken(Problem(record.writer_id, record.seq, record.record_id, message))
