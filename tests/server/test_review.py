"""The review page in-process (TestClient): sessions and their cookie, CSRF, escaping,
reviews, refusals. The browser tests (test_review_browser.py) drive it for real."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from gatekit import Action, DecisionRequest, Settings
from gatekit._models import Decision
from gatekit.api_keys import Role, create_key, revoke_key
from gatekit.engine import Engine
from gatekit.server import create_app
from gatekit.server.review_session import COOKIE, SECRET_FILE
from tests.server.conftest import REVIEW_POLICY, Server

XSS = "<script>alert(1)</script>"


def _pending(server: Server, **arguments: Any) -> Decision:
    action = Action(
        tool="pay_invoice", arguments=arguments or {"amount": 5}, agent_id="billing-bot"
    )
    return server.engine.decide(DecisionRequest.for_action(action))


def _csrf(page: httpx.Response) -> str:
    """The CSRF token a page embeds in its forms."""
    marker = 'name="csrf" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def _sign_in(client: TestClient, key: str) -> str:
    """Sign in through the form; the CSRF token of the signed-in session."""
    form = client.get("/review/sign-in")
    answer = client.post("/review/sign-in", data={"api_key": key, "csrf": _csrf(form)})
    assert answer.status_code == 200, answer.text
    assert answer.url.path == "/review"
    return _csrf(answer)


def _set_cookie(answer: httpx.Response) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(answer.headers["set-cookie"])
    return cookie


def _refusals(server: Server) -> list[dict[str, Any]]:
    records = server.engine.store.audit_records()
    return [r.content() for r in records if r.kind == "access_refused"]


def _status(server: Server, decision: Decision) -> str:
    return server.engine.get_decision(decision.decision_id).status.value


# -- sessions ---------------------------------------------------------------------------


def test_the_session_cookie_is_http_only_strict_and_never_holds_the_key(server: Server) -> None:
    key = server.keys[Role.REVIEWER]
    form = server.client.get("/review/sign-in")
    answer = server.client.post(
        "/review/sign-in",
        data={"api_key": key, "csrf": _csrf(form)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/review"
    morsel = _set_cookie(answer)[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "strict"
    assert morsel["secure"] == ""  # plain http here (see the https test)
    assert morsel["path"] == "/review"
    assert key not in answer.headers["set-cookie"]
    secret = key.rsplit("_", 1)[1]
    assert secret not in answer.headers["set-cookie"]
    assert key not in answer.headers["location"]


def test_over_https_the_cookie_is_secure(server: Server) -> None:
    https = TestClient(server.client.app, base_url="https://testserver")
    form = https.get("/review/sign-in")
    assert _set_cookie(form)[COOKIE]["secure"] is True


def test_a_wrong_key_or_an_agent_key_is_refused_and_audited(server: Server) -> None:
    cases = [
        ("gk_0000000000000000_nope", 401, "unknown, malformed or revoked API key"),
        (server.keys[Role.AGENT], 403, "this agent key may not do this"),
        ("", 401, "no API key"),
    ]
    for key, status, said in cases:
        form = server.client.get("/review/sign-in")
        answer = server.client.post("/review/sign-in", data={"api_key": key, "csrf": _csrf(form)})
        assert answer.status_code == status
        assert said in answer.text
        if key:
            assert key not in answer.text  # the form does not echo it back
        assert server.client.get("/review", follow_redirects=False).status_code == 303
    assert [r["data"]["status"] for r in _refusals(server)] == [401, 403, 401]


def test_signing_out_ends_the_session(server: Server) -> None:
    csrf = _sign_in(server.client, server.keys[Role.REVIEWER])
    answer = server.client.post("/review/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/review/sign-in"
    assert "Max-Age=0" in answer.headers["set-cookie"]
    assert COOKIE not in server.client.cookies
    page = server.client.get("/review", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/review/sign-in")
    assert server.client.get("/review/pending").status_code == 401


def test_a_revoked_key_ends_its_session_at_once(server: Server) -> None:
    _sign_in(server.client, server.keys[Role.REVIEWER])
    revoke_key(server.engine.store, server.keys[Role.REVIEWER].split("_")[1])
    page = server.client.get("/review")
    assert page.status_code == 401
    assert "revoked" in page.text
    assert _refusals(server)[-1]["data"]["reason"] == "the session's API key was revoked"
    assert COOKIE not in server.client.cookies  # the refusal ended the session
    assert server.client.get("/review/pending").status_code == 401


def test_a_forged_cookie_is_no_session(server: Server) -> None:
    server.client.cookies.set(COOKIE, '{"csrf":"x","key_id":"0000000000000000"}')
    assert server.client.get("/review", follow_redirects=False).status_code == 303
    assert server.client.get("/review/pending").status_code == 401
    assert _refusals(server)[-1]["data"]["reason"] == "an invalid or expired session"


def test_replicas_and_workers_accept_each_others_sessions(tmp_path: Path) -> None:
    """The key file in a shared data dir, or one GATEKIT_SESSION_SECRET for replicas
    with data dirs of their own."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(REVIEW_POLICY)
    secret = SecretStr("replicas-share-this-secret-0123456789")

    def app(data_dir: str, session_secret: SecretStr | None) -> tuple[TestClient, Engine]:
        settings = Settings(
            data_dir=tmp_path / data_dir, policy=policy, session_secret=session_secret
        )
        engine = Engine.from_settings(settings)
        return TestClient(create_app(settings, engine=engine)), engine

    pairs = [(("shared", None), ("shared", None)), (("a", secret), ("b", secret))]
    for first_dir, second_dir in pairs:
        first, engine = app(*first_dir)
        second, other = app(*second_dir)
        key = create_key(engine.store, name="alice", role=Role.REVIEWER)[0]
        if first_dir[0] != second_dir[0]:  # separate databases here; replicas share one
            other.store.add_api_key(engine.store.api_key(key.split("_")[1]))  # type: ignore[attr-defined]
        _sign_in(first, key)
        second.cookies.set(COOKIE, first.cookies[COOKIE])
        assert second.get("/review", follow_redirects=False).status_code == 200
        engine.close()
        other.close()
    key_file = tmp_path / "shared" / SECRET_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (tmp_path / "a" / SECRET_FILE).exists()


