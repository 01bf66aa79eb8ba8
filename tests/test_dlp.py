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


# -- secrets assigned in free text: the key stays readable, the value is masked --------------

SECRETS_IN_TEXT = {
    "password=hunter2hunter2": "password=[REDACTED:secret_assignment]",
    "api_key=abcd1234efgh5678": "api_key=[REDACTED:secret_assignment]",
    "token: 9f8e7d6c5b4a3210": "token: [REDACTED:secret_assignment]",
    "db_password: hunter2hunter2": "db_password: [REDACTED:secret_assignment]",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": (
        "aws_secret_access_key = [REDACTED:secret_assignment]"
    ),
    "export GITHUB_TOKEN='s3cr3t-v4lue'": "export GITHUB_TOKEN='[REDACTED:secret_assignment]'",
    '{"password": "x", "user": "bob"}': (
        '{"password": "[REDACTED:secret_assignment]", "user": "bob"}'
    ),
    "GET /v1?api_key=abcd1234efgh&q=1": "GET /v1?api_key=[REDACTED:secret_assignment]&q=1",
    "--db-password=Sup3rS3cret!": "--db-password=[REDACTED:secret_assignment]",
    "Authorization: Bearer abc123def456": "Authorization: Bearer [REDACTED:secret_assignment]",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl": (
        "Authorization: Bearer [REDACTED:jwt]"
    ),
    "Authorization: Bearer abcdef0123456789abcdef": "Authorization: [REDACTED:bearer_token]",
    "postgresql://user:secret@db.example.com/app": (
        "postgresql://[REDACTED:credentials_in_url]@db.example.com/app"
    ),
    "redis://:s3cret@cache:6379/0": "redis://[REDACTED:credentials_in_url]@cache:6379/0",
    "mysql://app:p@ss@db/x": "mysql://[REDACTED:credentials_in_url]@db/x",
    "monkey: password=hunter2abc": "monkey: password=[REDACTED:secret_assignment]",
    "user= password=hunter2abc": "user= password=[REDACTED:secret_assignment]",
    "password= token=abc123def": "password= token=[REDACTED:secret_assignment]",
    "password=abc=def=1": "password=[REDACTED:secret_assignment]",
    "api_key=YWJjZGVmZ2hpams= next": "api_key=[REDACTED:secret_assignment] next",
    "token=" + "a1" * 100 + " next": "token=[REDACTED:secret_assignment] next",
    'secret: "' + "a b " * 50 + '" next': 'secret: "[REDACTED:secret_assignment]" next',
}


@pytest.mark.parametrize("text", sorted(SECRETS_IN_TEXT))
def test_secrets_in_free_text_are_masked_and_the_key_stays(text: str) -> None:
    value = {"note": f"config:\n{text}\nend"}
    assert mask_value(value) == {"note": f"config:\n{SECRETS_IN_TEXT[text]}\nend"}
    assert [f.category for f in scan_value(value)][:1] == ["secret"]


@pytest.mark.parametrize(
    "text",
    [
        "the password policy requires 12 characters",
        "set token count to 5",
        "Password: required",
        "token: 5",
        "max_tokens: 4096",
        "password: 12 characters at least",
        "password=${DB_PASSWORD}",
        "password: ********",
        "author: Jane Doe, keyword: lookup",
        "Passport: 12345678",
        "the passenger_count=3 and monkey=banana42",
        "api_key: null",
        "password: [REDACTED:secret_field]",
    ],
)
def test_ordinary_text_about_secrets_is_left_alone(text: str) -> None:
    assert scan_value({"v": text}) == []
    assert mask_value({"v": text}) == {"v": text}


def test_a_lone_surrogate_is_data_not_an_error() -> None:
    text = "x\ud800 password=hunter2hunter2 \udfff"
    assert mask_value(text) == "x\ud800 password=[REDACTED:secret_assignment] \udfff"
    assert [f.detector for f in scan_value(text)] == ["secret_assignment"]


def test_underscored_emails_are_found() -> None:
    assert mask_value("mail jane_doe@example.com") == "mail [REDACTED:email]"


def test_many_keys_masked_alike_stay_apart() -> None:
    keys = {f"user{i}@example.com": i for i in range(3)}
    assert mask_value(keys) == {
        "[REDACTED:email]": 0,
        "[REDACTED:email]#2": 1,
        "[REDACTED:email]#3": 2,
    }


MB = 1_000_000


def _run(unit: str, tail: str = "") -> str:
    return (unit * (MB // len(unit) + 1))[: MB - len(tail)] + tail


# Shapes that made the old e-mail and JWT patterns backtrack for seconds on tens
# of kilobytes, and inputs with a candidate every few characters. No timing is
# asserted: the timeout only catches a catastrophic blow-up.
ADVERSARIAL = {
    "a@a@": _run("a@"),
    "a.a.@": _run("a.", "@"),
    "a run then @": _run("a", "@a"),
    "eyJ-": _run("eyJ-"),
    "sk-": _run("sk-", "!"),
    "password=": _run("password="),
    "key: key:": _run("key: "),
    "BEGIN": _run("-----BEGIN A"),
    "spaces": _run(" "),
    "digits": _run("4 "),
    "dense e-mails": _run("a@b.cc "),
    "://a:": _run("://a:"),
    "surrogates": _run("\ud800a@"),
    "keys in a long value": "http://" + _run("k1:token"),
    "assignments in a value": "token=" + _run("a token="),
}


@pytest.mark.timeout(60)  # catches a catastrophic blow-up; speed is in bench/
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_a_megabyte_of_adversarial_text_is_scanned_and_masked_in_bounded_time(name: str) -> None:
    text = ADVERSARIAL[name]
    scan_value({"v": text, text[:100]: 1})
    masked = mask_value(text)
    assert isinstance(masked, str)


def test_shapes_are_not_scanned_a_secret_named_parameter_sends_only_its_shape() -> None:
    backend = MockBackend()
    client = Client(backend, dlp_mode="block")
    calls: list[str] = []

    @client.intercept
    def login(password: str) -> None:
        calls.append(password)

    login("hunter2-hunter2")  # its value never leaves the process: nothing to block
    assert calls == ["hunter2-hunter2"]
    (request,) = backend.requests
    assert request.action.arguments == {"password": {"type": "str", "count": 15}}
    assert request.client_checks == []


def test_metadata_of_a_decorated_function_is_still_masked() -> None:
    backend = MockBackend()
    client = Client(backend)

    @client.intercept(metadata={"note": SECRETS["aws"]})
    def upload(blob: str) -> None: ...

    upload("x")
    (request,) = backend.requests
    assert request.action.metadata == {"note": "[REDACTED:aws_access_key]"}
    assert [c.name for c in request.client_checks] == ["dlp.aws_access_key"]
