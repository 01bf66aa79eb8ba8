from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gatekit import Action, DecisionRequest
from gatekit.policy import RulePolicy, parse_policy


class FakeClock:
    """Seconds since the epoch that only move when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def compile_policy(clock: FakeClock) -> Callable[[str], RulePolicy]:
    def build(text: str) -> RulePolicy:
        return parse_policy(text, "test.yaml", clock=clock)

    return build


@pytest.fixture
def request_for() -> Callable[..., DecisionRequest]:
    def build(**fields: Any) -> DecisionRequest:
        fields.setdefault("tool", "some_tool")
        return DecisionRequest.for_action(Action(**fields))

    return build