def test_a_different_secret_does_not_accept_the_session(tmp_path: Path, server: Server) -> None:
    _sign_in(server.client, server.keys[Role.REVIEWER])
    settings = Settings(data_dir=tmp_path / "elsewhere", policy=None)
    stranger = TestClient(create_app(settings, engine=server.engine))
    stranger.cookies.set(COOKIE, server.client.cookies[COOKIE])
    assert stranger.get("/review", follow_redirects=False).status_code == 303


# -- CSRF -------------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_changes_nothing(server: Server) -> None:
    decision = _pending(server)
    csrf = _sign_in(server.client, server.keys[Role.REVIEWER])
    path = f"/review/approvals/{decision.approval_id}/approve"
    for tokens in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + "x"}):
        answer = server.client.post(path, data={"comment": "ok", **tokens})
        assert answer.status_code == 403
        assert "CSRF token" in answer.text
    assert _status(server, decision) == "pending_review"
    assert [r["data"]["path"] for r in _refusals(server)] == [path] * 3


def test_a_session_that_has_not_signed_in_cannot_review(server: Server) -> None:
    decision = _pending(server)
    csrf = _csrf(server.client.get("/review/sign-in"))
    answer = server.client.post(
        f"/review/approvals/{decision.approval_id}/approve", data={"csrf": csrf}
    )
    assert answer.status_code == 401
    assert _refusals(server)[-1]["data"]["reason"] == "not signed in"
    assert _status(server, decision) == "pending_review"


def test_a_token_from_another_session_is_refused(server: Server) -> None:
    decision = _pending(server)
    other = TestClient(server.client.app)
    foreign = _sign_in(other, server.keys[Role.ADMIN])
    _sign_in(server.client, server.keys[Role.REVIEWER])
    path = f"/review/approvals/{decision.approval_id}/reject"
    assert server.client.post(path, data={"csrf": foreign}).status_code == 403
    assert _status(server, decision) == "pending_review"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
    ],
)
def test_a_form_from_another_origin_is_refused_even_with_the_token(
    server: Server, headers: dict[str, str]
) -> None:
    decision = _pending(server)
    csrf = _sign_in(server.client, server.keys[Role.REVIEWER])
    path = f"/review/approvals/{decision.approval_id}/approve"
    answer = server.client.post(path, data={"csrf": csrf}, headers=headers)
    assert answer.status_code == 403
    assert _refusals(server)[-1]["data"]["reason"].startswith("form refused: a ")
    assert _status(server, decision) == "pending_review"
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert server.client.post(path, data={"csrf": csrf}, headers=same).status_code == 200
    assert _status(server, decision) == "approved"


def test_signing_in_needs_the_forms_token_too(server: Server) -> None:
    answer = server.client.post("/review/sign-in", data={"api_key": server.keys[Role.REVIEWER]})
    assert answer.status_code == 403
    assert server.client.get("/review", follow_redirects=False).status_code == 303


# -- what a reviewer sees and does ------------------------------------------------------


