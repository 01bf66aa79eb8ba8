"""Configuration: constructor arguments override ``GATEKIT_*`` environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gatekit._exceptions import ConfigurationError
from gatekit.dlp import DlpMode


class FailMode(StrEnum):
    CLOSED = "closed"  # no valid decision → the tool does not run (default)
    OPEN = "open"  # no valid decision → the tool runs, and the decision says so


class Settings(BaseSettings):
    """Every knob, with its ``GATEKIT_<NAME>`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="GATEKIT_", extra="forbid", frozen=True)

    fail_mode: FailMode = FailMode.CLOSED
    dlp_mode: DlpMode = DlpMode.MASK
    agent_id: str | None = Field(default=None, min_length=1)
    data_dir: Path = Path(".gatekit")
    approval_timeout: float = Field(
        default=300.0, gt=0, description="How long guard() waits for a reviewer, s."
    )
    approval_ttl: float = Field(
        default=3600.0, gt=0, description="How long an approval stays usable, s."
    )
    decision_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Bound on one backend call, s (async; sync backends bound their own I/O).",
    )
    policy: Path | None = Field(
        default=None, description="Policy file for the embedded engine (reloaded when edited)."
    )
    # -- durable state and audit (the embedded engine) --
    database_url: str | None = Field(
        default=None, description="postgresql://… to share state; unset = SQLite in data_dir."
    )
    sqlite_synchronous: Literal["normal", "full"] = Field(
        default="normal", description="normal survives a crash; full also a power loss."
    )
    writer_id: str | None = Field(
        default=None, min_length=1, description="This process's audit chain; default: hostname."
    )
    audit_checkpoint_records: int = Field(
        default=1000, gt=0, description="Sign a checkpoint after this many audit records."
    )
    audit_checkpoint_seconds: float = Field(
        default=60.0, gt=0, description="…or when this many seconds passed since the last one."
    )
    audit_witness: Path | None = Field(
        default=None,
        description="Also keep the audit witness here, ideally on another system.",
    )
    audit_retention_days: float | None = Field(
        default=None, gt=0, description="`gatekit audit prune` drops records older than this."
    )
    separation_of_duties: bool = Field(
        default=True, description="A reviewer may not approve an action of their own agent id."
    )
    # -- the server's review page --
    session_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Signs review-page sessions; give every replica the same one"
        " (unset: a random key kept in data_dir).",
    )
    # -- delegation --
    delegation_audience: str = Field(
        default="gatekit", min_length=1, description="The aud delegation tokens must name."
    )
    delegation_max_depth: int = Field(
        default=5, ge=1, le=16, description="Most tokens in one delegation chain."
    )
    delegation_proof_max_age: float = Field(
        default=60.0, gt=0, description="How long a request proof stays acceptable, s."
    )
    delegation_clock_skew: float = Field(
        default=5.0, ge=0, description="How far ahead of the engine's clock an iat may be, s."
    )
    delegation_required: bool = Field(
        default=False, description="Refuse every request that carries no delegation."
    )
    delegation_issuer_key: Path | None = Field(
        default=None,
        description="The server's agent key file (registered as a root) that signs child "
        "tokens at POST /v1/delegations; unset: that route answers 503.",
    )
    # -- a shared decision server (HttpBackend) --
    server_url: str | None = Field(
        default=None,
        description="http(s)://… of a `gatekit serve`; set, Client() asks it instead of "
        "an embedded engine.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="The server's API key (gk_…); never logged or shown."
    )

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, _, rest = value.partition("://")
        if scheme.lower() not in ("http", "https") or not rest.split("/", 1)[0]:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with non-None ``overrides`` taking precedence."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except pydantic.ValidationError as exc:
        problems = "; ".join(_describe(err["loc"], err["msg"]) for err in exc.errors())
        raise ConfigurationError(f"invalid gatekit configuration: {problems}") from None


def _describe(location: tuple[int | str, ...], message: str) -> str:
    field = ".".join(str(part) for part in location)
    return f"{field} (GATEKIT_{str(location[0]).upper()}): {message}"
