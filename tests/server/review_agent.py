"""An agent process for the review page's browser tests: one gated tool call through
a real ``gatekit serve``, waiting in ``guard()`` for a human to decide.

    python review_agent.py URL OUTPUT RUN_ID MEMO      (the agent key in GATEKIT_API_KEY)

The tool appends a line to OUTPUT. Prints what happened and exits 0 when the tool
ran, 3 when a reviewer rejected it, 4 when no approval came in time.

The client talks to the server through ``_WireBackend``, the few /v1 calls that
``guard()`` makes, until ``gatekit.backends.http.HttpBackend`` is available here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import httpx

from gatekit import ApprovalExpired, ApprovalTimeout, Client, Rejected
from gatekit._models import Decision, DecisionRequest, Outcome
from gatekit.server.problems import DECISION_ERROR_CODES

_JSON = {"content-type": "application/json"}


class _WireBackend:
    """The /v1 decision API over httpx: decide, look again, consume, report."""

    def __init__(self, url: str, api_key: str) -> None:
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10.0
        )

    def decide(self, request: DecisionRequest) -> Decision:
        return self._decision(
            self._http.post("/v1/decisions", content=_body(request), headers=_JSON)
        )

    def preview(self, request: DecisionRequest) -> Decision:
        return self._decision(self._http.post("/v1/preview", content=_body(request), headers=_JSON))

    def get_decision(self, decision_id: str) -> Decision:
        return self._decision(self._http.get(f"/v1/decisions/{decision_id}"))

    def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
        path = f"/v1/decisions/{decision_id}/consume"
        return self._decision(self._http.post(path, content=_body(request), headers=_JSON))

    def report(self, decision_id: str, outcome: Outcome) -> None:
        path = f"/v1/decisions/{decision_id}/outcome"
        self._http.post(path, content=outcome.model_dump_json(), headers=_JSON).raise_for_status()

    def ready(self) -> bool:
        return self._http.get("/readyz").is_success

    def close(self) -> None:
        self._http.close()

    async def adecide(self, request: DecisionRequest) -> Decision:
        _sync_only()

    async def apreview(self, request: DecisionRequest) -> Decision:
        _sync_only()

    async def aget_decision(self, decision_id: str) -> Decision:
        _sync_only()

    async def aconsume(self, decision_id: str, request: DecisionRequest) -> Decision:
        _sync_only()

    async def areport(self, decision_id: str, outcome: Outcome) -> None:
        _sync_only()

    async def aready(self) -> bool:
        _sync_only()

    async def aclose(self) -> None:
        _sync_only()

    @staticmethod
    def _decision(answer: httpx.Response) -> Decision:
        if answer.status_code == 409:
            problem: dict[str, Any] = answer.json()
            refusal = {code: kind for kind, code in DECISION_ERROR_CODES.items()}
            kind = refusal.get(problem.get("code", ""))
            if kind is not None and "decision" in problem:
                raise kind(Decision.model_validate(problem["decision"]), problem.get("detail"))
        answer.raise_for_status()
        return Decision.model_validate_json(answer.content)


def _body(request: DecisionRequest) -> str:
    return request.model_dump_json()


def _sync_only() -> NoReturn:
    raise NotImplementedError("this test agent is synchronous")


def _pay(output: Path, run_id: str) -> None:
    """The tool: one line per run."""
    with output.open("a", encoding="utf-8") as tool_log:
        tool_log.write(f"paid {run_id}\n")


def main() -> int:
    url, output, run_id, memo = sys.argv[1:5]
    backend = _WireBackend(url, os.environ["GATEKIT_API_KEY"])
    with Client(backend, agent_id="billing-bot", approval_timeout=90.0) as client:
        try:
            with client.guard(
                tool="pay_invoice",
                operation_class="financial",
                risk_level="high",
                run_id=run_id,
                arguments={"amount": 120, "memo": memo, "card": "4111 1111 1111 1111"},
            ):
                _pay(Path(output), run_id)
        except Rejected:
            print("rejected", flush=True)
            return 3
        except (ApprovalExpired, ApprovalTimeout):
            print("no approval", flush=True)
            return 4
    print("ran", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
