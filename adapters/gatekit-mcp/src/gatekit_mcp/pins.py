"""Tool pinning: a tool's definition is trusted as first seen, and a change is flagged.

An MCP server can change a tool's definition after a human reviewed it ("rug
pull"), and the model reads it. The first definition seen of each tool is
hashed and stored in a JSON file; a later, different definition is recorded next
to the pin as ``observed`` and reported as changed until someone approves it
(``gatekit-mcp pins approve TOOL``) or deletes the pin.

The digest covers what the model and the host act on: description, title,
input and output schemas, and annotations (``readOnlyHint``, ``destructiveHint``…).
Pins written before title, annotations and the output schema were covered
(entries without ``"scheme": 2``) are upgraded when the parts they covered
(description and input schema) still match.

File layout::

    {"version": 1,
     "servers": {"<server>": {"<tool>": {
         "digest": "<sha256>", "scheme": 2, "description": "...", "pinned_at": "...",
         "observed": {"digest": "...", "description": "...", "seen_at": "..."}}}}}
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from gatekit import ConfigurationError
from gatekit.adapters import digest, settings

__all__ = [
    "PINS_FILE_NAME",
    "SCHEME",
    "PinState",
    "PinStatus",
    "PinStore",
    "default_pins_path",
    "tool_digest",
]

PINS_FILE_NAME = "mcp-pins.json"


def default_pins_path() -> Path:
    """``mcp-pins.json`` in the data directory (``GATEKIT_DATA_DIR``, else ``.gatekit``)."""
    return settings().data_dir / PINS_FILE_NAME


SCHEME = 2
"""What a digest covers: 1 = description and input schema; 2 = also the title, the
output schema and the annotations."""

_COVERED = ("title", "outputSchema", "annotations")


def tool_digest(tool: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a tool's definition (wire form): description,
    title, input and output schemas, annotations. The name is the pin's key."""
    covered = {key: tool[key] for key in _COVERED if tool.get(key) is not None}
    return digest({**_legacy_fields(tool), **covered})


def _legacy_fields(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": tool.get("description") or "",
        "inputSchema": tool.get("inputSchema", {}),
    }


def _legacy_digest(tool: dict[str, Any]) -> str:
    """The digest of scheme 1 (description and input schema only)."""
    return digest(_legacy_fields(tool))


class PinState(StrEnum):
    NEW = "new"  # first sight: now pinned
    MATCH = "match"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class PinStatus:
    state: PinState
    pinned: str
    current: str

    @property
    def changed(self) -> bool:
        return self.state is PinState.CHANGED

    def as_metadata(self) -> dict[str, str]:
        return {"state": self.state.value, "pinned": self.pinned, "current": self.current}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class PinStore:
    """The pins file, read into memory and re-read when it changes on disk, so an
    approval made with the CLI takes effect in a running proxy.

    A tool whose definition matches its pin in memory is checked from memory:
    the file is looked at (one ``stat``) at most every ``recheck`` seconds for it,
    as the core does with policy files. Anything else — a new tool, a changed
    definition — looks at the file first, so an approval counts at once."""

    def __init__(self, path: Path | str | None = None, *, recheck: float = 0.5) -> None:
        self.path = Path(path) if path is not None else default_pins_path()
        self._data: dict[str, Any] = {"version": 1, "servers": {}}
        self._stamp: tuple[int, int] | None = None
        self._recheck = recheck
        self._next_look = 0.0
        self._reload()

    # -- file ------------------------------------------------------------------

    def _reload(self) -> None:
        self._next_look = time.monotonic() + self._recheck
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._data, self._stamp = {"version": 1, "servers": {}}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read pins file {self.path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            raise ConfigurationError(f"pins file {self.path} is not a gatekit pins file")
        self._data, self._stamp = data, stamp

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".pins-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self._data, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.path)
        stat = self.path.stat()
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def _tools(self, server: str) -> dict[str, Any]:
        servers: dict[str, Any] = self._data["servers"]
        return servers.setdefault(server, {})  # type: ignore[no-any-return]

    # -- use -------------------------------------------------------------------

    def check(self, server: str, tool: dict[str, Any], digest: str | None = None) -> PinStatus:
        """Compare ``tool`` (wire form) with its pin; pin it on first sight."""
        name = str(tool["name"])
        current = digest or tool_digest(tool)
        if self._matches(server, name, current) and time.monotonic() < self._next_look:
            return PinStatus(PinState.MATCH, current, current)
        self._reload()
        tools = self._tools(server)
        pin = tools.get(name)
        if pin is None:
            tools[name] = self._pin(current, tool.get("description"))
            self._save()
            return PinStatus(PinState.NEW, current, current)
        if pin["digest"] == current:
            return PinStatus(PinState.MATCH, current, current)
        if pin.get("scheme", 1) < SCHEME and pin["digest"] == _legacy_digest(tool):
            # Pinned before the digest covered more: what it covered still holds.
            tools[name] = self._pin(current, tool.get("description"))
            self._save()
            return PinStatus(PinState.MATCH, current, current)
        observed = pin.get("observed") or {}
        if observed.get("digest") != current:
            pin["observed"] = {
                "digest": current,
                "description": tool.get("description") or "",
                "seen_at": _now(),
            }
            self._save()
        return PinStatus(PinState.CHANGED, str(pin["digest"]), current)

    def _matches(self, server: str, name: str, digest: str) -> bool:
        """The pin in memory is ``digest`` (read only: nothing is created)."""
        tools = self._data["servers"].get(server)
        pin = tools.get(name) if isinstance(tools, dict) else None
        return isinstance(pin, dict) and pin.get("digest") == digest

    @staticmethod
    def _pin(digest: str, description: Any) -> dict[str, Any]:
        return {
            "digest": digest,
            "scheme": SCHEME,
            "description": description or "",
            "pinned_at": _now(),
        }

    def entries(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every pin as (server, tool, entry)."""
        self._reload()
        return [
            (server, name, entry)
            for server, tools in sorted(self._data["servers"].items())
            for name, entry in sorted(tools.items())
        ]

    def _find(self, tool: str, server: str | None) -> tuple[str, dict[str, Any]]:
        matches = [(s, e) for s, name, e in self.entries() if name == tool]
        if server is not None:
            matches = [(s, e) for s, e in matches if s == server]
        if not matches:
            raise KeyError(f"no pin for tool {tool!r}" + (f" on {server!r}" if server else ""))
        if len(matches) > 1:
            servers = ", ".join(s for s, _ in matches)
            raise KeyError(f"tool {tool!r} is pinned for several servers ({servers}); name one")
        return matches[0]

    def approve(self, tool: str, server: str | None = None) -> str:
        """Trust the changed definition last observed for ``tool``; returns its digest."""
        found_server, entry = self._find(tool, server)
        observed = entry.get("observed")
        if not observed:
            raise KeyError(f"tool {tool!r} has no changed definition to approve")
        self._tools(found_server)[tool] = self._pin(
            observed["digest"], observed.get("description", "")
        )
        self._save()
        return str(observed["digest"])

    def remove(self, tool: str, server: str | None = None) -> None:
        """Forget the pin: the next definition seen is pinned afresh."""
        found_server, _entry = self._find(tool, server)
        del self._tools(found_server)[tool]
        self._save()
