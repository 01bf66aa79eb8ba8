"""Issuing a child token for a caller that holds a valid parent, with a root key
the caller never sees (the server's ``POST /v1/delegations``).

The server cannot sign as the caller, so it signs with its own issuing key, which
must be a registered root, and names the caller in the child's ``for`` claim; the
verifier accepts such a hop only from a root key, for the parent's delegatee (see
``DelegationVerifier._check_issued_for``). Before signing, ``verify_issuance``
checks the caller's request proof over the exact body bytes received, the chain
from a trusted root, that the caller is the leaf's delegatee, and the child asked
for: depth, narrowing against every hop, expiry within the parent's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from gatekit.delegation._parsing import MAX_TOKENS
from gatekit.delegation.errors import DelegationRefused
from gatekit.delegation.keys import AgentKey
from gatekit.delegation.records import KeyStatus
from gatekit.delegation.scope import DelegationScope
from gatekit.delegation.tokens import _unverified_claims, issue_delegation, token_hash
from gatekit.delegation.verify import DelegationVerifier

__all__ = ["PROOF_HEADER", "ChildRequest", "DelegationIssuer", "IssuedChild"]

# The request proof travels in this header; it signs the request body's exact bytes.
PROOF_HEADER = "Gatekit-Delegation-Proof"


class ChildRequest(BaseModel):
    """What a caller asks for: a child of its chain's leaf, for ``delegatee``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: list[str] = Field(
        min_length=1,
        max_length=MAX_TOKENS,
        description="The caller's chain, root first; the caller is its leaf's delegatee.",
    )
    delegatee: str = Field(min_length=1, max_length=512, description="Who the child is for.")
    delegatee_key_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{43}$", description="The delegatee key's RFC 7638 thumbprint."
    )
    scope: DelegationScope = Field(description="Inside every scope of the caller's chain.")
    ttl: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Seconds the child lives; default: an hour, cut to what the parent has left.",
    )

    @field_validator("scope", mode="before")
    @classmethod
    def _strict_scope(cls, value: Any) -> Any:
        # The claim shapes exactly, as a token carries them: no "5" for a budget. A
        # null field is one left out (unrestricted), as the documented schema says.
        if not isinstance(value, dict):
            return value
        return DelegationScope.from_claims({k: v for k, v in value.items() if v is not None})

    @field_serializer("scope")
    def _scope_claims(self, scope: DelegationScope) -> dict[str, Any]:
        return scope.claims()


class IssuedChild(BaseModel):
    """The child token, and the caller's chain with it at the end."""

    token: str
    chain: list[str] = Field(description="Root first; the new token last.")
    token_id: str = Field(description="The child's jti.")
    issued_for: str = Field(description="The caller, named in the child's for claim.")
    expires_at: int = Field(description="The child's exp, seconds since the epoch.")


class DelegationIssuer:
    """Signs children with ``key`` for requests ``verifier`` has checked."""

    def __init__(self, key: AgentKey, verifier: DelegationVerifier) -> None:
        self.key = key
        self.verifier = verifier

    def issue(
        self, request: ChildRequest, *, proof: str | None, body: bytes, now: float
    ) -> IssuedChild:
        """The child ``request`` asks for, if its ``proof`` (over ``body``, the bytes
        received) and chain verify; else ``DelegationRefused`` and nothing is signed."""
        self._check_trusted(now)
        grant = self.verifier.verify_issuance(
            request.chain, proof, body, scope=request.scope, ttl=request.ttl, now=now
        )
        parent = grant.chain[-1]
        token = issue_delegation(
            self.key,
            delegatee=request.delegatee,
            delegatee_key_id=request.delegatee_key_id,
            scope=request.scope,
            audience=self.verifier.config.audience,
            ttl=grant.expires - grant.issued,
            parent=parent,
            now=grant.issued,
            issued_for=grant.caller,
        )
        return IssuedChild(
            token=token,
            chain=[*grant.chain, token],
            token_id=str(_unverified_claims(token)["jti"]),
            issued_for=grant.caller,
            expires_at=grant.expires,
        )

    def audit_data(self, request: ChildRequest, issued: IssuedChild) -> dict[str, Any]:
        """What the audit keeps of an issued child: names and hashes, no token."""
        return {
            "token_id": issued.token_id,
            "issued_for": issued.issued_for,
            "delegatee": request.delegatee,
            "delegatee_key_id": request.delegatee_key_id,
            "parent": token_hash(request.chain[-1]),
            "depth": len(issued.chain),
            "scope": request.scope.claims(),
            "expires_at": issued.expires_at,
            "issuer_key_id": self.key.key_id,
        }

    def _check_trusted(self, now: float) -> None:
        """Its key must be registered as an active root under its identity, or every
        child would be refused at use: say so now (``issuer_untrusted``)."""
        record = self.verifier.store.agent_key(self.key.key_id)
        if (
            record is None
            or not record.root
            or record.status != KeyStatus.ACTIVE
            or not record.usable_at(now)
            or record.identity != self.key.identity
        ):
            raise DelegationRefused("issuer_untrusted")
