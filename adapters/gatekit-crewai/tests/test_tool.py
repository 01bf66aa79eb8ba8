"""Unit tests of gated crewai tools (MockBackend), through every entry point crewai uses."""

from __future__ import annotations

import importlib.metadata
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from crewai.tools import BaseTool, tool
from crewai.tools.tool_failure import ToolFailure, ToolFailurePolicy
from crewai.utilities.agent_utils import convert_tools_to_openai_schema
from gatekit_crewai import (
    SUPPORTED_CREWAI,
    GatedTool,
    GatekitToolFailure,
    crewai_tool,
    secure_crewai_tool,
)
from gatekit_crewai._compat import require_supported_crewai
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

import gatekit
from gatekit import Blocked, Client, Rejected, Status
from gatekit.adapters import Refusal
from gatekit.testing import MockBackend

Entry = Callable[[BaseTool, dict[str, Any]], Awaitable[Any]]


async def via_run(t: BaseTool, kwargs: dict[str, Any]) -> Any:
    return t.run(**kwargs)  # crewai's native function-calling path


async def via_private_run(t: BaseTool, kwargs: dict[str, Any]) -> Any:
    return t._run(**kwargs)


async def via_structured_invoke(t: BaseTool, kwargs: dict[str, Any]) -> Any:
    return t.to_structured_tool().invoke(kwargs)  # crewai's ReAct path


async def via_structured_ainvoke(t: BaseTool, kwargs: dict[str, Any]) -> Any:
    return await t.to_structured_tool().ainvoke(kwargs)  # crewai's async ReAct path


async def via_arun(t: BaseTool, kwargs: dict[str, Any]) -> Any:
    return await t.arun(**kwargs)


async def via_private_arun(t: BaseTool, kwargs: dict[str, Any]) -> Any:
    return await t._arun(**kwargs)


ENTRIES = [
    via_run,
    via_private_run,
    via_structured_invoke,
    via_structured_ainvoke,
    via_arun,
    via_private_arun,
]
pytestmark = pytest.mark.anyio


class Weather(BaseModel):
    city: str
    sky: str


class Harness:
    """A crewai tool that records each time its body runs, and a client to gate it."""

    def __init__(self, verdict: str = "allow") -> None:
        self.ran: list[str] = []
        self.backend = MockBackend(verdicts={"lookup_weather": verdict})
        self.client = Client(self.backend, approval_timeout=5)

        @tool("lookup_weather", result_as_answer=True, max_usage_count=50)
        def lookup_weather(city: str, limit: float = 1.0) -> str:
            """Look up today's weather in a city."""
            self.ran.append(city)
            return f"sunny in {city}"

        self.tool = lookup_weather

    def gated(self, **options: Any) -> GatedTool:
        return secure_crewai_tool(self.tool, client=self.client, risk_level="low", **options)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_gated_tool_is_the_tool_crewai_sees() -> None:
    harness = Harness()
    inner = harness.tool
    inner.tool_failure_policy = ToolFailurePolicy.RAISE
    inner.current_usage_count = 3
    gated = harness.gated()

    assert isinstance(gated, BaseTool)
    for name in BaseTool.model_fields:
        if name != "cache_function":
            assert getattr(gated, name) == getattr(inner, name), name
    assert gated.formatted_description == inner.formatted_description
    assert convert_tools_to_openai_schema([gated])[0] == convert_tools_to_openai_schema([inner])[0]
    assert gated.to_structured_tool().args == inner.to_structured_tool().args
    assert gated.inner is inner


@pytest.mark.parametrize("entry", ENTRIES)
async def test_an_allowed_call_runs_once_with_its_arguments(entry: Entry) -> None:
    harness = Harness("allow")

    result = await entry(harness.gated(), {"city": "Paris"})

    assert result == "sunny in Paris"
    assert harness.ran == ["Paris"]
    [request] = harness.backend.requests
    assert request.action.tool == "lookup_weather"
    # run()/invoke() validate against the schema first, which fills in defaults
    assert request.action.arguments in ({"city": "Paris"}, {"city": "Paris", "limit": 1.0})


