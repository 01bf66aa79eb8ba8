"""Issuing delegation tokens and request proofs (EdDSA JWS, signed by PyJWT).

A delegation token says: ``iss`` lets ``sub`` (holding the key ``cnf.jkt``) act
within ``scope`` until ``exp``; ``parent`` is the SHA-256 of the token ``iss``
itself was given (absent at a root). A request proof says: the holder of key
``kid`` sends exactly the body hashed in ``bh``, under the token hashed in ``th``,
now (``iat``), once (``nonce``). Distinct ``typ`` values keep one from being
accepted as the other.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import jwt

from gatekit._canonical import canonical_json
from gatekit._models import Action, DelegationEnvelope
from gatekit.delegation.keys import AgentKey
from gatekit.delegation.scope import DelegationScope

__all__ = [
    "ALGORITHM",
    "DELEGATION_TYP",
    "PROOF_TYP",
    "RUN_TARGET",
    "RUN_TOOL",
    "DelegationChain",
    "action_body",
    "issue_delegation",
    "issue_proof",
    "token_hash",
]

ALGORITHM = "EdDSA"
DELEGATION_TYP = "gatekit-delegation+jwt"
PROOF_TYP = "gatekit-proof+jwt"
# What a proof is for (its ``op``): a decision on a tool call, or the run-level
# decision ``Gateway.run`` asks before an agent starts (tool ``RUN_TOOL``), which is
# not a tool call and so is held to a different part of the scope.
DEFAULT_TARGET = "decide"
RUN_TARGET = "run"
RUN_TOOL = "agent.run"


def token_hash(token: str) -> str:
    """SHA-256 of a token's compact form, as hex: how a child names its parent."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def action_body(action: Action) -> bytes:
    """The exact bytes a proof signs for an action: its RFC 8785 canonical JSON."""
    return canonical_json(action.model_dump(mode="json"))


def _sign(key: AgentKey, typ: str, claims: dict[str, Any]) -> str:
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"typ": typ, "kid": key.key_id}
    )


def issue_delegation(
    issuer: AgentKey,
    *,
    delegatee: str,
    delegatee_key_id: str,
    scope: DelegationScope,
    audience: str,
    ttl: float = 3600.0,
    parent: str | None = None,
    now: float | None = None,
) -> str:
    """A token letting ``delegatee`` act within ``scope``; ``parent`` is the token
    ``issuer`` acts under (None when ``issuer`` is a root)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": issuer.identity,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl),
        "sub": delegatee,
        "cnf": {"jkt": delegatee_key_id},
        "scope": scope.claims(),
    }
    if parent is not None:
        claims["parent"] = token_hash(parent)
    return _sign(issuer, DELEGATION_TYP, claims)


def issue_proof(
    key: AgentKey,
    *,
    leaf_token: str,
    body: bytes,
    audience: str,
    target: str = DEFAULT_TARGET,
    now: float | None = None,
    nonce: str | None = None,
) -> str:
    """The proof that ``key``'s holder sends ``body`` under ``leaf_token``, now, once."""
    claims = {
        "iss": key.identity,
        "aud": audience,
        "iat": int(time.time() if now is None else now),
        "nonce": nonce or secrets.token_urlsafe(24),
        "bh": hashlib.sha256(body).hexdigest(),
        "th": token_hash(leaf_token),
        "op": target,
    }
    return _sign(key, PROOF_TYP, claims)


@dataclass(frozen=True, slots=True)
class DelegationChain:
    """Tokens from a root to the leaf (root first), and the leaf delegatee's key,
    which signs each request made under the chain; ``target`` is what its proofs
    are for (``for_run()``: the run-level decision of ``Gateway.run``)."""

    tokens: tuple[str, ...]
    key: AgentKey | None = field(default=None, repr=False)
    audience: str = "gatekit"
    target: str = DEFAULT_TARGET

    @classmethod
    def issue_root(
        cls,
        root: AgentKey,
        *,
        delegatee: str,
        delegatee_key_id: str,
        scope: DelegationScope,
        audience: str = "gatekit",
        ttl: float = 3600.0,
        now: float | None = None,
    ) -> DelegationChain:
        token = issue_delegation(
            root,
            delegatee=delegatee,
            delegatee_key_id=delegatee_key_id,
            scope=scope,
            audience=audience,
            ttl=ttl,
            now=now,
        )
        return cls((token,), None, audience)

    @property
    def leaf(self) -> str:
        return self.tokens[-1]

    def held_by(self, key: AgentKey) -> DelegationChain:
        """This chain, with the private key of its leaf's delegatee (to sign requests)."""
        return replace(self, key=key)

    def for_run(self) -> DelegationChain:
        """This chain, signing proofs for a run-level decision instead of a tool call."""
        return replace(self, target=RUN_TARGET)

    def delegate(
        self,
        *,
        delegatee: str,
        delegatee_key_id: str,
        scope: DelegationScope,
        ttl: float = 3600.0,
        now: float | None = None,
    ) -> DelegationChain:
        """A longer chain: the holder hands ``delegatee`` a narrower ``scope``."""
        holder = self._holder()
        token = issue_delegation(
            holder,
            delegatee=delegatee,
            delegatee_key_id=delegatee_key_id,
            scope=scope,
            audience=self.audience,
            ttl=ttl,
            parent=self.leaf,
            now=now,
        )
        return DelegationChain((*self.tokens, token), None, self.audience)

    def envelope(
        self, action: Action, *, now: float | None = None, nonce: str | None = None
    ) -> DelegationEnvelope:
        """What a request for ``action`` carries: the chain, a fresh proof, the body."""
        body = action_body(action)
        proof = issue_proof(
            self._holder(),
            leaf_token=self.leaf,
            body=body,
            audience=self.audience,
            target=self.target,
            now=now,
            nonce=nonce,
        )
        return DelegationEnvelope(chain=list(self.tokens), proof=proof, body=body)

    def _holder(self) -> AgentKey:
        if self.key is None:
            raise ValueError("this chain has no key to sign with: use .held_by(key)")
        return self.key
