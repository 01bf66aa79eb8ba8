"""Data-loss prevention: find secrets and personal data in values, and mask them.

Argument values and metadata pass through here before they are stored or leave
the process. Detectors are plain data (a name, a pattern, where in a match the
finding is) so the policy engine's secret and PII shields can reuse them.

Every pattern runs on RE2 (``google-re2``): matching time grows linearly with the
text whatever the text holds, so a crafted value cannot stall the client the way
a backtracking engine can (``re`` took seconds on some 40 KB inputs). Texts are
matched as UTF-8 bytes; a lone surrogate (valid in JSON) is carried through as
data, never an error.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import re2
from stdnum import iban, luhn

__all__ = ["DETECTORS", "Detector", "DlpMode", "Finding", "mask_value", "scan_value"]

Span = tuple[int, int]


class DlpMode(StrEnum):
    MASK = "mask"  # replace findings before anything is stored or sent (default)
    WARN = "warn"  # send values unchanged, record the findings
    BLOCK = "block"  # mask, and block the action
    OFF = "off"


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # a cut through a malformed sequence: keep the rest
        return data.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of finding. ``pattern`` matches where every finding of this kind
    starts (the one-pass screen of all detectors is built from it); ``find`` gives
    the findings in a UTF-8 text as byte spans, the bytes to mask, in linear time."""

    name: str
    category: str  # "secret" or "pii"
    pattern: re2._Regexp[str]
    find: Callable[[bytes], Iterator[Span]]

    def spans(self, data: bytes) -> Iterator[Span]:
        return self.find(data)


def _detector(
    name: str,
    category: str,
    pattern: str,
    is_valid: Callable[[str], bool] | None = None,
    group: int = 0,
) -> Detector:
    """A detector whose finding is the match (or one group of it: the rest of the
    match is context that stays readable, like the host after a URL password),
    when ``is_valid`` (a checksum) accepts it."""
    compiled = re2.compile(pattern)

    def find(data: bytes) -> Iterator[Span]:
        for match in compiled.finditer(data):
            if is_valid is None or is_valid(_text(match.group(group))):
                yield match.span(group)

    return Detector(name, category, compiled, find)


def _digits_pass_luhn(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _is_iban(text: str) -> bool:
    return bool(iban.is_valid(text.replace(" ", "")))


# -- secrets assigned to a secret-named key in free text ------------------------------

# Keys whose values are secret whatever they look like, matched on whole words of
# the key ("access_token", "apiKey", "DB-Password"), not on substrings, so that
# "max_tokens" or "passenger_count" are not taken for secrets.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "authorization",
        "credential",
        "credentials",
        "cookie",
        "apikey",
        "privatekey",
        "secretkey",
        "accesskey",
    }
)
# Bounded by the caller: keys are short, and only short ones are cached.
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_LONGEST_CACHED_KEY = 256


def _is_secret_key(key: str) -> bool:
    if len(key) > _LONGEST_CACHED_KEY:
        return _key_words_are_secret(key)
    return _key_words_are_secret_cached(key)


def _key_words_are_secret(key: str) -> bool:
    words = [w.lower() for w in _WORD.findall(key)]
    pairs = (a + b for a, b in itertools.pairwise(words))
    return any(w in _SECRET_WORDS for w in words) or any(p in _SECRET_WORDS for p in pairs)


# The same argument names come back on every call.
_key_words_are_secret_cached = functools.lru_cache(maxsize=4096)(_key_words_are_secret)

