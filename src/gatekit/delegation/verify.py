"""Verifying a delegated request before policy, in a fixed order.

Each step raises ``DelegationRefused`` with its own code; the first failure wins.
Order: size and strict parsing → header allow-list → the proof's key and its
status → the proof's signature (algorithm from the key record) → its time window
→ audience → body hash → issuer = the key's identity → leaf-token hash → replay
→ the chain from a trusted root to the leaf → the proof's key is the leaf's
delegatee (and the action's agent_id, if set, is its identity) → the action
inside every hop's scope → the nonce recorded (only now, after every signature
checked) → call budgets.

A proof for the run-level decision (``RUN_TARGET``) is held to ``max_risk`` only:
see ``_check_scopes``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gatekit._models import Action, DelegationEnvelope
from gatekit.delegation._parsing import (
    MAX_BODY_BYTES,
    MAX_TOKENS,
    OPTIONAL_TOKEN_CLAIMS,
    PROOF_CLAIMS,
    TOKEN_CLAIMS,
    Jws,
    check_header,
    parse,
)
from gatekit.delegation.errors import DelegationRefused
from gatekit.delegation.keys import public_key_from_pem
from gatekit.delegation.records import DelegationStore, KeyRecord, KeyStatus
from gatekit.delegation.scope import (
    DelegationScope,
    risk_violation,
    scope_violation,
    widened_fields,
)
from gatekit.delegation.tokens import (
    DEFAULT_TARGET,
    DELEGATION_TYP,
    PROOF_TYP,
    RUN_TARGET,
    RUN_TOOL,
    action_body,
    token_hash,
)
from gatekit.policy.state import Charge, PolicyState

__all__ = ["DelegationConfig", "DelegationVerifier", "VerifiedDelegation"]

_BUDGET_WINDOW = 10 * 365 * 86400.0  # longer than any token lives


@dataclass(frozen=True, slots=True)
class DelegationConfig:
    audience: str = "gatekit"
    max_depth: int = 5
    proof_max_age: float = 60.0  # seconds a proof stays acceptable after its iat
    clock_skew: float = 5.0  # how far ahead of our clock an iat/nbf may be
    required: bool = False  # refuse requests that carry no delegation


@dataclass(frozen=True, slots=True)
class VerifiedDelegation:
    """What policy may know of a verified chain."""

    root: str  # the root issuer's identity
    delegatee: str  # who sent this request
    depth: int  # tokens in the chain
    token_id: str  # the leaf's jti

    def as_context(self) -> dict[str, Any]:
        return {"root": self.root, "delegatee": self.delegatee, "depth": self.depth}


class DelegationVerifier:
    def __init__(self, store: DelegationStore, config: DelegationConfig | None = None) -> None:
        self.store = store
        self.config = config or DelegationConfig()

    def verify(
        self,
        envelope: DelegationEnvelope,
        actions: tuple[Action, ...],
        now: float,
        *,
        dry_run: bool = False,
    ) -> VerifiedDelegation:
        """Raises DelegationRefused unless every step passes. ``actions`` are the
        action as sent (its canonical JSON must be the signed body) and, in process,
        its unmasked twin: both must lie inside every scope. A ``dry_run`` (preview)
        records no nonce and spends no budget."""
        proof, chain = self._parsed(envelope)
        check_header(proof, PROOF_TYP)
        for token in chain:
            check_header(token, DELEGATION_TYP)
        key = self._check_proof(proof, envelope.body, actions[0], chain[-1], now)
        nonce = f"{proof.key_id}:{proof.claims['nonce']}"
        if self.store.nonce_seen(nonce):
            raise DelegationRefused("replay")
        root = self._check_chain(chain, now)
        _check_delegatee(chain[-1], proof, key, actions)
        scopes = [DelegationScope.from_claims(token.claims["scope"]) for token in chain]
        run = proof.claims["op"] == RUN_TARGET
        _check_scopes(scopes, actions, run=run)
        verified = VerifiedDelegation(root, key.identity, len(chain), chain[-1].claims["jti"])
        if dry_run:
            return verified
        expires = proof.claims["iat"] + self.config.proof_max_age + self.config.clock_skew + 1
        if not self.store.use_nonce(nonce, expires, now):
            raise DelegationRefused("replay")  # a concurrent twin got there first
        if not run:  # a budget counts tool calls; starting a run is not one
            self._spend_budgets(chain, scopes, now)
        return verified

    def verify_chain(self, tokens: list[str], now: float) -> VerifiedDelegation:
        """Only the chain (parsing, headers, every hop from a trusted root), with no
        request: what ``gatekit delegation verify`` checks before handing a chain on."""
        if not tokens:
            raise DelegationRefused("missing_chain")
        if len(tokens) > MAX_TOKENS:
            raise DelegationRefused("too_large")
        chain = [parse(raw, DELEGATION_TYP, TOKEN_CLAIMS, OPTIONAL_TOKEN_CLAIMS) for raw in tokens]
        for token in chain:
            check_header(token, DELEGATION_TYP)
        root = self._check_chain(chain, now)
        leaf = chain[-1].claims
        return VerifiedDelegation(root, leaf["sub"], len(chain), leaf["jti"])

    # -- the proof -------------------------------------------------------------------

    @staticmethod
    def _parsed(envelope: DelegationEnvelope) -> tuple[Jws, list[Jws]]:
        if not envelope.proof:
            raise DelegationRefused("missing_proof")
        if not envelope.chain:
            raise DelegationRefused("missing_chain")
        if len(envelope.chain) > MAX_TOKENS or len(envelope.body) > MAX_BODY_BYTES:
            raise DelegationRefused("too_large")
        proof = parse(envelope.proof, PROOF_TYP, PROOF_CLAIMS)
        chain = [
            parse(raw, DELEGATION_TYP, TOKEN_CLAIMS, OPTIONAL_TOKEN_CLAIMS)
            for raw in envelope.chain
        ]
        return proof, chain

    def _check_proof(
        self, proof: Jws, body: bytes, action: Action, leaf: Jws, now: float
    ) -> KeyRecord:
        """Key, signature, time, audience, target, body, issuer, leaf token: the
        proof's key record when all hold."""
        key = self._proof_key(proof, now)
        self._check_signature(proof, key)
        self._check_proof_time(proof, now)
        if proof.claims["aud"] != self.config.audience:
            raise DelegationRefused("wrong_audience")
        _check_target(proof, action)
        self._check_body(proof, body, action)
        if proof.claims["iss"] != key.identity:
            raise DelegationRefused("issuer_mismatch")
        if not hmac.compare_digest(proof.claims["th"], token_hash(leaf.raw)):
            raise DelegationRefused("token_mismatch")
        return key

    def _proof_key(self, proof: Jws, now: float) -> KeyRecord:
        record = self.store.agent_key(proof.key_id)
        if record is None:
            raise DelegationRefused("unknown_key")
        if record.status != KeyStatus.ACTIVE:
            raise DelegationRefused("key_revoked")
        if not record.usable_at(now):
            raise DelegationRefused("key_inactive")
        return record

    def _check_proof_time(self, proof: Jws, now: float) -> None:
        issued = proof.claims["iat"]
        if issued > now + self.config.clock_skew:
            raise DelegationRefused("future_proof")
        if now - issued > self.config.proof_max_age:
            raise DelegationRefused("stale_proof")

    @staticmethod
    def _check_body(proof: Jws, body: bytes, action: Action) -> None:
        signed = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(signed, proof.claims["bh"]):
            raise DelegationRefused("body_mismatch")
        if not hmac.compare_digest(body, action_body(action)):
            raise DelegationRefused("body_mismatch")  # signed one action, sent another

    @staticmethod
    def _check_signature(jws: Jws, record: KeyRecord, code: str = "bad_signature") -> None:
        if record.algorithm != jws.header["alg"]:
            raise DelegationRefused("alg_mismatch")
        try:
            public_key: Ed25519PublicKey = public_key_from_pem(record.public_key)
            jwt.PyJWS().decode_complete(jws.raw, key=public_key, algorithms=[record.algorithm])
        except Exception:  # any failure to verify is a bad signature, never a pass
            raise DelegationRefused(code) from None

    # -- the chain -------------------------------------------------------------------

    def _check_chain(self, chain: list[Jws], now: float) -> str:
        """Every hop from a trusted root to the leaf; returns the root's identity."""
        if len(chain) > self.config.max_depth:
            raise DelegationRefused("chain_too_deep")
        hashes = [token_hash(token.raw) for token in chain]
        if len(set(hashes)) != len(hashes) or len({t.claims["jti"] for t in chain}) != len(chain):
            raise DelegationRefused("chain_cycle")
        root = chain[0]
        if "parent" in root.claims:
            raise DelegationRefused("chain_broken")  # the chain does not start at a root
        root_key = self._signer_key(root, now)
        if not root_key.root or root_key.identity != root.claims["iss"]:
            raise DelegationRefused("untrusted_root")
        for parent, child, parent_hash in zip(chain, chain[1:], hashes, strict=False):
            self._signer_key(child, now)  # its signature first: then its claims mean something
            self._check_link(parent, child, parent_hash)
        for token in chain:
            self._check_token_window(token, now)
        return str(root.claims["iss"])

    def _signer_key(self, token: Jws, now: float) -> KeyRecord:
        record = self.store.agent_key(token.key_id)
        if record is None:
            raise DelegationRefused("unknown_issuer_key")
        if record.status != KeyStatus.ACTIVE:
            raise DelegationRefused("ancestor_revoked")
        if not record.usable_at(now):
            raise DelegationRefused("key_inactive")
        self._check_signature(token, record, "bad_token_signature")
        if token.claims["iss"] != record.identity:
            raise DelegationRefused("issuer_mismatch")  # a key speaks for its own identity only
        if token.claims["aud"] != self.config.audience:
            raise DelegationRefused("wrong_audience")
        return record

    @staticmethod
    def _check_link(parent: Jws, child: Jws, parent_hash: str) -> None:
        if child.claims.get("parent") != parent_hash:
            raise DelegationRefused("chain_broken")
        if (
            child.key_id != parent.claims["cnf"]["jkt"]
            or child.claims["iss"] != parent.claims["sub"]
        ):
            raise DelegationRefused("wrong_signer")
        if child.claims["exp"] > parent.claims["exp"]:
            raise DelegationRefused("expiry_outlives_parent")
        parent_scope = DelegationScope.from_claims(parent.claims["scope"])
        widened = widened_fields(DelegationScope.from_claims(child.claims["scope"]), parent_scope)
        if widened:
            raise DelegationRefused(f"scope_widened.{widened[0]}")

    def _check_token_window(self, token: Jws, now: float) -> None:
        skew = self.config.clock_skew
        claims = token.claims
        if claims["nbf"] > now + skew or claims["iat"] > now + skew:
            raise DelegationRefused("token_not_yet_valid")
        if now >= claims["exp"]:
            raise DelegationRefused("token_expired")

    # -- budgets ---------------------------------------------------------------------

    def _spend_budgets(self, chain: list[Jws], scopes: list[DelegationScope], now: float) -> None:
        charges = [
            Charge(
                f"delegation.budget:{token.claims['jti']}", 1.0, float(scope.budget), _BUDGET_WINDOW
            )
            for token, scope in zip(chain, scopes, strict=True)
            if scope.budget is not None
        ]
        if not charges:
            return
        if not isinstance(self.store, PolicyState):
            raise DelegationRefused("budget_unsupported")  # cannot count: do not pretend to
        if self.store.spend(charges, now):
            raise DelegationRefused("budget_exhausted")


