"""Verifying a delegated request before policy, in a fixed order.

Each step raises ``DelegationRefused`` with its own code; the first failure wins.
Order: size and strict parsing → header allow-list → the proof's key and its
status → the proof's signature (algorithm from the key record) → its time window
→ audience → body hash → issuer = the key's identity → leaf-token hash → replay
→ the chain from a trusted root to the leaf → the proof's key is the leaf's
delegatee (and the action's agent_id, if set, is its identity) → the action
inside every hop's scope → the nonce recorded (only now, after every signature
checked) → call budgets.

Verified chains are cached by their tokens' hashes (``ChainCache``); a hit skips
parsing and every signature of the chain, never the checks that time or the store
can change (see ``_still_trusted``). A proof for the run-level decision
(``RUN_TARGET``) is held to ``max_risk`` only: see ``_check_scopes``.

``verify_issuance`` checks a request for a child token (the server's
``POST /v1/delegations``) with the same steps up to the delegatee, then the child
asked for (depth, narrowing, expiry) instead of an action; such a child is signed
by a root key and names the caller in ``for`` (see ``_check_issued_for``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
from gatekit.delegation.cache import ChainCache, ChainKey, VerifiedChain, chain_key
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
    ALGORITHM,
    DEFAULT_TARGET,
    DELEGATE_TARGET,
    DELEGATION_TYP,
    PROOF_TYP,
    RUN_TARGET,
    RUN_TOOL,
    action_body,
    child_expiry,
    token_hash,
)
from gatekit.policy.state import Charge, PolicyState

if TYPE_CHECKING:
    from gatekit._settings import Settings

__all__ = ["ChildGrant", "DelegationConfig", "DelegationVerifier", "VerifiedDelegation"]

_BUDGET_WINDOW = 10 * 365 * 86400.0  # longer than any token lives
_JWS = jwt.PyJWS(algorithms=[ALGORITHM])  # its registry knows EdDSA and nothing else


@functools.lru_cache(maxsize=1024)
def _public_key(pem: str) -> Ed25519PublicKey:
    """A key record's PEM, loaded once: the same text is the same key."""
    return public_key_from_pem(pem)


@dataclass(frozen=True, slots=True)
class DelegationConfig:
    audience: str = "gatekit"
    max_depth: int = 5
    proof_max_age: float = 60.0  # seconds a proof stays acceptable after its iat
    clock_skew: float = 5.0  # how far ahead of our clock an iat/nbf may be
    required: bool = False  # refuse requests that carry no delegation
    chain_cache_size: int = 1024  # verified chains remembered (0: verify every time)

    @classmethod
    def from_settings(cls, settings: Settings) -> DelegationConfig:
        """The ``delegation_*`` settings (``GATEKIT_DELEGATION_*``)."""
        return cls(
            audience=settings.delegation_audience,
            max_depth=settings.delegation_max_depth,
            proof_max_age=settings.delegation_proof_max_age,
            clock_skew=settings.delegation_clock_skew,
            required=settings.delegation_required,
        )


@dataclass(frozen=True, slots=True)
class VerifiedDelegation:
    """What policy may know of a verified chain."""

    root: str  # the root issuer's identity
    delegatee: str  # who sent this request
    depth: int  # tokens in the chain
    token_id: str  # the leaf's jti

    def as_context(self) -> dict[str, Any]:
        return {"root": self.root, "delegatee": self.delegatee, "depth": self.depth}


@dataclass(frozen=True, slots=True)
class ChildGrant:
    """A verified request for a child token: what the issuer may sign."""

    chain: tuple[str, ...]  # the caller's chain, root first; the child's parent is its leaf
    caller: str  # the leaf's delegatee, who proved it holds the leaf: the child's ``for``
    caller_key_id: str
    issued: int
    expires: int  # within the parent's lifetime (``child_expiry``)


@dataclass(frozen=True, slots=True)
class _CheckedRequest:
    """A request whose proof, replay status, chain and delegatee have been checked."""

    proof: Jws
    key: KeyRecord  # the proof's key: the leaf's delegatee
    chain: VerifiedChain
    nonce: str


