"""Issuing delegation tokens and request proofs (EdDSA JWS, signed by PyJWT).

A delegation token says: ``iss`` lets ``sub`` (holding the key ``cnf.jkt``) act
within ``scope`` until ``exp``; ``parent`` is the SHA-256 of the token ``iss``
itself was given (absent at a root). A token a root key issued on behalf of the
parent's delegatee (the server's ``POST /v1/delegations``) names that delegatee in
``for`` instead of being signed by it. A request proof says: the holder of key
``kid`` sends exactly the body hashed in ``bh``, under the token hashed in ``th``,
now (``iat``), once (``nonce``). Distinct ``typ`` values keep one from being
accepted as the other.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import jwt

from gatekit._canonical import canonical_json
from gatekit._exceptions import ValidationError
from gatekit._models import Action, DelegationEnvelope
from gatekit.delegation.errors import DelegationRefused
from gatekit.delegation.keys import AgentKey
from gatekit.delegation.scope import DelegationScope

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ALGORITHM",
    "DEFAULT_TTL",
    "DELEGATE_TARGET",
    "DELEGATION_TYP",
    "PROOF_TYP",
    "RUN_TARGET",
    "RUN_TOOL",
    "DelegationChain",
    "action_body",
    "child_expiry",
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
# A proof asking the server to issue a child token (``POST /v1/delegations``).
DELEGATE_TARGET = "delegate"
DEFAULT_TTL = 3600.0  # seconds a token lives unless told otherwise (a child: at most its parent)


def token_hash(token: str) -> str:
    """SHA-256 of a token's compact form, as hex: how a child names its parent."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def action_body(action: Action) -> bytes:
    """The exact bytes a proof signs for an action: its RFC 8785 canonical JSON."""
    return canonical_json(action.model_dump(mode="json"))


def child_expiry(parent_expires: int, issued: int, ttl: float | None) -> int:
    """When a child issued at ``issued`` under a parent expiring at ``parent_expires``
    expires: after ``ttl`` seconds, or by default ``DEFAULT_TTL`` cut to what the
    parent has left. Raises ``DelegationRefused``: ``token_expired`` when the parent
    has nothing left, ``expiry_outlives_parent`` when an explicit ``ttl`` reaches past
    the parent (the verifier would refuse that child on every request)."""
    if parent_expires <= issued:
        raise DelegationRefused("token_expired")
    if ttl is None:
        return min(issued + int(DEFAULT_TTL), parent_expires)
    expires = issued + math.ceil(ttl)  # whole seconds, and never 0 for a ttl under one
    if expires > parent_expires:
        raise DelegationRefused("expiry_outlives_parent")
    return expires


def _unverified_claims(token: str) -> dict[str, Any]:
    """A token's claims, read without checking anything: only for the holder's own
    chain, to learn when its leaf expires (the verifier checks it on every use)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


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
    ttl: float = DEFAULT_TTL,
    parent: str | None = None,
    now: float | None = None,
    issued_for: str | None = None,
) -> str:
    """A token letting ``delegatee`` act within ``scope``; ``parent`` is the token
    ``issuer`` acts under (None when ``issuer`` is a root). ``issued_for`` is set only
    by a root key issuing a child of ``parent`` on behalf of the parent's delegatee,
    after checking that it holds the parent (the ``for`` claim)."""
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
    if issued_for is not None:
        claims["for"] = issued_for
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
        ttl: float = DEFAULT_TTL,
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
        ttl: float | None = None,
        now: float | None = None,
    ) -> DelegationChain:
        """A longer chain: the holder hands ``delegatee`` a narrower ``scope``, for
        ``ttl`` seconds or by default ``DEFAULT_TTL`` cut to what the leaf has left.
        A ``ttl`` that outlives the leaf raises ``ValidationError`` here rather than
        making a token every verification would refuse."""
        holder = self._holder()
        if ttl is not None and ttl <= 0:
            raise ValidationError("a delegation's ttl must be positive", field="ttl")
        issued = int(time.time() if now is None else now)
        parent_expires = int(_unverified_claims(self.leaf)["exp"])
        try:
            expires = child_expiry(parent_expires, issued, ttl)
        except DelegationRefused as refused:
            if refused.code == "token_expired":
                message = "cannot delegate: the parent token has expired"
            else:
                message = (
                    f"cannot delegate for {ttl:g} s: the parent token has only "
                    f"{parent_expires - issued} s left (leave ttl out to use what is left)"
                )
            raise ValidationError(message, field="ttl") from None
        token = issue_delegation(
            holder,
            delegatee=delegatee,
            delegatee_key_id=delegatee_key_id,
            scope=scope,
            audience=self.audience,
            ttl=expires - issued,
            parent=self.leaf,
            now=issued,
        )
        return DelegationChain((*self.tokens, token), None, self.audience)

    def request_child(
        self,
        server_url: str,
        *,
        api_key: str,
        delegatee: str,
        delegatee_key_id: str,
        scope: DelegationScope,
        ttl: float | None = None,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> DelegationChain:
        """A longer chain whose new token the gatekit server at ``server_url`` issued
        (``POST /v1/delegations``, audited there) after this chain's holder proved it
        holds the leaf. See ``gatekit.delegation.remote.request_child``."""
        from gatekit.delegation.remote import request_child  # it imports this module

        return request_child(
            self,
            server_url,
            api_key=api_key,
            delegatee=delegatee,
            delegatee_key_id=delegatee_key_id,
            scope=scope,
            ttl=ttl,
            http=http,
            timeout=timeout,
        )

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
