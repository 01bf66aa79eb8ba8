"""The proxy's configuration file: how each MCP tool becomes an Action.

    default:                       # every tool not listed below
      risk_level: medium
      operation_class: execute
    tools:                         # unset fields fall back to default
      read_file: {risk_level: low, operation_class: read, data_sensitivity: internal}
      delete_file: {risk_level: high, operation_class: delete, systems_touched: [fs]}
    on_review: wait                # wait | refuse
    review_timeout: 30             # seconds a tools/call waits for a reviewer
    review_progress_interval: 2    # seconds between progress notifications meanwhile
    hide_blocked_tools: true       # tools/list hides what policy always blocks
    pins: {block_changed: true}    # a changed tool definition blocks the tool
    shields: {secrets: redact, pii: "off", injection: block}
    allow_unlisted_tools: false    # refuse calls to tools the upstream does not list
    upstream_requests: relay       # relay | gate: the upstream's sampling and elicitation
    upstream: "python my_server.py"   # the upstream command, when none is given on the CLI
    upstream_timeout: 300          # seconds the upstream may take to answer a request
    initialize_timeout: 30         # seconds to start the upstream and initialize it
    max_list_pages: 100            # pages of tools/list read before the list is cut

``default``, ``tools``, ``on_review`` and ``review_timeout`` mean what they mean
in every gatekit adapter (``gatekit.adapters``). With ``upstream_requests: gate``
each ``sampling/createMessage`` and ``elicitation/create`` the upstream sends the
client is an action of its own, whose tool is the method name (fields from
``tools:`` under that name, else ``default:``). This maps tools to action
fields and sets how the proxy reacts to findings; whether an action runs is
always the decision engine's call.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from gatekit import Action, ConfigurationError
from gatekit.adapters import ReviewMode

__all__ = [
    "GATED_UPSTREAM_REQUESTS",
    "PinsConfig",
    "ProxyConfig",
    "ShieldMode",
    "ShieldsConfig",
    "ToolFields",
    "UpstreamRequests",
]

GATED_UPSTREAM_REQUESTS = frozenset({"sampling/createMessage", "elicitation/create"})
"""The upstream's requests to the client that ``upstream_requests: gate`` decides on:
they put a question to the client's model or to its user."""

UpstreamRequests = Literal["relay", "gate"]

# Keys of earlier versions of this file, and what replaced them: named in the
# error, so an old file fails with the fix rather than a bare "extra input".
_RENAMED = {
    "defaults": "default",
    "review": "on_review, review_timeout and review_progress_interval",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolFields(_Strict):
    """The governance fields of one tool's actions; unset fields fall back to ``default``."""

    risk_level: str | None = None
    operation_class: str | None = None
    data_sensitivity: str | None = None
    systems_touched: list[str] | None = None
    intent_id: str | None = None

    def over(self, base: ToolFields) -> ToolFields:
        """These fields, with the unset ones taken from ``base``."""
        return base.model_copy(update=self.model_dump(exclude_none=True))

    def action_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ShieldMode(StrEnum):
    OFF = "off"
    WARN = "warn"  # record the finding, pass the result unchanged
    REDACT = "redact"  # record, and replace the finding in the result
    BLOCK = "block"  # record, and withhold the whole result (an isError result instead)


class ShieldsConfig(_Strict):
    """What to do with findings in tool *results*, per kind of finding."""

    secrets: ShieldMode = ShieldMode.REDACT
    pii: ShieldMode = ShieldMode.OFF
    injection: ShieldMode = ShieldMode.BLOCK


class PinsConfig(_Strict):
    enabled: bool = True
    block_changed: bool = Field(
        default=True, description="A tool whose definition changed is blocked until re-approved."
    )


class ProxyConfig(_Strict):
    server_name: str | None = Field(
        default=None, description="Name recorded on actions; defaults to the upstream's name."
    )
    toolset: str | None = None
    default: ToolFields = ToolFields()
    tools: dict[str, ToolFields] = Field(default_factory=dict)
    on_review: ReviewMode = Field(
        default="wait",
        description="wait: hold the tools/call up to review_timeout for a reviewer; "
        "refuse: answer at once that the call waits for review (the model may retry it).",
    )
    # MCP clients give up on a request after a while; 30 s stays under common limits.
    review_timeout: float = Field(default=30.0, gt=0)
    review_progress_interval: float = Field(default=2.0, gt=0)
    hide_blocked_tools: bool = True
    pins: PinsConfig = PinsConfig()
    shields: ShieldsConfig = ShieldsConfig()
    allow_unlisted_tools: bool = Field(
        default=False,
        description="Let calls through (to be decided on) for tools the upstream's "
        "tools/list does not show; by default they are refused.",
    )
    upstream_requests: UpstreamRequests = Field(
        default="relay",
        description="What to do with the upstream's sampling/createMessage and "
        "elicitation/create requests to the client. relay: pass them on (each is logged); "
        "gate: each is an action the policy decides (tool: the method name) and is "
        "recorded like a tool call; a refused one never reaches the client, and the "
        "upstream gets a JSON-RPC error.",
    )
    upstream: str | list[str] | None = Field(
        default=None,
        description="The upstream server's command line (a string, split like a shell "
        "would, or a list); used when the command line gives no upstream.",
    )
    # No request to the upstream waits forever; progress for it restarts the clock.
    upstream_timeout: float | None = Field(default=300.0, gt=0)
    initialize_timeout: float = Field(default=30.0, gt=0)
    # An upstream that keeps handing out cursors must not hold the proxy in a loop.
    max_list_pages: int = Field(default=100, gt=0)

    def model_post_init(self, _context: Any) -> None:
        # Validate every tool's fields now, not at its first call.
        for name in ["(default)", *self.tools]:
            fields = self.fields_for(name)
            try:
                Action(tool="probe", **fields.action_fields())
            except Exception as exc:
                raise ConfigurationError(f"tool {name!r}: {exc}") from None

    def upstream_command(self) -> list[str]:
        """``upstream`` as an argument list (empty when unset)."""
        if self.upstream is None:
            return []
        if isinstance(self.upstream, list):
            return list(self.upstream)
        try:
            return shlex.split(self.upstream)
        except ValueError as exc:
            raise ConfigurationError(f"upstream: {exc}: {self.upstream!r}") from None

    def fields_for(self, tool: str) -> ToolFields:
        own = self.tools.get(tool)
        return own.over(self.default) if own is not None else self.default

    @classmethod
    def load(cls, path: Path | str | None) -> ProxyConfig:
        """The configuration in ``path`` (YAML), or the defaults when ``path`` is None."""
        if path is None:
            return cls()
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read tool config {path}: {exc}") from None
        _refuse_renamed_keys(path, data)
        try:
            return cls.model_validate(data)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(f"invalid tool config {path}: {problems}") from None


def _refuse_renamed_keys(path: Path | str, data: Any) -> None:
    old = sorted(_RENAMED.keys() & data.keys()) if isinstance(data, dict) else []
    if old:
        fixes = "; ".join(f"{key!r} is now {_RENAMED[key]}" for key in old)
        raise ConfigurationError(f"invalid tool config {path}: {fixes}")