# "db_password: hunter2", "api_key=…", '"token": "…"', "Authorization: Bearer …":
# a key holding a secret word, a separator, a value. The regex pre-selects; the
# key's whole words decide (_is_secret_key: "max_tokens" is no secret). A rejected
# candidate's search goes on right after its key, since what follows may be a key
# itself ("monkey: password=…"); so that this never reads a long stretch twice,
# the pattern takes at most the first 64 characters of a value, and the rest of
# an accepted key's value is read once, on from there.
_ASSIGNED_KEY = (
    r"(?:^|[^\w.-])"
    r"([\w.-]*?(?i:pass(?:word|wd|phrase)|pwd|secret|token|authorization|credential|cookie"
    r"|(?:api|private|access)[_.-]?key)[\w.-]*)"
    r"[\"']?[ \t]*(?::=|=>|[:=])[ \t]*"
)
# An auth scheme ("Bearer") stays readable; a quoted value may hold spaces; a bare
# one ends where a shell, a URL query or a list would end it ("=" padding kept).
# (A larger bound than 64 grows the compiled program past what the DFA keeps.)
_ASSIGNMENT = re2.compile(
    _ASSIGNED_KEY + r"(?:(?i:bearer|basic|token|digest)[ \t]+)?"
    r"(\"[^\"\r\n]{0,64}\"?|'[^'\r\n]{0,64}'?|[^\s\"'`,;&<>(){}\[\]=]{1,64}=*)"
)
# What ends a bare value, and what ends a quoted one.
_VALUE_END = frozenset(b" \t\r\n\v\f\"'`,;&<>(){}[]")
_NEXT_VALUE_END = re.compile(rb"[\s\"'`,;&<>(){}\[\]]")
_NEXT_QUOTE_END = {
    ord('"'): re.compile(rb'["\r\n]'),
    ord("'"): re.compile(rb"['\r\n]"),
}
# Values that name a secret instead of being one: templates, env references,
# already-masked text, empty words.
_PLACEHOLDER = re.compile(
    r"\$\{[^}]*\}|\{\{.*\}\}|<[^>]*>|%\([^)]*\)s|\$[A-Z_][A-Z0-9_]*|\[REDACTED:[a-z_]+\]"
    r"|(?i:null|none|nil|true|false|undefined|redacted|changeme)"
)
_LONGEST_PLACEHOLDER = 256


def _looks_like_a_secret(value: str, quoted: bool) -> bool:
    """Whether the value of a secret-named key in free text is a real secret.

    Prose ("Password: required", "token: 5") must stay readable, so a bare value
    needs 6+ characters and, when it is a plain word, 16+ letters. A quoted value
    (JSON, YAML) is taken as given, like a secret-named field of a dict.
    """
    masked_look = len(value) > 1 and len(set(value)) == 1  # "********", "xxxx"
    placeholder = len(value) <= _LONGEST_PLACEHOLDER and _PLACEHOLDER.fullmatch(value)
    if not value or masked_look or placeholder:
        return False
    if quoted:
        return True
    return len(value) >= 6 and not (value.isalpha() and len(value) < 16)


def _secret_assignments(data: bytes) -> Iterator[Span]:
    position = 0
    while (match := _ASSIGNMENT.search(data, position)) is not None:
        secret_key = _is_secret_key(_text(match.group(1)))
        span = _assigned_secret(data, *match.span(2)) if secret_key else None
        if span is None:
            position = match.end(1)
        else:
            yield span
            position = span[1]


def _assigned_secret(data: bytes, start: int, end: int) -> Span | None:
    """The secret in the value that starts at ``start`` (its first bytes end at
    ``end``), without quotes; None when the value is not a secret."""
    quote = data[start]
    if quote in _NEXT_QUOTE_END:
        if end - start < 2 or data[end - 1] != quote:  # longer: read on to the quote
            close = _NEXT_QUOTE_END[quote].search(data, end)
            if close is None or data[close.start()] != quote:
                return None
            end = close.end()
        start, end = start + 1, end - 1
    elif end < len(data) and data[end] not in _VALUE_END:
        # The value goes on: past 64 bytes, or past an "=" that was no padding.
        # "password= token=abc" is the next assignment, "password=a=b" a value.
        if data[end - 1] == ord("=") and _is_secret_key(_text(data[start:end]).rstrip("=")):
            return None
        stop = _NEXT_VALUE_END.search(data, end)
        end = stop.start() if stop is not None else len(data)
    value = _text(data[start:end])
    return (start, end) if _looks_like_a_secret(value, quote in _NEXT_QUOTE_END) else None


