"""HttpBackend trusts no answer it cannot check: a server that is down, answers
garbage, the wrong status, or a decision about another action means no valid
decision — a BackendError, and the tool body never runs. Retries (on 503, 429
with Retry-After, lost answers) never make a second decision."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from gatekit import (
    Action,
    AsyncClient,
    BackendError,
    Client,
    Decision,
    DecisionError,
    DecisionRequest,
    HttpBackend,
    Status,
    ValidationError,
)
from gatekit._problems import DECISION_ERROR_CODES
from gatekit.api_keys import Role
from gatekit.backends import http as http_module
from gatekit.delegation import AgentKey, DelegationChain
from tests.backends.fake_server import FakeServer, Reply
from tests.backends.live_server import LiveServer, free_port
from tests.delegation.world import NARROW

KEY = "gk_0123456789abcdef_secret"


def request(tool: str = "read_file", **fields: Any) -> DecisionRequest:
    return DecisionRequest.for_action(Action(tool=tool, risk_level="low", **fields))


def decision_json(req: DecisionRequest, **changes: Any) -> dict[str, Any]:
    decision = Decision(
        decision_id="dec_fake",
        status=Status.ALLOWED,
        reason="fake",
        tool=req.action.tool,
        action_digest=req.action_digest,
        created_at=datetime.now(UTC),
    )
    return {**decision.model_dump(mode="json"), **changes}


def problem(status: int, code: str, **members: Any) -> Reply:
    body = {"title": "x", "status": status, "detail": f"{code} detail", "code": code, **members}
    return Reply(status, json.dumps(body), {"content-type": "application/problem+json"})


def gated_run(backend: HttpBackend) -> list[str]:
    """Try to run a gated tool; returns what ran (must stay empty)."""
    ran: list[str] = []

    @Client(backend, agent_id="a").intercept(tool="read_file", risk_level="low")
    def read_file(path: str) -> None:
        ran.append(path)

    with pytest.raises(BackendError):
        read_file("/etc/hosts")
    return ran


def test_a_server_that_is_down_fails_closed() -> None:
    backend = HttpBackend(f"http://127.0.0.1:{free_port()}", api_key=KEY, retries=1)
    assert gated_run(backend) == []
    assert backend.ready() is False


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, "not json at all", {"content-type": "application/json"}),
        Reply(200, "<html>hello</html>", {"content-type": "text/html"}),
        Reply(200, {"status": "allowed"}),  # not a Decision
        Reply(201, None),
        Reply(302, b"", {"location": "http://elsewhere.example/"}),
        Reply(418, "I'm a teapot", {"content-type": "text/plain"}),
        Reply(500, {"code": "internal_error", "detail": "boom"}),
        problem(409, "blocked"),  # a refusal without its decision
        problem(409, "something_new"),
    ],
    ids=[
        "garbage",
        "html",
        "not-a-decision",
        "201",
        "redirect",
        "teapot",
        "500",
        "409-bare",
        "409-unknown",
    ],
)
def test_an_invalid_answer_fails_closed(fake_server: FakeServer, reply: Reply) -> None:
    fake_server.script(reply)
    backend = HttpBackend(fake_server.url, api_key=KEY, retries=0)
    assert gated_run(backend) == []
    assert len(fake_server.requests) == 1


def test_a_decision_about_another_action_fails_closed(fake_server: FakeServer) -> None:
    lie = decision_json(request("read_file", arguments={"path": "/tmp/other"}))
    fake_server.script(Reply(200, lie), Reply(200, lie))
    backend = HttpBackend(fake_server.url, api_key=KEY, retries=0)
    with pytest.raises(BackendError, match="different action"):
        backend.decide(request(arguments={"path": "/etc/hosts"}))
    assert gated_run(backend) == []


def test_an_answer_about_another_decision_or_key_fails_closed(fake_server: FakeServer) -> None:
    req = request()
    backend = HttpBackend(fake_server.url, api_key=KEY, retries=0)
    fake_server.script(Reply(200, decision_json(req, decision_id="dec_other")))
    with pytest.raises(BackendError, match="another decision"):
        backend.get_decision("dec_fake")
    fake_server.script(Reply(200, decision_json(req, idempotency_key="someone-elses")))
    with pytest.raises(BackendError, match="idempotency key"):
        backend.decide(req)
    fake_server.script(
        problem(409, "approval_consumed", decision=decision_json(req, decision_id="x"))
    )
    with pytest.raises(BackendError, match="another decision"):
        backend.consume("dec_fake", req)


def test_an_oversized_answer_fails_closed(
    fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_module, "MAX_ANSWER_BYTES", 1000)
    req = request()
    fake_server.script(Reply(200, decision_json(req, reason="x" * 2000)))
    with pytest.raises(BackendError, match="over 1000 bytes"):
        HttpBackend(fake_server.url, api_key=KEY, retries=0).decide(req)


@pytest.mark.parametrize("kind", list(DECISION_ERROR_CODES))
def test_each_refusal_code_raises_its_exception(
    fake_server: FakeServer, kind: type[DecisionError]
) -> None:
    req = request()
    refused = decision_json(req, status="blocked")
    fake_server.script(problem(409, DECISION_ERROR_CODES[kind], decision=refused))
    with pytest.raises(DecisionError) as raised:
        HttpBackend(fake_server.url, api_key=KEY).consume("dec_fake", req)
    assert type(raised.value) is kind
    assert raised.value.reason == f"{DECISION_ERROR_CODES[kind]} detail"
    assert raised.value.decision.decision_id == "dec_fake"


def test_a_listed_review_that_is_not_pending_fails_closed(fake_server: FakeServer) -> None:
    listed = [{"decision": decision_json(request(), approval_id="apr_1"), "action": None}]
    fake_server.script(Reply(200, listed))
    with pytest.raises(BackendError, match="not pending review"):
        HttpBackend(fake_server.url, api_key=KEY).pending()


def test_ids_cannot_reach_another_route(fake_server: FakeServer) -> None:
    fake_server.script(Reply(404, {"code": "not_found", "detail": "no"}))
    with pytest.raises(ValidationError, match="no such id"):  # as the engine says it
        HttpBackend(fake_server.url, api_key=KEY).get_decision("../keys")
    assert fake_server.paths() == ["GET /v1/decisions/..%2Fkeys"]


# -- retries ---------------------------------------------------------------------------


def test_a_lost_answer_is_retried_and_the_server_decides_once(
    fake_server: FakeServer, live_server: LiveServer
) -> None:
    # The first try reaches the real server, which decides; its answer is lost (503).
    fake_server.upstream = live_server.url
    fake_server.script(Reply(503, forward=True), Reply(None, forward=True))
    backend = HttpBackend(fake_server.url, api_key=live_server.keys[Role.AGENT])
    tool, ran = f"read_{uuid.uuid4().hex[:8]}", []
    with Client(backend).guard(tool=tool, risk_level="low") as decision:
        ran.append(decision.status)
    assert ran == [Status.ALLOWED]
    decides = [seen for seen in fake_server.requests if seen.path == "/v1/decisions"]
    keys = {json.loads(seen.body)["action"]["idempotency_key"] for seen in decides}
    assert len(decides) == 2 and len(keys) == 1 and None not in keys
    store = live_server.store()
    try:
        assert [d.decision_id for d in store.list() if d.tool == tool] == [decision.decision_id]
    finally:
        store.close()


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_answers_are_retried_until_one_is_valid(
    fake_server: FakeServer, status: int
) -> None:
    req = request()
    fake_server.script(Reply(status, ""), Reply(status, ""), Reply(200, decision_json(req)))
    decision = HttpBackend(fake_server.url, api_key=KEY, retries=3).decide(req)
    assert decision.status is Status.ALLOWED
    assert len(fake_server.requests) == 3


def test_retries_end_and_fail_closed(fake_server: FakeServer) -> None:
    fake_server.script(*[Reply(503, "")] * 5)
    with pytest.raises(BackendError, match="HTTP 503"):
        HttpBackend(fake_server.url, api_key=KEY, retries=2).decide(request())
    assert len(fake_server.requests) == 3


def test_retry_after_is_honoured_within_its_bound(fake_server: FakeServer) -> None:
    req = request()
    fake_server.script(
        Reply(429, "", {"retry-after": "0"}),
        Reply(200, decision_json(req)),
        Reply(429, "", {"retry-after": "3600"}),
    )
    backend = HttpBackend(fake_server.url, api_key=KEY, max_retry_after=5)
    assert backend.decide(req).status is Status.ALLOWED
    assert len(fake_server.requests) == 2
    # The server asks for more patience than we may spend: no early retry, fail closed.
    with pytest.raises(BackendError, match="HTTP 429"):
        backend.decide(req)
    assert len(fake_server.requests) == 3


def test_what_may_have_run_is_not_sent_twice(fake_server: FakeServer) -> None:
    # A gateway error after a consume or an approval: it may have been used already.
    req = request()
    backend = HttpBackend(fake_server.url, api_key=KEY, retries=3)
    fake_server.script(Reply(502, ""), Reply(504, ""))
    with pytest.raises(BackendError, match="HTTP 502"):
        backend.consume("dec_fake", req)
    with pytest.raises(BackendError, match="HTTP 504"):
        backend.approve("apr_1", reviewer="x")
    assert len(fake_server.requests) == 2


def test_a_signed_request_is_not_replayed_after_a_gateway_error(fake_server: FakeServer) -> None:
    root, worker = AgentKey.generate("root"), AgentKey.generate("worker")
    chain = DelegationChain.issue_root(
        root, delegatee="worker", delegatee_key_id=worker.key_id, scope=NARROW
    ).held_by(worker)
    action = Action(tool="fs.read", risk_level="low", operation_class="read")
    signed = DecisionRequest.for_action(action).model_copy(
        update={"delegation": chain.envelope(action)}
    )
    fake_server.script(Reply(502, ""), Reply(200, decision_json(signed)))
    with pytest.raises(BackendError, match="HTTP 502"):
        HttpBackend(fake_server.url, api_key=KEY, retries=3).decide(signed)
    (seen,) = fake_server.requests
    assert json.loads(seen.body)["action"]["idempotency_key"] is None  # sent as signed


def test_requests_in_flight_are_bounded(fake_server: FakeServer) -> None:
    req = request()
    fake_server.default = Reply(200, decision_json(req), delay=0.05)
    backend = HttpBackend(fake_server.url, api_key=KEY, max_in_flight=2)
    answers: list[Status] = []

    def decide() -> None:
        answers.append(backend.decide(req).status)

    threads = [threading.Thread(target=decide) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == [Status.ALLOWED] * 6
    assert fake_server.most_in_flight <= 2


def test_the_async_path_fails_closed_on_a_lie_too(fake_server: FakeServer) -> None:
    lie = decision_json(request("read_file", arguments={"path": "/tmp/other"}))
    fake_server.script(Reply(200, lie), Reply(200, "garbage", {"content-type": "application/json"}))
    backend = HttpBackend(fake_server.url, api_key=KEY, retries=0)
    client, ran = AsyncClient(backend, agent_id="a"), []

    @client.intercept(tool="read_file", risk_level="low")
    async def read_file(path: str) -> None:
        ran.append(path)

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(BackendError):
                await read_file("/etc/hosts")
        await backend.aclose()

    anyio.run(scenario)
    assert ran == []
    assert len(fake_server.requests) == 2
