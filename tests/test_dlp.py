from __future__ import annotations

import pytest

from gatekit import Action, Blocked, Client, Status
from gatekit.dlp import mask_value, scan_value
from gatekit.testing import MockBackend

SECRETS = {
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_" + "a1B2" * 9,
    "api": "sk-proj-" + "Zx9" * 10,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "bearer": "Authorization: Bearer abcdef0123456789abcdef",
    "url": "postgres://admin:hunter2@db.internal:5432/app",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
}
PII = {
    "email": "jane.doe@example.com",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
}


@pytest.mark.parametrize("name", sorted(SECRETS | PII))
def test_each_detector_finds_and_masks(name: str) -> None:
    value = {"note": f"here: {(SECRETS | PII)[name]} end"}
    assert scan_value(value), name
    masked = mask_value(value)
    assert (SECRETS | PII)[name] not in masked["note"]
    assert "[REDACTED:" in masked["note"]


@pytest.mark.parametrize(
    "value",
    [
        "4111 1111 1111 1112",
        "DE00 3704 0044 0532 0130 00",
        "order 1234567890123",
        "not-an-email@",
        "sk-short",
    ],
)
def test_checksums_and_shapes_avoid_false_positives(value: str) -> None:
    assert scan_value({"v": value}) == []
    assert mask_value({"v": value}) == {"v": value}


def test_secret_field_names_are_masked_whatever_the_value() -> None:
    assert mask_value({"password": "x", "db": {"api_key": 12}, "ok": "y"}) == {
        "password": "[REDACTED:secret_field]",
        "db": {"api_key": "[REDACTED:secret_field]"},
        "ok": "y",
    }
    assert [f.path for f in scan_value({"files": [{"token": "t"}]})] == ["args.files[0].token"]


def test_mask_mode_sends_masked_values_but_binds_the_real_ones() -> None:
    backend = MockBackend()
    action = Action(tool="mail", arguments={"to": PII["email"], "body": "hi"})
    Client(backend).decide(action)
    (request,) = backend.requests
    assert request.action.arguments == {"to": "[REDACTED:email]", "body": "hi"}
    assert request.action_digest == action.digest()
    assert [(c.name, c.path, c.outcome.value) for c in request.client_checks] == [
        ("dlp.email", "args.to", "warn")
    ]


def test_metadata_is_masked_too() -> None:
    backend = MockBackend()
    Client(backend).decide(tool="t", metadata={"note": SECRETS["aws"]})
    assert backend.requests[0].action.metadata == {"note": "[REDACTED:aws_access_key]"}


def test_warn_mode_sends_values_and_records_findings() -> None:
    backend = MockBackend()
    Client(backend, dlp_mode="warn").decide(tool="mail", arguments={"to": PII["email"]})
    assert backend.requests[0].action.arguments == {"to": PII["email"]}
    assert backend.requests[0].client_checks[0].name == "dlp.email"


def test_block_mode_blocks_and_never_sends_the_value() -> None:
    backend = MockBackend()
    client = Client(backend, dlp_mode="block")
    calls: list[str] = []

    @client.intercept(capture_arguments=True)
    def upload(blob: str) -> None:
        calls.append(blob)

    with pytest.raises(Blocked, match=r"client checks: dlp\.aws_access_key \(secret\)"):
        upload(f"key={SECRETS['aws']}")
    assert calls == []
    assert SECRETS["aws"] not in backend.requests[0].model_dump_json()


def test_off_mode_sends_values_unchanged() -> None:
    backend = MockBackend()
    decision = Client(backend, dlp_mode="off").decide(tool="t", arguments={"to": PII["email"]})
    assert decision.status is Status.ALLOWED
    assert backend.requests[0].action.arguments == {"to": PII["email"]}
    assert backend.requests[0].client_checks == []


def test_intercept_sends_only_shapes_unless_asked() -> None:
    backend = MockBackend()
    client = Client(backend)

    @client.intercept
    def transfer(account: str, amount: float, tags: list[str]) -> None: ...

    @client.intercept(capture_arguments=True)
    def transfer_captured(account: str, amount: float) -> None: ...

    transfer("ACME-1", 10.5, ["a", "b"])
    transfer_captured("ACME-1", 10.5)
    shapes, captured = (r.action.arguments for r in backend.requests)
    assert shapes == {
        "account": {"type": "str", "count": 6},
        "amount": {"type": "float"},
        "tags": {"type": "list", "count": 2},
    }
    assert captured == {"account": "ACME-1", "amount": 10.5}
    # The approval still binds to the real values, not to the shapes.
    real = Action(
        tool="transfer", arguments={"account": "ACME-1", "amount": 10.5, "tags": ["a", "b"]}
    )
    assert backend.requests[0].action_digest == real.digest()


@pytest.mark.parametrize("key", ["max_tokens", "passenger_count", "bypass_cache", "compass"])
def test_ordinary_keys_are_not_secret_fields(key: str) -> None:
    assert scan_value({key: 2}) == []
    assert mask_value({key: 2}) == {key: 2}


@pytest.mark.parametrize("key", ["accessToken", "DB-Password", "apiKey", "client_secret"])
def test_secret_keys_match_on_words(key: str) -> None:
    assert mask_value({key: "v"}) == {key: "[REDACTED:secret_field]"}


def test_secrets_used_as_keys_are_masked_and_do_not_leak_through_paths() -> None:
    value = {"env": {SECRETS["aws"]: "1", "AKIAIOSFODNN7EXAMPLF": "2"}}
    masked = mask_value(value)
    assert masked == {"env": {"[REDACTED:aws_access_key]": "1", "[REDACTED:aws_access_key]#2": "2"}}
    assert all(SECRETS["aws"] not in f.path for f in scan_value(value))


def test_credentials_in_urls_are_masked_but_the_host_stays() -> None:
    assert mask_value("http://user:pw@169.254.169.254/latest") == (
        "http://[REDACTED:credentials_in_url]@169.254.169.254/latest"
    )


@pytest.mark.parametrize(
    "value", ["sk_live_" + "a" * 24, "Authorization: Basic dXNlcjpwYXNzd29yZA=="]
)
def test_more_secret_shapes(value: str) -> None:
    assert "[REDACTED:" in mask_value(value)