DETECTORS: tuple[Detector, ...] = (
    _detector(
        "private_key",
        "secret",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z ]*PRIVATE KEY-----|\z)",
    ),
    _detector("aws_access_key", "secret", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    _detector("github_token", "secret", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})"),
    _detector("api_key", "secret", r"\b(?:sk|rk|pk)[-_](?:live_|test_)?[A-Za-z0-9_-]{20,}"),
    _detector("slack_token", "secret", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    _detector("jwt", "secret", r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"),
    _detector("bearer_token", "secret", r"\b(?i:bearer)\s+[\w\-.~+/]{16,}=*"),
    _detector("basic_auth", "secret", r"\b(?i:basic)\s+[A-Za-z0-9+/]{12,}={0,2}"),
    # Only the user:password part: the host and path stay visible to policy. The
    # password runs to the last "@" before the path, as URL parsers read it.
    _detector("credentials_in_url", "secret", r"://([^\s:/@]*:[^\s/]*)@", group=1),
    # Last among the secrets: a value another detector names is masked by it.
    Detector("secret_assignment", "secret", re2.compile(_ASSIGNED_KEY), _secret_assignments),
    _detector("email", "pii", r"\b[\w.%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    _detector(
        "iban",
        "pii",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        _is_iban,
    ),
    _detector("card_number", "pii", r"\b\d(?:[ -]?\d){12,18}\b", _digits_pass_luhn),
)


def _screen(patterns: Iterable[str]) -> re2._Regexp[str]:
    """One pattern that matches where any of ``patterns`` does. Without capture
    groups: RE2 then needs no second pass over a long match to place them."""
    options = re2.Options()
    options.never_capture = True
    return re2.compile("|".join(f"(?:{p})" for p in patterns), options)


# One pass over a string tells whether any detector could match: most strings
# carry nothing, and then no detector runs on them.
_ANY_DETECTOR = _screen(d.pattern.pattern for d in DETECTORS)


@dataclass(frozen=True, slots=True)
class Finding:
    detector: str
    category: str
    path: str


def _is_secret_field(key: str | None, value: Any) -> bool:
    return key is not None and _is_secret_key(key) and value not in (None, "", False)


def _detected(text: str) -> Iterator[Detector]:
    data = _utf8(text)
    if _ANY_DETECTOR.search(data) is None:
        return
    for detector in DETECTORS:
        if next(detector.spans(data), None) is not None:
            yield detector


# Paths name keys; a longer key is cut there (the finding still says where it is).
_LONGEST_KEY_IN_PATH = 128


def _key_in_path(key: str) -> str:
    masked = _mask_text(key)
    if len(masked) <= _LONGEST_KEY_IN_PATH:
        return masked
    return masked[:_LONGEST_KEY_IN_PATH] + "…"


def scan_value(value: Any, path: str = "args", key: str | None = None) -> list[Finding]:
    """Every secret or personal datum found in a JSON value, with where it is."""
    if _is_secret_field(key, value):
        return [Finding("secret_field", "secret", path)]
    if isinstance(value, dict):
        findings: list[Finding] = []
        for k, v in value.items():
            # A path names the key masked: a secret used as a key must not leak through it.
            child = f"{path}.{_key_in_path(str(k))}"
            findings += _scan_text(str(k), child)
            findings += scan_value(v, child, str(k))
        return findings
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in scan_value(v, f"{path}[{i}]")]
    if isinstance(value, str):
        return _scan_text(value, path)
    return []


def _scan_text(text: str, path: str) -> list[Finding]:
    return [Finding(d.name, d.category, path) for d in _detected(text)]


def _replace(data: bytes, spans: Iterable[Span], marker: bytes) -> bytes:
    """``data`` with each span replaced by ``marker`` (a span inside the previous
    one is already covered)."""
    pieces: list[bytes] = []
    end = 0
    for start, stop in spans:
        if start < end:
            continue
        pieces += (data[end:start], marker)
        end = stop
    if not pieces:
        return data
    pieces.append(data[end:])
    return b"".join(pieces)


def _mask_text(text: str) -> str:
    data = _utf8(text)
    if _ANY_DETECTOR.search(data) is None:
        return text
    for detector in DETECTORS:
        data = _replace(data, list(detector.spans(data)), f"[REDACTED:{detector.name}]".encode())
    return _text(data)


def mask_value(value: Any, key: str | None = None) -> Any:
    """A copy of a JSON value with every finding replaced by ``[REDACTED:<kind>]``."""
    if _is_secret_field(key, value):
        return "[REDACTED:secret_field]"
    if isinstance(value, dict):
        masked: dict[str, Any] = {}
        repeats: dict[str, int] = {}
        for k, v in value.items():
            masked[_unique(_mask_text(str(k)), masked, repeats)] = mask_value(v, str(k))
        return masked
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, str):
        return _mask_text(value)
    return value


def _unique(key: str, taken: dict[str, Any], repeats: dict[str, int]) -> str:
    """Two keys masked alike must not overwrite each other: ``key#2``, ``key#3``, …
    (``repeats`` remembers the last number used, so many alike keys cost no search)."""
    candidate, n = key, repeats.get(key, 1)
    while candidate in taken:
        n += 1
        candidate = f"{key}#{n}"
    repeats[key] = n
    return candidate
