"""JSONL export of the audit log, and reading it back for offline verification.

One JSON object per line, ``type`` first: heads, checkpoints, then records in
chain order. Records keep their exact stored body, so hashes verify unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from gatekit.audit._records import AuditRecord, ChainHead, Checkpoint
from gatekit.audit.verify import AuditSource


def export_jsonl(source: AuditSource, out: TextIO) -> int:
    """Write everything in ``source``; returns the number of records written."""
    for head in source.audit_heads():
        out.write(json.dumps(head.to_json()) + "\n")
    for checkpoint in source.audit_checkpoints():
        out.write(json.dumps(checkpoint.to_json()) + "\n")
    count = 0
    for record in source.audit_records():
        out.write(json.dumps(record.to_json()) + "\n")
        count += 1
    return count


class JsonlSource:
    """An exported file, read as an ``AuditSource``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._heads: list[ChainHead] = []
        self._checkpoints: list[Checkpoint] = []
        for item in self._items(("head", "checkpoint")):
            kind = item.pop("type")
            if kind == "head":
                self._heads.append(ChainHead(**item))
            else:
                self._checkpoints.append(Checkpoint(**item))

    def _items(self, types: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{self.path}:{number}: not JSON ({exc.msg})") from None
                if item.get("type") in types:
                    yield item

    def audit_heads(self) -> list[ChainHead]:
        return list(self._heads)

    def audit_checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]:
        return [c for c in self._checkpoints if writer_id is None or c.writer_id == writer_id]

    def audit_records(
        self, writer_id: str | None = None, after_seq: int = 0
    ) -> Iterator[AuditRecord]:
        for item in self._items(("record",)):
            item.pop("type")
            record = AuditRecord(**item)
            if (writer_id is None or record.writer_id == writer_id) and record.seq > after_seq:
                yield record
