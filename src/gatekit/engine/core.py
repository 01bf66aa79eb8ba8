"""``Engine``: decisions, approvals and their audit records over one store and one policy."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gatekit._canonical import typed_json
from gatekit._exceptions import (
    ApprovalConsumed,
    ApprovalExpired,
    Blocked,
    ReviewConflict,
    ValidationError,
)
from gatekit._identity import canonical_identity, same_identity
from gatekit._ids import new_id
from gatekit._models import (
    Check,
    CheckOutcome,
    Decision,
    DecisionRequest,
    Outcome,
    Status,
    Verdict,
)
from gatekit._settings import Settings
from gatekit.audit import AuditLog, KeyRing, Witness
from gatekit.audit import events as audit_events
from gatekit.audit._records import AuditEvent, AuditRecord
from gatekit.delegation import (
    GENERIC_REASON,
    DelegationConfig,
    DelegationRefused,
    DelegationStore,
    DelegationVerifier,
    VerifiedDelegation,
)
from gatekit.engine.evaluation import as_policy, evaluate
from gatekit.engine.outcomes import OutcomeQueue, RecentIds
from gatekit.engine.records import decision_record_data
from gatekit.policy import (
    Evaluation,
    Policy,
    dry_run,
    observe_decision,
    observe_review,
    rechecking,
)
from gatekit.store import Store, open_store, reuse_for_same_action

__all__ = ["Engine", "recorded_state"]

logger = logging.getLogger("gatekit")

# Audit record kinds that set a decision's status, and the one that uses it up.
_STATUS_KINDS = frozenset({"decision", "review", "expire"})

Clock = Callable[[], datetime]

_STATUS_FOR_VERDICT = {
    Verdict.ALLOW: Status.ALLOWED,
    Verdict.REVIEW: Status.PENDING_REVIEW,
    Verdict.BLOCK: Status.BLOCKED,
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def recorded_state(records: list[AuditRecord]) -> tuple[Status, bool] | None:
    """A decision's status and whether it was used, as its audit records tell it."""
    status: Status | None = None
    used = False
    for record in records:
        if record.kind in _STATUS_KINDS:
            status = Status(json.loads(record.body)["data"]["status"])
        elif record.kind == "consume":
            used = True
    return None if status is None else (status, used)


def _with_delegation_check(
    evaluation: Evaluation, verified: VerifiedDelegation | None
) -> Evaluation:
    if verified is None:
        return evaluation
    passed = Check(
        name="delegation",
        outcome=CheckOutcome.PASS,
        detail=f"verified: root {verified.root}, depth {verified.depth}",
    )
    return replace(evaluation, checks=(passed, *evaluation.checks))


