"""Configuring HttpBackend: GATEKIT_SERVER_URL + GATEKIT_API_KEY make ``Client()`` ask
the server; invalid values raise ConfigurationError before anything runs."""

from __future__ import annotations

from email.utils import formatdate

import pytest
import tenacity

from gatekit import Client, ConfigurationError, HttpBackend, LocalBackend, Settings, Status
from gatekit.api_keys import Role
from gatekit.backends import backend_from_settings
from gatekit.backends._http_retry import Answer, RetryPolicy, retry_after
from tests.backends.live_server import LiveServer

KEY = "gk_0123456789abcdef_secret"


def test_client_asks_the_server_the_environment_names(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEKIT_SERVER_URL", live_server.url)
    monkeypatch.setenv("GATEKIT_API_KEY", live_server.keys[Role.AGENT])
    client = Client(agent_id="env-bot")
    assert isinstance(client.backend, HttpBackend)
    assert client.decide(tool="read_env", risk_level="low").status is Status.ALLOWED
    client.close()


def test_without_a_server_url_the_embedded_engine_is_used(tmp_path: object) -> None:
    backend = backend_from_settings(Settings())
    assert isinstance(backend, LocalBackend)
    backend.close()


def test_the_api_key_is_a_secret_in_settings() -> None:
    settings = Settings(server_url="http://gatekit.internal:8800", api_key=KEY)
    assert KEY not in repr(settings)
    assert KEY not in str(settings.model_dump())
    backend = HttpBackend.from_settings(settings)
    assert backend.url == "http://gatekit.internal:8800"
    assert KEY not in repr(backend)


@pytest.mark.parametrize(
    ("url", "key", "message"),
    [
        (None, KEY, "needs the server's URL"),
        ("ftp://gatekit.internal", KEY, "must be http"),
        ("http://", KEY, "must be http"),
        ("http://user:pw@gatekit.internal", KEY, "credentials"),
        ("http://gatekit.internal", None, "needs an API key"),
        ("http://gatekit.internal", "gk_abc\r\nx-evil: 1", "printable ASCII"),
    ],
)
def test_invalid_settings_are_refused_at_construction(
    url: str | None, key: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEKIT_SERVER_URL", raising=False)
    monkeypatch.delenv("GATEKIT_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=message):
        HttpBackend(url, api_key=key)


@pytest.mark.parametrize(
    "options", [{"timeout": 0}, {"retries": -1}, {"max_in_flight": 0}, {"max_retry_after": -1}]
)
def test_invalid_bounds_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        HttpBackend("http://gatekit.internal", api_key=KEY, **options)  # type: ignore[arg-type]


def test_an_invalid_server_url_in_the_environment_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEKIT_SERVER_URL", "gatekit.internal:8800")
    with pytest.raises(ConfigurationError, match="GATEKIT_SERVER_URL"):
        Client()


def test_a_closed_backend_answers_nothing() -> None:
    backend = HttpBackend("http://gatekit.internal", api_key=KEY)
    backend.close()
    assert backend.ready() is False


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({}) is None
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({"retry-after": "-3"}) is None
    date = formatdate(1_000_030.0, usegmt=True)
    assert retry_after({"retry-after": date}, now=1_000_000.0) == 30.0
    assert retry_after({"retry-after": date}, now=2_000_000.0) == 0.0


def _state(answer: Answer, attempt: int = 1) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_result(answer)
    return state


def test_the_wait_is_the_servers_retry_after_or_a_bounded_jitter() -> None:
    policy = RetryPolicy(backoff=0.1, max_backoff=1.0, max_retry_after=5.0)
    assert policy.wait(_state(Answer(429, {"retry-after": "2"}, b""))) == 2.0
    for attempt in range(1, 12):
        assert 0.0 <= policy.wait(_state(Answer(503, {}, b""), attempt)) <= 1.0
    too_long = _state(Answer(503, {"retry-after": "60"}, b""))
    assert policy.should_retry(replayable=True)(too_long) is False