@pytest.mark.parametrize("entry", ENTRIES)
async def test_a_blocked_call_never_runs_and_the_agent_gets_the_reason(entry: Entry) -> None:
    harness = Harness("block")
    gated = harness.gated()

    result = await entry(gated, {"city": "Paris"})

    assert harness.ran == []
    assert isinstance(result, GatekitToolFailure)
    assert result.code == "gatekit.blocked"
    assert result.refusal.decision is not None
    assert result.refusal.decision.status is Status.BLOCKED
    assert gated.format_output_for_agent(result) == (
        "gatekit did not run tool 'lookup_weather': blocked by policy: mock verdict: block"
        " (code: gatekit.blocked)"
    )
    assert len(harness.backend.requests) == 1


class NotADecisionBackend(MockBackend):
    def decide(self, request: Any) -> Any:
        return {"status": "allowed"}


def crash_backend(harness: Harness) -> dict[str, Any]:
    harness.backend.fail_with = RuntimeError("database is down")
    return {"city": "Paris"}


def malformed_answer(harness: Harness) -> dict[str, Any]:
    harness.client = Client(NotADecisionBackend())
    return {"city": "Paris"}


def unencodable_argument(harness: Harness) -> dict[str, Any]:
    return {"city": "Paris", "limit": math.nan}  # JSON has no NaN: no Action, no decision


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("failure", [crash_backend, malformed_answer])
async def test_a_crashing_gate_never_runs_the_tool(
    failure: Callable[[Harness], dict[str, Any]], entry: Entry
) -> None:
    harness = Harness("allow")
    kwargs = failure(harness)

    result = await entry(harness.gated(), kwargs)

    assert harness.ran == []
    assert isinstance(result, GatekitToolFailure)
    assert result.code == "gatekit.no_decision"
    assert result.message.startswith("gatekit could not get a decision for tool 'lookup_weather'")
    assert "database is down" not in result.message


@pytest.mark.parametrize("entry", ENTRIES)
async def test_a_call_that_cannot_be_an_action_never_runs_the_tool(entry: Entry) -> None:
    harness = Harness("allow")

    result = await entry(harness.gated(), unencodable_argument(harness))

    assert harness.ran == []
    assert harness.backend.requests == []
    assert isinstance(result, GatekitToolFailure)
    assert result.code == "gatekit.invalid_call"
    assert "non-finite number" in result.message


@pytest.mark.parametrize("entry", [via_run, via_private_run, via_arun, via_private_arun])
async def test_on_denied_raise_raises_the_gatekit_error_instead(entry: Entry) -> None:
    harness = Harness("block")
    with pytest.raises(Blocked, match="mock verdict: block"):
        await entry(harness.gated(on_denied="raise"), {"city": "Paris"})

    harness.backend.fail_with = RuntimeError("database is down")
    with pytest.raises(gatekit.BackendError):
        await entry(harness.gated(on_denied="raise"), {"city": "Paris"})
    assert harness.ran == []