class DelegationVerifier:
    def __init__(self, store: DelegationStore, config: DelegationConfig | None = None) -> None:
        self.store = store
        self.config = config or DelegationConfig()
        self.chains = ChainCache(self.config.chain_cache_size)

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
        checked = self._checked_request(
            envelope.chain, envelope.proof, envelope.body, actions[0], now
        )
        _check_agent(checked.key, actions)
        chain = checked.chain
        run = checked.proof.claims["op"] == RUN_TARGET
        _check_scopes(chain.scopes, actions, run=run)
        leaf_id = chain.leaf.claims["jti"]
        verified = VerifiedDelegation(chain.root, checked.key.identity, len(chain.tokens), leaf_id)
        if dry_run:
            return verified
        self._record_nonce(checked, now)
        if not run:  # a budget counts tool calls; starting a run is not one
            self._spend_budgets(chain, now)
        return verified

    def verify_issuance(
        self,
        chain: list[str],
        proof: str | None,
        body: bytes,
        *,
        scope: DelegationScope,
        ttl: float | None,
        now: float,
    ) -> ChildGrant:
        """A request to issue a child of the caller's leaf, holding ``scope`` for
        ``ttl`` seconds (default: ``child_expiry``'s). Checked as a delegated request
        is, up to the caller being the leaf's delegatee — its proof is for
        ``DELEGATE_TARGET`` and signs the raw ``body`` as received — then the child:
        the chain it makes within ``max_depth``, ``scope`` inside every hop's, its
        expiry within the parent's. The nonce is recorded only when all of that holds."""
        checked = self._checked_request(chain, proof or "", body, None, now)
        hops = checked.chain
        if len(hops.tokens) + 1 > self.config.max_depth:
            raise DelegationRefused("chain_too_deep")
        for hop in hops.scopes:
            widened = widened_fields(scope, hop)
            if widened:
                raise DelegationRefused(f"scope_widened.{widened[0]}")
        issued = int(now)
        expires = child_expiry(int(hops.leaf.claims["exp"]), issued, ttl)
        self._record_nonce(checked, now)
        return ChildGrant(
            chain=tuple(token.raw for token in hops.tokens),
            caller=checked.key.identity,
            caller_key_id=checked.key.key_id,
            issued=issued,
            expires=expires,
        )

    def verify_chain(self, tokens: list[str], now: float) -> VerifiedDelegation:
        """Only the chain (parsing, headers, every hop from a trusted root), with no
        request: what ``gatekit delegation verify`` checks before handing a chain on."""
        if not tokens:
            raise DelegationRefused("missing_chain")
        if len(tokens) > MAX_TOKENS:
            raise DelegationRefused("too_large")
        parsed = _parsed_tokens(tokens)
        for token in parsed:
            check_header(token, DELEGATION_TYP)
        chain = self._check_chain(parsed, now)
        leaf = chain.leaf.claims
        return VerifiedDelegation(chain.root, leaf["sub"], len(parsed), leaf["jti"])

    # -- the request: proof, replay, chain, delegatee ---------------------------------

    def _checked_request(
        self, raw_chain: list[str], raw_proof: str, body: bytes, action: Action | None, now: float
    ) -> _CheckedRequest:
        """The steps every request takes, in order, up to the proof's key being the
        leaf's delegatee. ``action`` is what ``body`` must be (None: a request to
        issue a child, whose body the route received as bytes)."""
        proof = _parsed_proof(raw_proof, raw_chain, body)
        cache_key = chain_key(raw_chain)
        cached = self.chains.get(cache_key, now)
        # A cached chain is these exact bytes, already parsed and past the headers.
        tokens = cached.tokens if cached else _parsed_tokens(raw_chain)
        check_header(proof, PROOF_TYP)
        if cached is None:
            for token in tokens:
                check_header(token, DELEGATION_TYP)
        key = self._check_proof(proof, body, action, tokens[-1], now)
        nonce = f"{proof.key_id}:{proof.claims['nonce']}"
        if self.store.nonce_seen(nonce):
            raise DelegationRefused("replay")
        chain = self._trusted_chain(tokens, cached, cache_key, now)
        _check_delegatee(chain.leaf, proof, key)
        return _CheckedRequest(proof, key, chain, nonce)

    def _record_nonce(self, checked: _CheckedRequest, now: float) -> None:
        config = self.config
        expires = checked.proof.claims["iat"] + config.proof_max_age + config.clock_skew + 1
        if not self.store.use_nonce(checked.nonce, expires, now):
            raise DelegationRefused("replay")  # a concurrent twin got there first

    # -- the proof -------------------------------------------------------------------

    def _check_proof(
        self, proof: Jws, body: bytes, action: Action | None, leaf: Jws, now: float
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
    def _check_body(proof: Jws, body: bytes, action: Action | None) -> None:
        signed = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(signed, proof.claims["bh"]):
            raise DelegationRefused("body_mismatch")
        if action is not None and not hmac.compare_digest(body, action_body(action)):
            raise DelegationRefused("body_mismatch")  # signed one action, sent another

    @staticmethod
    def _check_signature(jws: Jws, record: KeyRecord, code: str = "bad_signature") -> None:
        """PyJWT's algorithm for the key record's ``alg`` (only EdDSA is registered)
        checks the signature over the signing input the strict parser split out.
        ``PyJWS.decode_complete`` would parse the same bytes a second time (with a
        per-character alphabet check in Python: some 25 µs a signature here, next
        to ~60 µs for the Ed25519 verification; see bench/bench_delegation.py)."""
        if record.algorithm != jws.header["alg"]:
            raise DelegationRefused("alg_mismatch")
        try:
            algorithm = _JWS.get_algorithm_by_name(record.algorithm)
            valid = algorithm.verify(
                jws.signing_input, _public_key(record.public_key), jws.signature
            )
        except Exception:  # any failure to verify is a bad signature, never a pass
            valid = False
        if not valid:
            raise DelegationRefused(code)

    # -- the chain -------------------------------------------------------------------

    def _trusted_chain(
        self,
        tokens: tuple[Jws, ...] | list[Jws],
        cached: VerifiedChain | None,
        cache_key: ChainKey | None,
        now: float,
    ) -> VerifiedChain:
        """The chain verified in full, or the cached one still trusted now."""
        if cached is not None:
            try:
                self._still_trusted(cached, now)
            except DelegationRefused:
                self.chains.drop(cache_key)  # it would fail the same way cold
                raise
            return cached
        chain = self._check_chain(list(tokens), now)
        self.chains.put(cache_key, chain)
        return chain

    def _still_trusted(self, chain: VerifiedChain, now: float) -> None:
        """For a cached chain, what may have changed since it verified, in the order
        a cold verification meets it: each signer's key (revoked, past its validity
        window, its identity), the root's trust, then each token's time window.

        Keys are read from the store on every request, not remembered: a revocation
        is written to the shared store by the CLI, another process or another
        server replica, none of which could reach this process's cache to
        invalidate it. The read is a primary-key look-up per hop; the bench prints
        what it costs next to the signatures it saves."""
        for index, token in enumerate(chain.tokens):
            record = self._signer_record(token, now)
            if token.claims["iss"] != record.identity:
                raise DelegationRefused("issuer_mismatch")
            if index == 0 and not record.root:
                raise DelegationRefused("untrusted_root")
            if index > 0 and "for" in token.claims:
                self._check_issued_for(chain.tokens[index - 1], token, record, now)
        for token in chain.tokens:
            self._check_token_window(token, now)

    def _check_chain(self, chain: list[Jws], now: float) -> VerifiedChain:
        """Every hop from a trusted root to the leaf."""
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
            # Its signature first: then its claims mean something.
            signer = self._signer_key(child, now)
            self._check_link(parent, child, parent_hash, signer, now)
        for token in chain:
            self._check_token_window(token, now)
        scopes = tuple(DelegationScope.from_claims(token.claims["scope"]) for token in chain)
        return VerifiedChain(tuple(chain), scopes, str(root.claims["iss"]))

    def _signer_record(self, token: Jws, now: float) -> KeyRecord:
        """The key that signed ``token``, as the store has it now: known, active, valid."""
        return self._ancestor_record(token.key_id, now)

    def _ancestor_record(self, key_id: str, now: float) -> KeyRecord:
        """A key the chain rests on, as the store has it now: known, active, valid."""
        record = self.store.agent_key(key_id)
        if record is None:
            raise DelegationRefused("unknown_issuer_key")
        if record.status != KeyStatus.ACTIVE:
            raise DelegationRefused("ancestor_revoked")
        if not record.usable_at(now):
            raise DelegationRefused("key_inactive")
        return record

    def _signer_key(self, token: Jws, now: float) -> KeyRecord:
        record = self._signer_record(token, now)
        self._check_signature(token, record, "bad_token_signature")
        if token.claims["iss"] != record.identity:
            raise DelegationRefused("issuer_mismatch")  # a key speaks for its own identity only
        if token.claims["aud"] != self.config.audience:
            raise DelegationRefused("wrong_audience")
        return record

    def _check_link(
        self, parent: Jws, child: Jws, parent_hash: str, signer: KeyRecord, now: float
    ) -> None:
        if child.claims.get("parent") != parent_hash:
            raise DelegationRefused("chain_broken")
        if "for" in child.claims:
            self._check_issued_for(parent, child, signer, now)
        elif (
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

    def _check_issued_for(self, parent: Jws, child: Jws, signer: KeyRecord, now: float) -> None:
        """A hop with ``for`` was not signed by the key its parent delegated to but by
        a root key, on behalf of that delegatee (the server issues such a child only
        to a caller that proved it holds the parent). Valid only when the signer is a
        registered root, ``for`` names the parent's delegatee, and the key the parent
        delegated to is still one the chain could rest on — as it would have to be to
        sign the hop itself: revoking it kills what was issued on its behalf."""
        if not signer.root:
            raise DelegationRefused("wrong_signer")
        if child.claims["for"] != parent.claims["sub"]:
            raise DelegationRefused("issued_for_mismatch")
        delegatee = self._ancestor_record(parent.claims["cnf"]["jkt"], now)
        if delegatee.identity != parent.claims["sub"]:
            raise DelegationRefused("issuer_mismatch")

    def _check_token_window(self, token: Jws, now: float) -> None:
        skew = self.config.clock_skew
        claims = token.claims
        if claims["nbf"] > now + skew or claims["iat"] > now + skew:
            raise DelegationRefused("token_not_yet_valid")
        if now >= claims["exp"]:
            raise DelegationRefused("token_expired")

    # -- budgets ---------------------------------------------------------------------

    def _spend_budgets(self, chain: VerifiedChain, now: float) -> None:
        charges = [
            Charge(
                f"delegation.budget:{token.claims['jti']}", 1.0, float(scope.budget), _BUDGET_WINDOW
            )
            for token, scope in zip(chain.tokens, chain.scopes, strict=True)
            if scope.budget is not None
        ]
        if not charges:
            return
        if not isinstance(self.store, PolicyState):
            raise DelegationRefused("budget_unsupported")  # cannot count: do not pretend to
        if self.store.spend(charges, now):
            raise DelegationRefused("budget_exhausted")


def _parsed_proof(raw_proof: str, raw_chain: list[str], body: bytes) -> Jws:
    if not raw_proof:
        raise DelegationRefused("missing_proof")
    if not raw_chain:
        raise DelegationRefused("missing_chain")
    if len(raw_chain) > MAX_TOKENS or len(body) > MAX_BODY_BYTES:
        raise DelegationRefused("too_large")
    return parse(raw_proof, PROOF_TYP, PROOF_CLAIMS)


def _parsed_tokens(raw_tokens: list[str]) -> list[Jws]:
    return [parse(raw, DELEGATION_TYP, TOKEN_CLAIMS, OPTIONAL_TOKEN_CLAIMS) for raw in raw_tokens]


def _check_target(proof: Jws, action: Action | None) -> None:
    """A proof says what it is for; a run-level proof only ever covers the run action,
    and a proof asking for a child token (no action) covers nothing else."""
    target = proof.claims["op"]
    if action is None:
        if target != DELEGATE_TARGET:
            raise DelegationRefused("wrong_target")
        return
    if target == DEFAULT_TARGET:
        return
    if target == RUN_TARGET and action.tool == RUN_TOOL:
        return
    raise DelegationRefused("wrong_target")


def _check_delegatee(leaf: Jws, proof: Jws, key: KeyRecord) -> None:
    if leaf.claims["cnf"]["jkt"] != proof.key_id or leaf.claims["sub"] != key.identity:
        raise DelegationRefused("wrong_delegatee")


def _check_agent(key: KeyRecord, actions: tuple[Action, ...]) -> None:
    if any(a.agent_id is not None and a.agent_id != key.identity for a in actions):
        # Rules, limits and trust are per agent: nobody acts under another's name.
        raise DelegationRefused("agent_mismatch")


def _check_scopes(
    scopes: tuple[DelegationScope, ...], actions: tuple[Action, ...], *, run: bool
) -> None:
    """Every action inside every hop's scope. The run-level decision is not a tool
    call: the tools, operations, resources and sensitivities it might touch are
    checked call by call inside the run, so only its risk is held to ``max_risk``
    here (a token that lets a worker call ``fs.read`` need not name ``agent.run``)."""
    check = risk_violation if run else scope_violation
    distinct = {id(action): action for action in actions}.values()  # often one object twice
    for scope in scopes:
        for action in distinct:
            violation = check(scope, action)
            if violation is not None:
                raise DelegationRefused(f"out_of_scope.{violation}")