def _check_target(proof: Jws, action: Action) -> None:
    """A proof says what it is for; a run-level proof only ever covers the run action."""
    target = proof.claims["op"]
    if target == DEFAULT_TARGET:
        return
    if target == RUN_TARGET and action.tool == RUN_TOOL:
        return
    raise DelegationRefused("wrong_target")


def _check_delegatee(leaf: Jws, proof: Jws, key: KeyRecord, actions: tuple[Action, ...]) -> None:
    if leaf.claims["cnf"]["jkt"] != proof.key_id or leaf.claims["sub"] != key.identity:
        raise DelegationRefused("wrong_delegatee")
    if any(a.agent_id is not None and a.agent_id != key.identity for a in actions):
        # Rules, limits and trust are per agent: nobody acts under another's name.
        raise DelegationRefused("agent_mismatch")


def _check_scopes(
    scopes: list[DelegationScope], actions: tuple[Action, ...], *, run: bool
) -> None:
    """Every action inside every hop's scope. The run-level decision is not a tool
    call: the tools, operations, resources and sensitivities it might touch are
    checked call by call inside the run, so only its risk is held to ``max_risk``
    here (a token that lets a worker call ``fs.read`` need not name ``agent.run``)."""
    check = risk_violation if run else scope_violation
    for scope in scopes:
        for action in actions:
            violation = check(scope, action)
            if violation is not None:
                raise DelegationRefused(f"out_of_scope.{violation}")
