"""``gatekit approvals`` against both stores."""

from __future__ import annotations

from typer.testing import CliRunner

from gatekit import Action, DecisionRequest, Status
from gatekit.cli import app, short_id

runner = CliRunner()


def _cli(db, *args):
    result = runner.invoke(app, [*args, *db.cli_options])
    return result.exit_code, " ".join(result.output.split())


def _pending(backend, agent="agent-1"):
    request = DecisionRequest.for_action(
        Action(tool="pay", risk_level="high", agent_id=agent, arguments={"amount": 5})
    )
    return backend.decide(request)


def test_list_show_and_approve(db, make_backend):
    pending = _pending(make_backend())
    code, listed = _cli(db, "approvals", "list")
    assert code == 0
    assert short_id(pending.approval_id) in listed
    code, shown = _cli(db, "approvals", "show", pending.approval_id)
    assert code == 0
    assert '"amount": 5' in shown
    code, out = _cli(
        db, "approvals", "approve", pending.approval_id, "--reviewer", "alice", "-m", "looks right"
    )
    assert code == 0, out
    assert "approved by alice" in out
    decision = db.open().get(pending.decision_id)
    assert decision.status is Status.APPROVED
    assert decision.review_comment == "looks right"
    code, out = _cli(db, "approvals", "reject", pending.approval_id, "--reviewer", "carol")
    assert code == 1
    assert "already approved" in out


def test_the_cli_enforces_separation_of_duties(db, make_backend):
    pending = _pending(make_backend(), agent="bob")
    code, out = _cli(db, "approvals", "approve", pending.approval_id, "--reviewer", "bob")
    assert code == 1
    assert "separation of duties" in out


def test_an_unknown_approval_is_an_error(db, make_backend):
    _pending(make_backend())
    code, out = _cli(db, "approvals", "approve", "apr_nope", "--reviewer", "alice")
    assert code == 1
    assert "no approval" in out


def test_audit_tail_and_export(db, make_backend):
    pending = _pending(make_backend())
    code, out = _cli(db, "audit", "tail", "-n", "5")
    assert code == 0
    assert short_id(pending.decision_id) in out
    assert "decision pay pending_review" in out
    code, out = _cli(db, "audit", "export")
    assert code == 0
    assert '"type": "record"' in out
