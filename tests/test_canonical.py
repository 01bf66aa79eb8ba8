"""The fast canonical-JSON path is byte-identical to RFC 8785 wherever it is used."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785

from gatekit import Action, Check, Client, Decision, DecisionRequest, LocalBackend, _context
from gatekit._canonical import _plain, canonical_json
from gatekit._models import ActionJson, canonical_digest
from gatekit.audit import events as audit_events
from gatekit.audit._records import AuditEvent
from gatekit.engine.records import decision_record_data
from gatekit.store import MemoryStore
from gatekit.testing import MockBackend

ALPHABET = "aZ09 \"\\/\b\f\n\r\t\x00\x1f\x7féß€\u2028\U0001f600<>&'"


def _random_value(rng: random.Random, depth: int = 0):
    choice = rng.randrange(7 if depth < 3 else 4)
    if choice == 0:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(8)))
    if choice == 1:
        return rng.randrange(-(2**53) + 1, 2**53)
    if choice == 2:
        return rng.choice([True, False, None])
    if choice == 3:
        return rng.random() * 10 ** rng.randrange(-5, 25)
    if choice == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 5))) for _ in range(4)]
    return {k: _random_value(rng, depth + 1) for k in keys}


@pytest.mark.parametrize("seed", range(20))
def test_canonical_json_equals_rfc8785(seed):
    rng = random.Random(seed)
    for _ in range(200):
        value = {"v": _random_value(rng)}
        assert canonical_json(value) == rfc8785.dumps(value)


def test_floats_and_unicode_keys_take_the_exact_path():
    assert not _plain({"amount": 1.0})
    assert not _plain({"ключ": "x"})
    assert not _plain({"n": 2**60})
    assert canonical_json({"amount": 1.0, "b": [1e21]}) == b'{"amount":1,"b":[1e+21]}'


def test_a_record_hash_is_the_canonical_digest_of_its_content():
    event = AuditEvent(
        "w",
        "rec_1",
        "decision",
        "2026-01-01T00:00:00.000000+00:00",
        "dec_1",
        {"amount": 12.5, "note": "é"},
    )
    record = event.seal(3, "0" * 64)
    assert record.hash == canonical_digest(record.content())


# -- documents written field by field, from bytes already made -------------------------

ODD = 'tab\there "quoted" \\ é \u2028 \U0001f600 \x00\x1f\x7f 100%s %d'
# Names and keys may not hold control characters (they are looked up in the store).
ODD_NAME = ODD.replace("\t", " ").replace("\x00", "").replace("\x1f", "").replace("\x7f", "")


def _actions():
    yield Action(tool="t")
    yield Action(
        tool=f"tool {ODD_NAME}",
        intent_id=f"intent {ODD_NAME}",
        arguments={
            "amount": 12.5,
            "big": 2**53 - 1,
            "ключ": [1, None, True, ODD],
            "z": {"a": 1e21},
        },
        risk_level="high",
        operation_class="financial",
        data_sensitivity="pii",
        systems_touched=["zeta", "alpha", ODD],
        agent_id="agent é",
        run_id=f"run {ODD_NAME}",
        session_id="s",
        idempotency_key=f"key {ODD_NAME}",
        metadata={"note": ODD, "n": 3.0},
    )


@pytest.mark.parametrize("action", list(_actions()))
def test_the_action_digest_is_the_canonical_digest_of_its_fields(action):
    expected = canonical_digest(
        {
            "tool": action.tool,
            "intent_id": action.intent_id,
            "arguments": action.arguments,
            "agent_id": action.agent_id,
            "risk_level": action.risk_level.value,
            "operation_class": action.operation_class.value,
            "data_sensitivity": action.data_sensitivity.value,
            "systems_touched": sorted(action.systems_touched),
        }
    )
    assert action.digest() == expected
    assert action.digest_with(canonical_json(action.arguments)) == expected


@pytest.mark.parametrize("action", list(_actions()))
def test_the_action_document_is_the_canonical_json_of_its_dump(action):
    expected = rfc8785.dumps(action.model_dump(mode="json"))
    assert action.canonical() == expected
    assert DecisionRequest.for_action(action).action_json() == expected


def test_a_request_serialises_its_own_action_never_another():
    first, second = _actions()
    request = DecisionRequest.for_action(first)
    request.action_json()
    other = request.model_copy(update={"action": second})
    assert other.action_json() == second.canonical()


def _decisions():
    now = datetime.now(UTC)
    yield Decision(
        decision_id="dec_1",
        status="allowed",
        reason="ok",
        tool="t",
        action_digest="a" * 64,
        created_at=now,
    )
    yield Decision(
        decision_id="dec_2",
        status="pending_review",
        reason=f"needs review {ODD}",
        tool="t",
        action_digest="b" * 64,
        created_at=now,
        rule_ids=["r1", f"r {ODD}"],
        checks=[
            Check(name="dlp.email", outcome="warn", detail="pii", path="args.to"),
            Check(name="shield", outcome="block", detail=ODD),
        ],
        approval_id="apr_1",
        expires_at=now + timedelta(hours=1),
        idempotency_key=f"k {ODD}",
    )


@pytest.mark.parametrize("decision", list(_decisions()))
@pytest.mark.parametrize("action", list(_actions()))
def test_the_decision_record_data_is_the_canonical_json_of_what_it_holds(decision, action):
    expected = rfc8785.dumps(audit_events.decision_data(decision, action))
    assert decision_record_data(decision, action.canonical()) == expected


@pytest.mark.parametrize("data", [{}, {"a": 1.5, "é": [ODD, None]}, b'{"x":1}'])
def test_a_sealed_record_is_the_canonical_json_of_everything_it_says(data):
    event = AuditEvent(
        f"writer {ODD}", "rec_1", "decision", "2026-01-01T00:00:00+00:00", None, data
    )
    record = event.seal(2**40, "f" * 64)
    content = {
        "v": 1,
        "writer": event.writer_id,
        "seq": 2**40,
        "prev": "f" * 64,
        "id": "rec_1",
        "at": event.at,
        "kind": "decision",
        "decision_id": None,
        "data": data if isinstance(data, dict) else {"x": 1},
    }
    assert record.body.encode() == rfc8785.dumps(content)
    assert record.hash == canonical_digest(content)


@pytest.mark.parametrize("decision", list(_decisions()))
def test_a_decision_the_engine_builds_unchecked_equals_a_validated_one(decision):
    trusted = Decision._trusted(**dict(decision))
    assert trusted == decision
    assert trusted.model_dump_json() == decision.model_dump_json()


def test_integers_past_2_53_take_the_exact_path_whatever_their_sign():
    for n in (2**53 - 1, -(2**53 - 1), 10**15, -(10**15)):
        assert canonical_json({"n": n, "s": "1234567890123456789"}) == rfc8785.dumps(
            {"n": n, "s": "1234567890123456789"}
        )
    for n in (2**53, -(2**53), 10**20):
        with pytest.raises(rfc8785.IntegerDomainError):
            canonical_json({"n": n})


def test_one_action_json_serves_every_action_made_from_its_template_by_arguments_and_context():
    template = list(_actions())[1]
    writer = ActionJson(template)
    for agent, run, session, arguments in [
        (None, None, None, {}),
        ("agent 2", "run 2", f"s {ODD}", {"n": 1.5, "k": [ODD]}),
    ]:
        action = template.model_copy(
            update={"agent_id": agent, "run_id": run, "session_id": session, "arguments": arguments}
        )
        arguments_json = canonical_json(arguments)
        assert writer.digest(agent, arguments_json) == action.digest()
        assert writer.document(agent, run, session, arguments_json) == rfc8785.dumps(
            action.model_dump(mode="json")
        )


def test_decorated_calls_send_the_json_of_exactly_the_action_sent():
    backend = MockBackend()
    client = Client(backend, agent_id="agent-1")

    @client.intercept(metadata={"note": "n"}, systems_touched=["b", "a"])
    def shapes(x, y="default", *rest, **named): ...

    @client.intercept
    def named(größe, b): ...  # non-ASCII names sort by UTF-16 code units

    @client.intercept(capture_arguments=True)
    def values(amount, größe): ...

    with _context.run_context(_context.RunContext(run_id="run-1", session_id="s-1")):
        shapes(1)
        shapes(1, ODD, 3, z=[1.5])
        named("x", [1, 2])
        values(2.5, größe={"ключ": ODD})
        values(amount=1, größe=None)
    for request in backend.requests:
        assert request.action_json() == rfc8785.dumps(request.action.model_dump(mode="json"))
        unmasked = request._private()["_unmasked"]
        assert request.action_digest == unmasked.digest()
        assert (unmasked.run_id, unmasked.session_id) == ("run-1", "s-1")


def test_models_built_unchecked_have_their_fields_in_order_and_serialise_as_validated_ones():
    backend = LocalBackend(store=MemoryStore())
    client = Client(backend, agent_id="agent-1")
    # An e-mail address is masked when sent: policy judges a twin with the real one.
    request = client.prepare(Action(tool="mail", arguments={"to": "a@example.com"}))
    judged = request.for_policy()
    assert judged is not request
    allowed = backend.engine.decide(client.prepare(Action(tool="t", risk_level="low")))
    pending = backend.engine.decide(request)
    assert pending.approval_id is not None
    for model in [request, judged, allowed, pending]:
        assert list(model.__dict__) == list(type(model).model_fields)
        again = type(model).model_validate_json(model.model_dump_json())
        assert again.model_dump_json() == model.model_dump_json()