def review_in_background(backend: MockBackend, approve: bool) -> threading.Thread:
    def review() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for pending in backend.pending():
                assert pending.approval_id is not None
                if approve:
                    backend.approve(pending.approval_id, reviewer="bob")
                else:
                    backend.reject(pending.approval_id, reviewer="bob", comment="not today")
                return
            time.sleep(0.01)

    thread = threading.Thread(target=review, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("entry", [via_run, via_arun])
async def test_a_reviewed_call_runs_once_approved(entry: Entry) -> None:
    harness = Harness("review")
    reviewer = review_in_background(harness.backend, approve=True)

    result = await entry(harness.gated(), {"city": "Paris"})

    reviewer.join(timeout=10)
    assert result == "sunny in Paris"
    assert harness.ran == ["Paris"]
    [decision] = harness.backend.store.list()
    assert decision.status is Status.APPROVED
    assert decision.consumed_at is not None


@pytest.mark.parametrize("entry", [via_run, via_arun])
async def test_a_rejected_call_never_runs(entry: Entry) -> None:
    harness = Harness("review")
    reviewer = review_in_background(harness.backend, approve=False)

    result = await entry(harness.gated(), {"city": "Paris"})

    reviewer.join(timeout=10)
    assert harness.ran == []
    assert isinstance(result, GatekitToolFailure)
    assert result.code == "gatekit.rejected"
    assert "a human reviewer rejected it: rejected by bob: not today" in result.message
    review_in_background(harness.backend, approve=False)
    with pytest.raises(Rejected):
        harness.gated(on_denied="raise").run(city="Lyon")


async def test_a_review_without_waiting_or_without_a_reviewer_is_refused() -> None:
    harness = Harness("review")

    at_once = harness.gated(on_review="refuse").run(city="Paris")
    too_late = harness.gated(review_timeout=0.05).run(city="Paris")

    assert harness.ran == []
    assert isinstance(at_once, GatekitToolFailure)
    assert at_once.code == "gatekit.pending_review"
    assert "it waits for human review" in at_once.message
    approval_id = at_once.details["approval_id"]
    assert approval_id is not None
    assert approval_id in at_once.message
    assert isinstance(too_late, GatekitToolFailure)
    assert "no reviewer decided in time" in too_late.message
    assert too_late.details["approval_id"] == approval_id  # the same call, the same review


async def test_a_call_refused_for_review_runs_when_retried_after_the_approval() -> None:
    harness = Harness("review")
    gated = harness.gated(on_review="refuse")

    first = gated.run(city="Paris")
    assert isinstance(first, GatekitToolFailure)
    harness.backend.approve(first.details["approval_id"], reviewer="bob")
    retried = gated.run(city="Paris")
    other = gated.run(city="Lyon")  # another call: its own review

    assert retried == "sunny in Paris"
    assert harness.ran == ["Paris"]
    assert isinstance(other, GatekitToolFailure)
    assert other.code == "gatekit.pending_review"
    assert other.details["approval_id"] != first.details["approval_id"]


async def test_gated_results_are_never_cached() -> None:
    """crewai serves cached results before calling the tool, skipping the decision."""
    harness = Harness("block")
    refusal = harness.gated().run(city="Paris")
    harness.tool.cache_function = lambda args, result: True
    gated = harness.gated()
    assert gated.cache_function({"city": "Paris"}, refusal) is False
    assert gated.cache_function({"city": "Paris"}, "sunny in Paris") is False


async def test_usage_limits_still_apply_and_are_checked_before_asking() -> None:
    harness = Harness("allow")
    harness.tool.max_usage_count = 1
    gated = harness.gated()

    first = gated.run(city="Paris")
    second = gated.run(city="Lyon")

    assert first == "sunny in Paris"
    assert isinstance(second, ToolFailure)
    assert "usage limit" in second.message
    assert harness.ran == ["Paris"]
    assert len(harness.backend.requests) == 1
    assert gated.current_usage_count == 1


async def test_positional_arguments_are_named_after_the_schema() -> None:
    harness = Harness("allow")

    harness.gated()._run("Paris", 2.0)

    assert harness.backend.requests[0].action.arguments == {"city": "Paris", "limit": 2.0}


async def test_async_tools_are_awaited_on_the_async_path_and_run_on_the_sync_one() -> None:
    ran: list[str] = []

    @tool("fetch")
    async def fetch(url: str) -> str:
        """Fetch a page."""
        ran.append(url)
        return f"page {url}"

    client = Client(MockBackend())
    gated = secure_crewai_tool(fetch, client=client, risk_level="low")

    assert await gated.arun(url="a") == "page a"
    assert await gated.to_structured_tool().ainvoke({"url": "b"}) == "page b"
    assert ran == ["a", "b"]


def test_an_async_tool_runs_on_the_sync_path() -> None:
    ran: list[str] = []

    @tool("fetch")
    async def fetch(url: str) -> str:
        """Fetch a page."""
        ran.append(url)
        return f"page {url}"

    gated = secure_crewai_tool(fetch, client=Client(MockBackend()), risk_level="low")

    assert gated.run(url="c") == "page c"
    assert ran == ["c"]


class Forecast(BaseTool):
    name: str = "forecast"
    description: str = "Tomorrow's weather."
    result_schema: type[BaseModel] | None = Weather

    def _run(self, city: str) -> Weather:
        return Weather(city=city, sky="clear")

    def format_output_for_agent(self, raw_result: Any) -> str:
        return f"[{raw_result.sky} over {raw_result.city}]"


async def test_a_subclassed_tool_keeps_its_result_schema_and_formatting() -> None:
    gated = secure_crewai_tool(Forecast(), client=Client(MockBackend()), risk_level="low")

    raw = gated.run(city="Oslo")

    assert gated.result_schema is Weather
    assert raw == Weather(city="Oslo", sky="clear")
    assert gated.format_output_for_agent(raw) == "[clear over Oslo]"
    assert await gated.arun(city="Rome") == Weather(city="Rome", sky="clear")  # via a thread


async def test_action_fields_are_validated_when_wrapping() -> None:
    harness = Harness()
    with pytest.raises(gatekit.ValidationError, match="risk_level"):
        secure_crewai_tool(harness.tool, risk_level="extreme")
    with pytest.raises(gatekit.ValidationError, match="arguments"):
        secure_crewai_tool(harness.tool, arguments={"city": "x"})
    with pytest.raises(gatekit.ValidationError, match="idempotency_key"):
        secure_crewai_tool(harness.tool, idempotency_key="one key for every call")
    with pytest.raises(TypeError, match="BaseTool"):
        secure_crewai_tool(lambda city: city)  # type: ignore[arg-type]
    with pytest.raises(gatekit.ConfigurationError, match="Client"):
        secure_crewai_tool(harness.tool, client="http://gatekit")  # type: ignore[arg-type]
    with pytest.raises(gatekit.ConfigurationError, match="on_review"):
        secure_crewai_tool(harness.tool, on_review="later")  # type: ignore[arg-type]
    with pytest.raises(gatekit.ConfigurationError, match="on_denied"):
        secure_crewai_tool(harness.tool, on_denied="ignore")  # type: ignore[arg-type]
    with pytest.raises(gatekit.ConfigurationError, match="review_timeout"):
        secure_crewai_tool(harness.tool, review_timeout=0)


@pytest.mark.parametrize("entry", ENTRIES)
async def test_wrapping_a_gated_tool_gates_its_inner_tool_with_the_new_settings(
    entry: Entry,
) -> None:
    harness = Harness("allow")
    first = harness.gated(metadata={"wrapped": "first"})
    blocking = MockBackend(verdicts={"lookup_weather": "block"})

    again = secure_crewai_tool(first, client=Client(blocking), risk_level="medium")
    allowed = await entry(secure_crewai_tool(first, client=harness.client), {"city": "Paris"})
    refused = await entry(again, {"city": "Lyon"})

    assert again.inner is harness.tool
    assert allowed == "sunny in Paris"
    assert isinstance(refused, GatekitToolFailure)
    assert refused.code == "gatekit.blocked"
    assert harness.ran == ["Paris"]
    assert len(harness.backend.requests) == 1  # one decision per call, never two
    assert harness.backend.requests[0].action.metadata == {}  # the first settings are gone
    [request] = blocking.requests
    assert request.action.risk_level.value == "medium"
    with pytest.raises(gatekit.ValidationError, match="lost the tool"):
        secure_crewai_tool(GatedTool(name="orphan", description="No inner tool."))


async def test_action_fields_reach_the_engine() -> None:
    harness = Harness()
    gated = secure_crewai_tool(
        harness.tool,
        client=harness.client,
        tool="weather.lookup",
        risk_level="low",
        operation_class="read",
        data_sensitivity="public",
        systems_touched=["weather-api"],
        metadata={"team": "ops"},
    )

    gated.run(city="Paris")

    action = harness.backend.requests[0].action
    assert (action.tool, action.risk_level.value, action.operation_class.value) == (
        "weather.lookup",
        "low",
        "read",
    )
    assert action.systems_touched == ["weather-api"]
    assert action.metadata == {"team": "ops"}
    assert gated.name == "lookup_weather"  # what the agent sees does not change


async def test_a_gated_tool_without_its_gate_refuses() -> None:
    orphan = GatedTool(name="orphan", description="Rebuilt from a checkpoint.")

    for refused in (orphan.run(), await orphan.arun()):
        assert isinstance(refused, GatekitToolFailure)
        assert refused.code == "gatekit.no_gate"


async def test_crewai_tool_makes_gated_tools_from_functions() -> None:
    ran: list[str] = []
    backend = MockBackend(verdicts={"Send email": "block"})
    client = Client(backend)

    @crewai_tool("Send email", client=client, risk_level="low", result_as_answer=True)
    def send_email(to: str) -> str:
        """Send an email."""
        ran.append(to)
        return "sent"

    @crewai_tool(client=client, risk_level="low", max_usage_count=2)
    def read_inbox(folder: str) -> str:
        """Read the inbox."""
        ran.append(folder)
        return "3 mails"

    assert isinstance(send_email, GatedTool)
    assert isinstance(read_inbox, GatedTool)
    assert (send_email.name, send_email.result_as_answer) == ("Send email", True)
    assert (read_inbox.name, read_inbox.max_usage_count) == ("read_inbox", 2)
    assert send_email.description == "Send an email."
    assert isinstance(send_email.run(to="eve@example.com"), GatekitToolFailure)
    assert read_inbox.to_structured_tool().invoke({"folder": "inbox"}) == "3 mails"
    assert ran == ["inbox"]

    backend.fail_with = RuntimeError("down")
    assert isinstance(read_inbox.run(folder="spam"), GatekitToolFailure)
    assert ran == ["inbox"]


async def test_crewai_tool_stacks_on_crewai_tool_and_works_bare() -> None:
    @crewai_tool(client=Client(MockBackend()), risk_level="low")
    @tool("Search")
    def search(query: str) -> str:
        """Search the web."""
        return f"results for {query}"

    @crewai_tool
    def bare(x: int) -> int:
        """Double x."""
        return 2 * x

    assert search.name == "Search"
    assert search.run(query="q") == "results for q"
    assert isinstance(bare, GatedTool)
    assert bare.name == "bare"
    with pytest.raises(TypeError, match="@tool below"):
        crewai_tool(result_as_answer=True)(search.inner)  # type: ignore[arg-type]


def installed_crewai(monkeypatch: pytest.MonkeyPatch, version: str | None) -> None:
    """Pretend crewai ``version`` is installed (None: not installed), as the kit reads it."""
    real = importlib.metadata.version

    def version_of(distribution: str) -> str:
        if distribution != "crewai":
            return real(distribution)
        if version is None:
            raise importlib.metadata.PackageNotFoundError(distribution)
        return version

    monkeypatch.setattr(importlib.metadata, "version", version_of)


@pytest.mark.parametrize("version", ["1.15.0", "1.15.30", "1.99.1", "1.16.0rc1"])
def test_supported_crewai_versions_import(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    installed_crewai(monkeypatch, version)

    assert require_supported_crewai() == version
    assert SUPPORTED_CREWAI == ">=1.15,<2"


@pytest.mark.parametrize("version", ["0.86.0", "1.14.2", "2.0.0", "unknown"])
def test_unsupported_crewai_versions_fail_with_the_range(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    installed_crewai(monkeypatch, version)

    with pytest.raises(ImportError, match=r"gatekit-crewai supports crewai>=1\.15,<2"):
        require_supported_crewai()


def test_a_missing_crewai_fails_with_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    installed_crewai(monkeypatch, None)

    with pytest.raises(ImportError, match=r"needs crewai>=1\.15,<2, which is not installed"):
        require_supported_crewai()


async def test_a_gated_tool_serializes_and_never_comes_back_ungated() -> None:
    gated = Harness().gated()

    data = gated.model_dump(mode="json")  # as crewai does for checkpoints and events

    assert data["tool_type"] == "gatekit_crewai._tool.GatedTool"
    with pytest.raises(PydanticValidationError):
        TypeAdapter(BaseTool).validate_python(data)


async def test_a_failing_tool_body_propagates_and_its_outcome_is_recorded() -> None:
    backend = MockBackend()

    @tool("flaky")
    def flaky(x: int) -> int:
        """Fail."""
        raise ConnectionError("upstream down")

    gated = secure_crewai_tool(flaky, client=Client(backend), risk_level="low")

    with pytest.raises(ConnectionError):
        gated.run(x=1)

    [decision] = backend.store.list()
    outcome = backend.outcome(decision.decision_id)  # type: ignore[attr-defined]
    assert outcome is not None
    assert (outcome.status, outcome.detail) == ("error", "ConnectionError")


def test_refusal_messages_name_what_happened() -> None:
    backend = MockBackend()
    decision = backend.decide(
        gatekit.DecisionRequest.for_action(gatekit.Action(tool="send", risk_level="low"))
    )
    limited = decision.model_copy(update={"status": Status.BLOCKED, "retry_after": 30.0})

    failure = GatekitToolFailure.of(
        Refusal.of("send", gatekit.RateLimited(limited, "10 calls per minute"))
    )

    assert failure.message == (
        "gatekit did not run tool 'send': rate limited: 10 calls per minute (retry after 30 s)"
    )
    assert failure.retryable
    assert failure.code == "gatekit.rate_limited"
    assert failure.details["decision_id"] == decision.decision_id
    assert failure.details["retry_after"] == 30.0


def test_a_used_approval_is_not_used_twice() -> None:
    harness = Harness("review")
    reviewer = review_in_background(harness.backend, approve=True)

    first = harness.gated().run(city="Paris")
    reviewer.join(timeout=10)
    again = harness.gated(on_review="refuse").run(city="Paris")  # the very same call

    assert first == "sunny in Paris"
    assert harness.ran == ["Paris"]
    assert isinstance(again, GatekitToolFailure)
    assert again.code == "gatekit.pending_review"  # a new review, not the used approval
    used, pending = sorted(harness.backend.store.list(), key=lambda d: d.created_at)
    assert (used.status, pending.status) == (Status.APPROVED, Status.PENDING_REVIEW)
    assert used.consumed_at is not None
    assert again.details["approval_id"] == pending.approval_id != used.approval_id


def test_a_tool_reporting_a_failure_is_recorded_as_failed() -> None:
    backend = MockBackend()

    @tool("post")
    def post(text: str) -> ToolFailure:
        """Post a message."""
        return ToolFailure(message="channel not found", code="channel_not_found")

    result = secure_crewai_tool(post, client=Client(backend), risk_level="low").run(text="hi")

    assert isinstance(result, ToolFailure)
    assert not isinstance(result, GatekitToolFailure)
    [decision] = backend.store.list()
    outcome = backend.outcome(decision.decision_id)  # type: ignore[attr-defined]
    assert outcome is not None
    assert (outcome.status, outcome.detail) == ("error", "ToolFailure")
