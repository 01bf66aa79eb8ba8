"""The review page in a real Chromium (Debian's, driven by Playwright) against a real
``gatekit serve``, while agent processes wait in ``guard()`` for the reviewer.

Chromium comes from Debian's packages (scripts/test.sh installs it when missing);
the flags keep it off the network, which is closed here. A screenshot of the
pending list is saved under test-artifacts/ at the repository's root.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gatekit import Settings
from gatekit.api_keys import Role, create_key
from gatekit.store import open_store
from tests.server.conftest import REVIEW_POLICY

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("GATEKIT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AGENT = Path(__file__).with_name("review_agent.py")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
XSS = "<script>alert(1)</script>"
CARD_NUMBER = "4111 1111 1111 1111"  # the agent sends it; DLP masks it before it leaves
WAIT_MS = 20_000  # for the polled list (every 2 s) and the agent's own polling
AGENT_EXIT_S = 60.0
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=WAIT_MS)


@dataclass
class Live:
    url: str
    keys: dict[str, str]
    root: Path
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEKIT_")}
        return {**clean, **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gatekit serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"gatekit serve was not ready within 30 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``gatekit serve`` on a free port, its keys created beforehand with the store."""
    root = tmp_path_factory.mktemp("review-live")
    policy = root / "policy.yaml"
    policy.write_text(REVIEW_POLICY)
    data_dir = root / "data"
    store = open_store(Settings(data_dir=data_dir, database_url=None))
    try:
        roles = {"alice": Role.REVIEWER, "bob": Role.REVIEWER, "agent": Role.AGENT}
        keys = {name: create_key(store, name=name, role=role)[0] for name, role in roles.items()}
    finally:
        store.close()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    command = [sys.executable, "-m", "gatekit.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--policy", str(policy), "--data-dir", str(data_dir)]
    with log.open("wb") as output:
        live = Live(url, keys, root, log)
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=live.env())
    try:
        _wait_until_ready(url, server, log)
        yield live
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/test.sh installs Debian's package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        yield chromium
        chromium.close()


def _signed_in(browser: Browser, live: Live, who: str) -> Page:
    page = browser.new_context(viewport=DESKTOP, base_url=live.url).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto("/review")
    assert page.url == f"{live.url}/review/sign-in"
    page.get_by_label("Reviewer API key").fill(live.keys[who])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_contain_text(f"Signed in as {who}")
    assert page.url == f"{live.url}/review"
    return page


@dataclass
class Agent:
    process: subprocess.Popen[str]
    output: Path
    run_id: str

    def tool_runs(self) -> int:
        return len(self.output.read_text().splitlines()) if self.output.exists() else 0

    def finish(self) -> tuple[int, str, str]:
        """The agent's exit code, what it said it did, and its whole output."""
        out, err = self.process.communicate(timeout=AGENT_EXIT_S)
        return self.process.returncode, out.strip(), out + err

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