class Engine:
    """Decides, keeps and audits. Safe to share between threads (and, through a
    shared store, between processes and server replicas).

    ``approval_ttl`` bounds how long a review may take and an approval may wait
    to be used; past it the decision is ``expired``, which is a denial. Every
    state change is committed together with its audit record. With
    ``separation_of_duties``, a reviewer cannot approve an action requested
    under their own agent id (compared as people read names: ``same_identity``).
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str] | None,
        store: Store,
        *,
        audit: AuditLog | None = None,
        approval_ttl: float = 3600.0,
        clock: Clock = _utcnow,
        separation_of_duties: bool = True,
        delegation: DelegationConfig | None = None,
    ) -> None:
        if approval_ttl <= 0:
            raise ValidationError("approval_ttl must be positive", field="approval_ttl")
        self.store = store
        self.policy: Policy = as_policy(policy, state=store)
        self.audit = audit or AuditLog(store)
        self._approval_ttl = timedelta(seconds=approval_ttl)
        self._now = clock
        self._separation_of_duties = separation_of_duties
        self._delegation = delegation or DelegationConfig()
        self._verifier = (
            DelegationVerifier(store, self._delegation)
            if isinstance(store, DelegationStore)
            else None
        )
        self._outcomes = OutcomeQueue(self._write_outcomes)
        self._decided = RecentIds()  # reports for these need no look-up in the store
        self._closing = threading.Lock()
        self._closed = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        policy: Policy | str | os.PathLike[str] | None = None,
        store: Store | None = None,
        audit: AuditLog | None = None,
        clock: Clock = _utcnow,
    ) -> Engine:
        """The engine ``GATEKIT_*`` settings describe, with these parts given instead:
        by default durable state in SQLite under ``data_dir`` (or PostgreSQL at
        ``database_url``) with a signed, witnessed audit log (a database older than
        its witness is refused), and the settings' policy file (or the default policy)."""
        if store is None:
            store = open_store(settings)
            try:
                audit = audit or AuditLog(
                    store,
                    writer_id=settings.writer_id,
                    signer=KeyRing(settings.data_dir / "keys").signer(),
                    checkpoint_every=settings.audit_checkpoint_records,
                    checkpoint_interval=settings.audit_checkpoint_seconds,
                    witness=Witness.in_data_dir(settings.data_dir, also=settings.audit_witness),
                )
            except BaseException:  # a refused keys directory, a database behind its witness…
                store.close()
                raise
        return cls(
            policy if policy is not None else settings.policy,
            store,
            audit=audit,
            approval_ttl=settings.approval_ttl,
            clock=clock,
            separation_of_duties=settings.separation_of_duties,
            delegation=DelegationConfig(
                audience=settings.delegation_audience,
                max_depth=settings.delegation_max_depth,
                proof_max_age=settings.delegation_proof_max_age,
                clock_skew=settings.delegation_clock_skew,
                required=settings.delegation_required,
            ),
        )

    # -- deciding ----------------------------------------------------------------------

    def decide(self, request: DecisionRequest) -> Decision:
        # Before anything else, the idempotency look-up included: an unverified
        # request learns nothing and changes nothing but its own refusal record.
        verified = self._verify_delegation(request)
        if isinstance(verified, Evaluation):
            return self._refuse_delegation(request, verified)
        key = request.action.idempotency_key
        if key is not None:
            existing = self.store.find_by_idempotency_key(key)
            if existing is not None:
                return self._expire_if_due(reuse_for_same_action(existing, request.action_digest))
        if request.review_key is not None:
            reopened = self._open_review(request)
            if reopened is not None:
                return reopened
        judged = request.for_policy()
        if verified is not None:
            judged._verified_delegation = verified
        evaluation = _with_delegation_check(evaluate(self.policy, judged), verified)
        decision = self._new_decision(request, evaluation)
        stored = self._store_decision(request, decision)
        if stored.decision_id == decision.decision_id:  # not a concurrent duplicate
            observe_decision(self.policy, stored, judged.action)
        return stored

    def _verify_delegation(
        self, request: DecisionRequest, *, dry_run: bool = False
    ) -> VerifiedDelegation | Evaluation | None:
        """The verified delegation, None for a request without one, or the blocking
        evaluation that replaces policy when verification fails."""
        envelope = request.delegation
        try:
            if envelope is None:
                if self._delegation.required:
                    raise DelegationRefused("missing_delegation")
                return None
            if self._verifier is None:
                raise DelegationRefused("delegation_unsupported")
            actions = (request.action, request.for_policy().action)
            now = self._now().timestamp()
            return self._verifier.verify(envelope, actions, now, dry_run=dry_run)
        except DelegationRefused as refused:
            code = refused.code
        except Exception as exc:  # a verifier that breaks must deny, never let policy run
            logger.exception("gatekit: delegation verification failed")
            code = f"verification_error.{type(exc).__name__}"
        failure = Check(name="delegation", outcome=CheckOutcome.BLOCK, detail=code)
        return Evaluation(Verdict.BLOCK, GENERIC_REASON, (), (failure,))

    def _refuse_delegation(self, request: DecisionRequest, refusal: Evaluation) -> Decision:
        """A blocked decision, recorded, that claims no idempotency or review key:
        an unverified sender must not take a name a real request will use."""
        decision = self._new_decision(request, refusal).model_copy(
            update={"idempotency_key": None, "review_key": None}
        )
        return self._store_decision(request, decision)

    def _store_decision(self, request: DecisionRequest, decision: Decision) -> Decision:
        event = self.audit.event(
            "decision",
            decision.decision_id,
            decision_record_data(decision, request.action_json()),
            decision.created_at,
            record_id=decision.record_id,
        )
        outcomes = self._outcomes.take()  # they ride along: one commit per gated call
        try:
            stored = self.store.create(decision, request.action, audit=event, also=outcomes)
        except BaseException:
            self._outcomes.give_back(outcomes)
            raise
        self.audit.committed(1 + len(outcomes))
        self._decided.add(stored.decision_id)
        return stored

    def preview(self, request: DecisionRequest) -> Decision:
        """What ``decide`` would answer now, as a dry run: nothing is recorded, no
        limit is spent, and the risk floor applies (a high-risk action is never
        ``allowed``). The decision is not stored; it cannot be consumed."""
        verified = self._verify_delegation(request, dry_run=True)
        if isinstance(verified, Evaluation):
            evaluation = verified
        else:
            judged = request.for_policy()
            if verified is not None:
                judged._verified_delegation = verified
            with dry_run():
                evaluation = _with_delegation_check(evaluate(self.policy, judged), verified)
        preview = self._new_decision(request, evaluation)
        return preview.model_copy(
            update={
                "decision_id": new_id("preview"),
                "record_id": None,
                "approval_id": None,
                "expires_at": None,
            }
        )

    def _open_review(self, request: DecisionRequest) -> Decision | None:
        """The open review of an earlier try of this very call, if there is one."""
        assert request.review_key is not None
        found = self.store.find_open_review(request.review_key)
        if found is None or found.action_digest != request.action_digest:
            return None
        current = self._expire_if_due(found)
        return current if current.status is not Status.EXPIRED else None

    def _new_decision(self, request: DecisionRequest, evaluation: Evaluation) -> Decision:
        status = _STATUS_FOR_VERDICT[evaluation.verdict]
        now = self._now()
        needs_review = status is Status.PENDING_REVIEW
        # Every value here is the engine's own and already typed: no validation pass.
        # In the model's field order (see ``_trusted``).
        return Decision._trusted(
            decision_id=new_id("dec"),
            status=status,
            reason=evaluation.reason,
            tool=request.action.tool,
            action_digest=request.action_digest,
            created_at=now,
            rule_ids=list(evaluation.rule_ids),
            checks=list(evaluation.checks),
            approval_id=new_id("apr") if needs_review else None,
            record_id=new_id("rec"),
            expires_at=now + self._approval_ttl if needs_review else None,
            reviewer=None,
            review_comment=None,
            consumed_at=None,
            retry_after=evaluation.retry_after,
            trust_level=evaluation.trust_level,
            idempotency_key=request.action.idempotency_key,
            review_key=request.review_key if needs_review else None,
            failed_open=False,
        )

    def get_decision(self, decision_id: str) -> Decision:
        decision = self.store.get(decision_id)
        if decision is None:
            raise ValidationError(f"unknown decision {decision_id!r}", field="decision_id")
        return self._expire_if_due(decision)

    # -- using a decision --------------------------------------------------------------

    def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
        """Re-check just before execution, then mark the decision used.

        Refuses a changed action, a used or expired approval, and an action the
        current policy now blocks.
        """
        decision = self.get_decision(decision_id)
        if decision.action_digest != request.action_digest:
            self._record_refusal(decision, "the action changed after it was decided")
            raise Blocked(decision, "the action changed after it was decided")
        if decision.status is Status.EXPIRED:
            raise ApprovalExpired(decision)
        if decision.consumed_at is not None:
            raise ApprovalConsumed(decision, "this decision was already used")
        if not decision.allowed:
            raise Blocked(decision, f"decision is {decision.status.value}, not allowed")
        self._check_against_audit(decision)
        # The digest matched, so this is the very action that was decided.
        with rechecking():  # limits were spent when it was decided; not twice
            recheck = evaluate(self.policy, request.for_policy())
        if recheck.verdict is Verdict.BLOCK:
            reason = f"policy now blocks this action: {recheck.reason}"
            self._record_refusal(decision, reason)
            raise Blocked(decision, reason)
        now = self._now()
        event = self.audit.event(
            "consume",
            decision_id,
            audit_events.status_data(decision, decision.status.value, "used"),
            now,
        )
        consumed = self.store.update(
            decision_id,
            expect_status=decision.status,
            expect_unconsumed=True,
            audit=event,
            consumed_at=now,
        )
        if consumed is None:
            raise ApprovalConsumed(decision, "this decision was already used")
        self.audit.committed()
        return consumed

    def _check_against_audit(self, decision: Decision) -> None:
        """Refuse a decision whose stored state its own audit records do not bear out
        (a row edited to ``approved``, a used approval made unused again)."""
        recorded = recorded_state(self.store.decision_records(decision.decision_id))
        if recorded is None:  # its records were pruned by retention: nothing to compare
            return
        if recorded != (decision.status, False):
            logger.error(
                "gatekit: decision %s is stored as %s but its audit records say %s (used: %s);"
                " refusing it. Run `gatekit audit verify`.",
                decision.decision_id,
                decision.status.value,
                recorded[0].value,
                recorded[1],
            )
            reason = "the decision's stored state does not match its audit records"
            self._record_refusal(decision, reason)
            raise Blocked(decision, reason)

    def _record_refusal(self, decision: Decision, reason: str) -> None:
        data = audit_events.status_data(decision, decision.status.value, reason)
        self.store.append_audit(
            self.audit.event("consume_refused", decision.decision_id, data, self._now())
        )
        self.audit.committed()

    def report(self, decision_id: str, outcome: Outcome) -> None:
        """Record what happened. Queued: committed with this engine's next transaction,
        within ``OutcomeQueue`` delay, or at close (see ``gatekit.engine.outcomes``)."""
        if decision_id not in self._decided and self.store.get(decision_id) is None:
            raise ValidationError(f"unknown decision {decision_id!r}", field="decision_id")
        data = typed_json(audit_events.outcome_data(outcome))  # two strings: nothing to check
        self._outcomes.put(self.audit.event("outcome", decision_id, data, self._now()))

    def flush(self) -> None:
        """Commit the queued outcome records now."""
        self._outcomes.flush()

    def outcome(self, decision_id: str) -> Outcome | None:
        """The last outcome recorded for a decision, queued ones included."""
        self.flush()
        return self.store.outcome(decision_id)

    def _write_outcomes(self, events: list[AuditEvent]) -> None:
        self.store.append_audit(*events)
        self.audit.committed(len(events))

    def _expire_if_due(self, decision: Decision) -> Decision:
        open_for_use = decision.status is Status.PENDING_REVIEW or (
            decision.status is Status.APPROVED and decision.consumed_at is None
        )
        if not open_for_use or decision.expires_at is None or self._now() < decision.expires_at:
            return decision
        reason = "the approval window closed"
        event = self.audit.event(
            "expire",
            decision.decision_id,
            audit_events.status_data(decision, Status.EXPIRED.value, reason),
            self._now(),
        )
        expired = self.store.update(
            decision.decision_id,
            expect_status=decision.status,
            audit=event,
            status=Status.EXPIRED,
            reason=reason,
        )
        if expired is None:
            return self.get_decision(decision.decision_id)
        self.audit.committed()
        return expired

    # -- review ------------------------------------------------------------------------

    def pending(self) -> list[Decision]:
        return [self._expire_if_due(d) for d in self.store.list(Status.PENDING_REVIEW)]

    def approve(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        return self._review(approval_id, Status.APPROVED, reviewer, comment)

    def reject(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        return self._review(approval_id, Status.REJECTED, reviewer, comment)

    def _review(self, approval_id: str, verdict: Status, reviewer: str, comment: str) -> Decision:
        if not canonical_identity(reviewer, field="reviewer"):
            raise ValidationError("a review needs the reviewer's identity", field="reviewer")
        found = self.store.find_by_approval(approval_id)
        if found is None:
            raise ValidationError(f"unknown approval {approval_id!r}", field="approval_id")
        decision = self._expire_if_due(found)
        if verdict is Status.APPROVED:
            self._check_separation_of_duties(decision, reviewer)
        reason = f"{verdict.value} by {reviewer}" + (f": {comment}" if comment else "")
        event = self.audit.event(
            "review",
            decision.decision_id,
            audit_events.review_data(decision, verdict.value, reviewer, comment),
            self._now(),
        )
        reviewed = self.store.update(
            decision.decision_id,
            expect_status=Status.PENDING_REVIEW,
            audit=event,
            status=verdict,
            reviewer=reviewer,
            review_comment=comment or None,
            reason=reason,
        )
        if reviewed is None:
            current = self.get_decision(decision.decision_id)
            raise ReviewConflict(
                f"approval {approval_id} is already {current.status.value}"
                + (f" (by {current.reviewer})" if current.reviewer else "")
            )
        self.audit.committed()
        observe_review(self.policy, reviewed)
        return reviewed

    def _check_separation_of_duties(self, decision: Decision, reviewer: str) -> None:
        if not self._separation_of_duties:
            return
        action = self.store.get_action(decision.decision_id)
        if action is None or action.agent_id is None:
            return
        if same_identity(action.agent_id, reviewer):
            raise ReviewConflict(
                f"separation of duties: {reviewer!r} requested this action and cannot approve it"
            )

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Commit queued outcomes, sign the audit log's last records, release the store.
        Closing again does nothing (a client also closes its engine at exit)."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
        try:
            self._outcomes.close()
            self.audit.close()
        finally:
            self.store.close()
