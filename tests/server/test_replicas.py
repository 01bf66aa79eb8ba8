"""Two `gatekit serve` processes on one real PostgreSQL, the way a team runs them
behind a load balancer: every piece of shared state lives in the database, each
process writes its own audit chain, and `gatekit audit verify` checks them all.

Also: `gatekit serve --workers 2` on one SQLite file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatekit import Action, DecisionRequest, Settings
from gatekit.api_keys import Role, create_key
from gatekit.store import Store, open_store

START_TIMEOUT = 60.0  # seconds for a server to answer /readyz
BUDGET = 10

POLICY = f"""
version: 1
default: allow
rules:
  - id: pay-needs-review
    match: {{tools: ["pay_*"]}}
    verdict: review
    reason: payments need a human
limits:
  - id: spend-budget
    per: agent
    tools: [spend]
    window: 1h
    max_calls: {BUDGET}
    reason: {BUDGET} spends an hour
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _body(tool: str, **arguments: Any) -> str:
    action = Action(tool=tool, arguments=arguments, agent_id="billing-bot")
    return DecisionRequest.for_action(action).model_dump_json()


@dataclass
class Deployment:
    """What the replicas share: one database, one data dir (keys, witness), one policy."""

    data_dir: Path
    database_url: str | None
    policy: Path
    logs: Path
    keys: dict[Role, str] = field(default_factory=dict)

    @property
    def options(self) -> list[str]:
        """Where the state is, as every `gatekit` command that touches it takes it."""
        options = ["--data-dir", str(self.data_dir)]
        return options + (["--database-url", self.database_url] if self.database_url else [])

    def env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("GATEKIT_")}
        return {**inherited, "PYTHONUNBUFFERED": "1"}

    def gatekit(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gatekit.cli", *args]
        return subprocess.run(
            command, env=self.env(), capture_output=True, text=True, timeout=120, check=False
        )

    def create_keys(self) -> None:
        """The reviewer's key as the README makes it; the others in-process (faster)."""
        made = self.gatekit(
            "keys", "create", "--name", "reviewer-1", "--role", "reviewer", *self.options
        )
        assert made.returncode == 0, made.stderr
        self.keys[Role.REVIEWER] = made.stdout.strip()
        store = self.store()
        try:
            for role in (Role.AGENT, Role.ADMIN):
                self.keys[role] = create_key(store, name=f"{role.value}-1", role=role)[0]
        finally:
            store.close()

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}", "content-type": "application/json"}

    def store(self) -> Store:
        return open_store(Settings(data_dir=self.data_dir, database_url=self.database_url))

    def verify(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.gatekit("audit", "verify", *extra, *self.options)


@dataclass
class Replica:
    """One `gatekit serve` process."""

    name: str
    port: int
    deployment: Deployment
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.deployment.logs / f"{self.name}.log"

    def start(self) -> Replica:
        self.launch()
        self.wait_until_ready()
        return self

    def launch(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gatekit.cli",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--policy",
            str(self.deployment.policy),
            *self.deployment.options,
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.deployment.env(), stdout=log, stderr=subprocess.STDOUT
            )

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.process.returncode}):\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.name} was not ready within {START_TIMEOUT} s:\n{self.log_text()}")

    def stop(self) -> None:
        """A clean stop (SIGTERM, as an orchestrator sends): the final checkpoint."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                pytest.fail(f"{self.name} did not stop on SIGTERM:\n{self.log_text()}")

    def kill_9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


def _deployment(tmp_path: Path, database_url: str | None) -> Deployment:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    logs = tmp_path / "logs"
    logs.mkdir()
    deployment = Deployment(tmp_path / "data", database_url, policy, logs)
    deployment.create_keys()
    return deployment


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Replica, Replica]]:
    deployment = _deployment(tmp_path, postgres_url)
    a = Replica("A", _free_port(), deployment)
    b = Replica("B", _free_port(), deployment)
    try:
        for replica in (a, b):
            replica.launch()
        for replica in (a, b):
            replica.wait_until_ready()
        yield a, b
    finally:
        for replica in (a, b):
            replica.stop()


def _assert_all_chains_verify(deployment: Deployment, *writers: str) -> None:
    verified = deployment.verify("--strict")  # every record signed, every writer closed
    assert verified.returncode == 0, verified.stdout + verified.stderr
    store = deployment.store()
    try:
        chains = {head.writer_id for head in store.audit_heads()}
    finally:
        store.close()
    assert chains == set(writers)


@pytest.mark.postgres
def test_decide_on_a_approve_on_b_consume_exactly_once(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    deployment = a.deployment
    agent, reviewer = deployment.auth(Role.AGENT), deployment.auth(Role.REVIEWER)
    with a.client() as on_a, b.client() as on_b:
        bodies = [_body("pay_invoice", invoice=n) for n in range(8)]
        pending = [
            on_a.post("/v1/decisions", content=body, headers=agent).json() for body in bodies
        ]
        assert {d["status"] for d in pending} == {"pending_review"}

        listed = on_b.get("/v1/approvals", headers=reviewer).json()
        assert {v["decision"]["approval_id"] for v in listed} == {d["approval_id"] for d in pending}
        for decision in pending:
            path = f"/v1/approvals/{decision['approval_id']}/approve"
            approved = on_b.post(path, json={"comment": "ok"}, headers=reviewer)
            assert approved.json()["reviewer"] == "reviewer-1"

        # The first use happens on A; the same use on B is refused...
        first = pending[0]
        used = on_a.post(
            f"/v1/decisions/{first['decision_id']}/consume", content=bodies[0], headers=agent
        )
        assert used.status_code == 200 and used.json()["status"] == "approved"
        again = on_b.post(
            f"/v1/decisions/{first['decision_id']}/consume", content=bodies[0], headers=agent
        )
        assert (again.status_code, again.json()["code"]) == (409, "approval_consumed")

        # ...and when both replicas race for the same approval, exactly one wins.
        def race(item: tuple[dict[str, Any], str]) -> list[int]:
            decision, body = item
            path = f"/v1/decisions/{decision['decision_id']}/consume"
            with ThreadPoolExecutor(2) as pool:
                answers = pool.map(
                    lambda replica: httpx.post(
                        replica.url + path, content=body, headers=agent, timeout=10
                    ),
                    (a, b),
                )
                return sorted(answer.status_code for answer in answers)

        for statuses in map(race, zip(pending[1:], bodies[1:], strict=True)):
            assert statuses == [200, 409]
    for replica in (a, b):
        replica.stop()
    _assert_all_chains_verify(deployment, *_writers(a, b))


@pytest.mark.postgres
def test_a_budget_holds_across_replicas(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    agent = a.deployment.auth(Role.AGENT)
    attempts = 4 * BUDGET

    def spend(n: int) -> str:
        replica = (a, b)[n % 2]
        answer = httpx.post(
            replica.url + "/v1/decisions", content=_body("spend", n=n), headers=agent, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status"])

    with ThreadPoolExecutor(16) as pool:
        statuses = Counter(pool.map(spend, range(attempts)))
    assert statuses == {"allowed": BUDGET, "blocked": attempts - BUDGET}


@pytest.mark.postgres
def test_kill_9_loses_no_answered_decision_and_a_restart_keeps_the_reviews(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    deployment = a.deployment
    agent, reviewer = deployment.auth(Role.AGENT), deployment.auth(Role.REVIEWER)
    with a.client() as on_a:
        waiting = [
            on_a.post("/v1/decisions", content=_body("pay_invoice", n=n), headers=agent).json()
            for n in range(3)
        ]
    answered: list[dict[str, Any]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def stream(worker: int) -> None:
        with a.client() as client:
            for n in range(10_000):
                if stop.is_set():
                    return
                try:
                    answer = client.post(
                        "/v1/decisions", content=_body("read_ledger", w=worker, n=n), headers=agent
                    )
                except httpx.HTTPError:
                    return  # A is gone
                assert answer.status_code == 200, answer.text
                with lock:
                    answered.append(answer.json())

    streams = [threading.Thread(target=stream, args=(n,)) for n in range(4)]
    for thread in streams:
        thread.start()
    deadline = time.monotonic() + 60
    while len(answered) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    a.kill_9()  # mid-stream: requests are in flight
    stop.set()
    for thread in streams:
        thread.join(timeout=30)
    assert len(answered) >= 50

    store = deployment.store()
    try:
        for decision in answered:  # every answer A gave was committed, with its record
            stored = store.get(decision["decision_id"])
            assert stored is not None and stored.status.value == decision["status"]
            records = store.decision_records(decision["decision_id"])
            assert decision["record_id"] in {record.record_id for record in records}
    finally:
        store.close()

    with b.client() as on_b:  # B never noticed
        assert (
            on_b.post("/v1/decisions", content=_body("read_ledger"), headers=agent).status_code
            == 200
        )
    a.start()  # the same address: the same audit chain, continued
    with a.client() as on_a, b.client() as on_b:
        listed = on_a.get("/v1/approvals", headers=reviewer).json()
        assert {v["decision"]["decision_id"] for v in listed} == {d["decision_id"] for d in waiting}
        first = waiting[0]
        approved = on_a.post(
            f"/v1/approvals/{first['approval_id']}/approve", json={}, headers=reviewer
        )
        assert approved.json()["status"] == "approved"
        used = on_b.post(
            f"/v1/decisions/{first['decision_id']}/consume",
            content=_body("pay_invoice", n=0),
            headers=agent,
        )
        assert used.json()["status"] == "approved"
    for replica in (a, b):
        replica.stop()
    _assert_all_chains_verify(deployment, *_writers(a, b))


def test_workers_share_one_sqlite_file(tmp_path: Path) -> None:
    deployment = _deployment(tmp_path, None)
    server = Replica("sqlite-workers", _free_port(), deployment, workers=2)
    agent = deployment.auth(Role.AGENT)
    try:
        server.start()

        def decide(n: int) -> int:
            answer = httpx.post(
                server.url + "/v1/decisions",
                content=_body("read_ledger", n=n),
                headers=agent,
                timeout=30,
            )
            return answer.status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(decide, range(120))) == {200}
    finally:
        server.stop()
    store = deployment.store()
    try:
        decided = [r for r in store.audit_records() if r.kind == "decision"]
        writers = {r.writer_id for r in decided}
    finally:
        store.close()
    assert len(decided) == 120
    base = f"{socket.gethostname()}:{server.port}"
    assert writers <= {base, f"{base}/1"}  # one chain per worker process
    _assert_all_chains_verify(deployment, *writers)


def _writers(*replicas: Replica) -> list[str]:
    return [f"{socket.gethostname()}:{replica.port}" for replica in replicas]