def _start_agent(live: Live, run_id: str, memo: str = "invoice 7") -> Agent:
    output = live.root / f"{run_id}.tool-log"
    command = [sys.executable, str(AGENT), live.url, str(output), run_id, memo]
    process = subprocess.Popen(
        command,
        env=live.env(GATEKIT_API_KEY=live.keys["agent"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Agent(process, output, run_id)


def _approval(live: Live, approval_id: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {live.keys['alice']}"}
    answer = httpx.get(f"{live.url}/v1/approvals/{approval_id}", headers=headers, timeout=10.0)
    decision: dict[str, str] = answer.raise_for_status().json()["decision"]
    return decision


def _no_key_logged(live: Live) -> None:
    log = live.log.read_text()
    assert "/review" in log  # the access log is there…
    assert not [name for name, key in live.keys.items() if key in log]  # …without any key


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(mode=0o700, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    path.chmod(0o600)
    print(f"screenshot: {path}")


def test_an_approval_lets_the_waiting_agent_run_its_tool_exactly_once(
    live: Live, browser: Browser
) -> None:
    alice = _signed_in(browser, live, "alice")
    dialogs: list[str] = []
    alice.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    alice.evaluate("window.stillTheSamePage = true")
    bob = _signed_in(browser, live, "bob")
    bob.evaluate("window.stillTheSamePage = true")
    agent = _start_agent(live, "run-approve", memo=XSS)
    try:
        # The action the agent waits on appears without reloading the page.
        card = alice.locator(".card", has_text="run-approve")
        expect(card).to_be_visible()
        assert alice.evaluate("window.stillTheSamePage") is True
        expect(card.locator(".tool")).to_have_text("pay_invoice")
        expect(card.locator(".agent")).to_have_text("billing-bot")
        expect(card.locator(".risk")).to_have_text("high risk")
        expect(card.locator(".reason")).not_to_be_empty()
        expect(card.locator(".rules")).to_contain_text("pay-needs-review")
        expect(card.locator(".checks")).to_contain_text("dlp.")
        expect(card.locator(".arguments")).to_contain_text(XSS)  # as text, not markup
        assert CARD_NUMBER not in alice.content()  # masked before it left the agent
        _screenshot(alice, "review-pending-1280x800.png")
        alice.set_viewport_size(PHONE)
        assert alice.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        _screenshot(alice, "review-pending-phone.png")
        alice.set_viewport_size(DESKTOP)

        approval_id = card.get_attribute("data-approval-id")
        assert approval_id
        bob_item = bob.context.new_page()
        bob_item.goto(f"/review/approvals/{approval_id}")
        expect(bob.locator(".card", has_text="run-approve")).to_be_visible()

        card.get_by_role("link", name="Open to decide").click()
        expect(alice.locator(".arguments").first).to_contain_text(XSS)
        _screenshot(alice, "review-item-1280x800.png")
        alice.get_by_label("Comment").fill("invoice checked")
        alice.get_by_role("button", name="Approve").click()
        expect(alice.locator(".notice")).to_contain_text("pay_invoice: approved by alice")
        expect(alice.locator(".card", has_text="run-approve")).to_have_count(0)

        code, said, output = agent.finish()
        assert (code, said) == (0, "ran"), output
        assert agent.tool_runs() == 1
        decided = _approval(live, approval_id)
        assert (decided["reviewer"], decided["review_comment"]) == ("alice", "invoice checked")

        # Bob's list drops it on its own; acting on his stale page says it was decided.
        expect(bob.locator(".card", has_text="run-approve")).to_have_count(0)
        assert bob.evaluate("window.stillTheSamePage") is True
        bob_item.get_by_role("button", name="Reject").click()
        expect(bob_item.get_by_role("alert")).to_contain_text("Already decided")
        expect(bob_item.get_by_role("alert")).to_contain_text("already approved (by alice)")
        assert _approval(live, approval_id)["status"] == "approved"
        assert agent.tool_runs() == 1
        assert dialogs == []
        _no_key_logged(live)
    finally:
        agent.stop()
        alice.context.close()
        bob.context.close()


def test_a_rejection_means_the_tool_never_runs(live: Live, browser: Browser) -> None:
    alice = _signed_in(browser, live, "alice")
    agent = _start_agent(live, "run-reject")
    try:
        card = alice.locator(".card", has_text="run-reject")
        card.get_by_role("link", name="Open to decide").click()
        alice.get_by_label("Comment").fill("not this one")
        alice.get_by_role("button", name="Reject").click()
        expect(alice.locator(".notice")).to_contain_text("pay_invoice: rejected by alice")
        expect(alice.locator(".card", has_text="run-reject")).to_have_count(0)
        code, said, output = agent.finish()
        assert (code, said) == (3, "rejected"), output
        assert agent.tool_runs() == 0
        assert not agent.output.exists()
    finally:
        agent.stop()
        alice.context.close()


class _AttackerSite(BaseHTTPRequestHandler):
    """Another origin's pages: each posts a form to the review page on load."""

    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _auto_post(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (
        f'<form id="f" method="post" action="{action}">{inputs}</form>'
        '<script>document.getElementById("f").submit()</script>'
    )


@pytest.fixture
def attacker() -> Iterator[int]:
    site = ThreadingHTTPServer(("127.0.0.1", 0), _AttackerSite)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(site.server_address[1])
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=5)


def test_cross_site_form_posts_are_refused_and_change_nothing(
    live: Live, browser: Browser, attacker: int
) -> None:
    alice = _signed_in(browser, live, "alice")
    agent = _start_agent(live, "run-csrf")
    try:
        card = alice.locator(".card", has_text="run-csrf")
        expect(card).to_be_visible()
        approval_id = card.get_attribute("data-approval-id")
        assert approval_id
        target = f"{live.url}/review/approvals/{approval_id}/approve"
        token = alice.locator("input[name=csrf]").first.input_value()
        _AttackerSite.pages = {
            "/no-token": _auto_post(target, {"comment": "csrf"}),
            "/stolen-token": _auto_post(target, {"comment": "csrf", "csrf": token}),
        }
        # Same site, other origin (the cookie goes along): no token; a leaked token
        # from the wrong Origin. Another site (localhost): the cookie stays home.
        attacks = [
            f"http://127.0.0.1:{attacker}/no-token",
            f"http://127.0.0.1:{attacker}/stolen-token",
            f"http://localhost:{attacker}/no-token",
        ]
        for attack in attacks:
            with alice.expect_response(target) as posted:
                alice.goto(attack)
            assert posted.value.status == 403, attack
            expect(alice.get_by_role("alert")).to_contain_text("form refused")
            assert _approval(live, approval_id)["status"] == "pending_review"
            assert agent.process.poll() is None  # still waiting
        assert agent.tool_runs() == 0

        # The reviewer's own form still works (and the agent is let go).
        alice.goto(f"/review/approvals/{approval_id}")
        alice.get_by_role("button", name="Reject").click()
        expect(alice.locator(".notice")).to_contain_text("rejected by alice")
        code, said, output = agent.finish()
        assert (code, said) == (3, "rejected"), output
        assert agent.tool_runs() == 0
        _no_key_logged(live)
    finally:
        agent.stop()
        alice.context.close()