def test_agent_supplied_text_is_escaped_everywhere(server: Server) -> None:
    decision = _pending(server, memo=XSS, **{XSS: "key"})
    _sign_in(server.client, server.keys[Role.REVIEWER])
    pages = [
        server.client.get("/review"),
        server.client.get("/review/pending"),
        server.client.get(f"/review/approvals/{decision.approval_id}"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert XSS not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"


def test_the_list_shows_pending_reviews_newest_first(server: Server) -> None:
    first = _pending(server, amount=1)
    second = _pending(server, amount=2)
    _sign_in(server.client, server.keys[Role.REVIEWER])
    fragment = server.client.get("/review/pending").text
    assert fragment.index(second.approval_id or "") < fragment.index(first.approval_id or "")
    for shown in ("pay_invoice", "billing-bot", "pay-needs-review", "payments need a human"):
        assert shown in unescape(fragment)
    assert 'data-count="2"' in fragment


def test_a_review_records_the_keys_holder_and_leaves_the_list(server: Server) -> None:
    decision = _pending(server)
    csrf = _sign_in(server.client, server.keys[Role.REVIEWER])
    answer = server.client.post(
        f"/review/approvals/{decision.approval_id}/approve",
        data={"csrf": csrf, "comment": "  looks right  ", "reviewer": "mallory"},
    )
    assert answer.status_code == 200
    assert answer.url.path == "/review"
    assert "pay_invoice: approved by reviewer-1." in answer.text
    reviewed = server.engine.get_decision(decision.decision_id)
    assert (reviewed.status.value, reviewed.reviewer) == ("approved", "reviewer-1")
    assert reviewed.review_comment == "looks right"
    assert decision.approval_id not in server.client.get("/review/pending").text


def test_a_second_reviewer_is_told_it_was_already_decided(server: Server) -> None:
    decision = _pending(server)
    path = f"/review/approvals/{decision.approval_id}"
    first = TestClient(server.client.app)
    first_csrf = _sign_in(first, server.keys[Role.REVIEWER])
    second_csrf = _sign_in(server.client, server.keys[Role.ADMIN])
    assert first.post(path + "/reject", data={"csrf": first_csrf}).status_code == 200
    late = server.client.post(path + "/approve", data={"csrf": second_csrf})
    assert late.status_code == 409
    assert "Already decided" in late.text
    assert "already rejected (by reviewer-1)" in late.text
    assert _status(server, decision) == "rejected"
    shown = server.client.get(path)
    assert "Already decided: this action is rejected" in shown.text
    assert 'name="comment"' not in shown.text  # no form to act with


def test_separation_of_duties_is_explained(server: Server) -> None:
    action = Action(tool="pay_invoice", arguments={"amount": 5}, agent_id="reviewer-1")
    decision = server.engine.decide(DecisionRequest.for_action(action))
    csrf = _sign_in(server.client, server.keys[Role.REVIEWER])
    answer = server.client.post(
        f"/review/approvals/{decision.approval_id}/approve", data={"csrf": csrf}
    )
    assert answer.status_code == 409
    assert "Not allowed" in answer.text and "separation of duties" in answer.text
    assert _status(server, decision) == "pending_review"


def test_an_overlong_comment_or_an_unknown_item_is_said_plainly(server: Server) -> None:
    decision = _pending(server)
    csrf = _sign_in(server.client, server.keys[Role.REVIEWER])
    path = f"/review/approvals/{decision.approval_id}/approve"
    long = server.client.post(path, data={"csrf": csrf, "comment": "x" * 2001})
    assert long.status_code == 422
    assert "at most 2000 characters" in long.text
    assert _status(server, decision) == "pending_review"
    assert server.client.get("/review/approvals/apr_nope").status_code == 404
    unknown = server.client.post("/review/approvals/apr_nope/approve", data={"csrf": csrf})
    assert unknown.status_code == 404


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[Server, list[datetime]]]:
    """A server whose engine reads a clock the test moves."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(REVIEW_POLICY)
    now = [datetime.now(UTC)]
    settings = Settings(data_dir=tmp_path / "data", policy=policy, approval_ttl=60.0)
    engine = Engine.from_settings(settings, clock=lambda: now[0])
    keys = {role: create_key(engine.store, name=f"{role.value}-1", role=role)[0] for role in Role}
    with TestClient(create_app(settings, engine=engine)) as client:
        yield Server(client, engine, keys, settings.data_dir), now
    engine.close()


def test_an_expired_review_leaves_the_list(clocked: tuple[Server, list[datetime]]) -> None:
    server, now = clocked
    decision = _pending(server)
    csrf = _sign_in(server.client, server.keys[Role.REVIEWER])
    assert decision.approval_id in server.client.get("/review/pending").text
    now[0] += timedelta(seconds=61)
    assert decision.approval_id not in server.client.get("/review/pending").text
    late = server.client.post(
        f"/review/approvals/{decision.approval_id}/approve", data={"csrf": csrf}
    )
    assert late.status_code == 409
    assert "already expired" in late.text
    assert _status(server, decision) == "expired"


def test_the_page_is_not_part_of_the_api_document(server: Server) -> None:
    paths = server.client.get("/v1/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/review")]
    script = server.client.get("/review/static/review.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert server.client.get("/review/static/../app.py").status_code == 404
