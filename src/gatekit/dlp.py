"""Data-loss prevention: find secrets and personal data in values, and mask them.

Argument values and metadata pass through here before they are stored or leave
the process. Detectors are plain data (a name, a pattern, an optional checksum)
so the policy engine's secret and PII shields can reuse them.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stdnum import iban, luhn

__all__ = ["DETECTORS", "Detector", "DlpMode", "Finding", "mask_value", "scan_value"]


class DlpMode(StrEnum):
    MASK = "mask"  # replace findings before anything is stored or sent (default)
    WARN = "warn"  # send values unchanged, record the findings
    BLOCK = "block"  # mask, and block the action
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Detector:
    name: str
    category: str  # "secret" or "pii"
    pattern: re.Pattern[str]
    is_valid: Callable[[str], bool] = lambda _match: True


def _digits_pass_luhn(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _is_iban(text: str) -> bool:
    return bool(iban.is_valid(text.replace(" ", "")))


DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        "secret",
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
        ),
    ),
    Detector("aws_access_key", "secret", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    Detector(
        "github_token", "secret", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})")
    ),
    Detector(
        "api_key", "secret", re.compile(r"\b(?:sk|rk|pk)[-_](?:live_|test_)?[A-Za-z0-9_-]{20,}")
    ),
    Detector("slack_token", "secret", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    Detector("jwt", "secret", re.compile(r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}")),
    Detector("bearer_token", "secret", re.compile(r"\b(?i:bearer)\s+[\w\-.~+/]{16,}=*")),
    Detector("basic_auth", "secret", re.compile(r"\b(?i:basic)\s+[A-Za-z0-9+/]{12,}={0,2}")),
    Detector(
        "credentials_in_url",
        "secret",
        # Only the user:password part: the host and path stay visible to policy.
        re.compile(r"(?<=://)[^\s:/@]+:[^\s@/]+(?=@)"),
    ),
    Detector("email", "pii", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    Detector(
        "iban",
        "pii",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        _is_iban,
    ),
    Detector("card_number", "pii", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), _digits_pass_luhn),
)

# One pass over a string tells whether any detector could match: most strings
# carry nothing, and then no detector runs on them.
_ANY_DETECTOR = re.compile("|".join(f"(?:{d.pattern.pattern})" for d in DETECTORS))

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
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


@functools.lru_cache(maxsize=4096)  # the same argument names come back on every call
def _is_secret_key(key: str) -> bool:
    words = [w.lower() for w in _WORD.findall(key)]
    pairs = (a + b for a, b in itertools.pairwise(words))
    return any(w in _SECRET_WORDS for w in words) or any(p in _SECRET_WORDS for p in pairs)


@dataclass(frozen=True, slots=True)
class Finding:
    detector: str
    category: str
    path: str


def _is_secret_field(key: str | None, value: Any) -> bool:
    return key is not None and _is_secret_key(key) and value not in (None, "", False)


def _matches(text: str) -> Iterator[Detector]:
    if not _ANY_DETECTOR.search(text):
        return
    for detector in DETECTORS:
        if any(detector.is_valid(m.group(0)) for m in detector.pattern.finditer(text)):
            yield detector


def scan_value(value: Any, path: str = "args", key: str | None = None) -> list[Finding]:
    """Every secret or personal datum found in a JSON value, with where it is."""
    if _is_secret_field(key, value):
        return [Finding("secret_field", "secret", path)]
    if isinstance(value, dict):
        findings: list[Finding] = []
        for k, v in value.items():
            # A path names the key masked: a secret used as a key must not leak through it.
            child = f"{path}.{_mask_text(str(k))}"
            findings += _scan_text(str(k), child)
            findings += scan_value(v, child, str(k))
        return findings
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in scan_value(v, f"{path}[{i}]")]
    if isinstance(value, str):
        return _scan_text(value, path)
    return []


def _scan_text(text: str, path: str) -> list[Finding]:
    return [Finding(d.name, d.category, path) for d in _matches(text)]


def _mask_text(text: str) -> str:
    if not _ANY_DETECTOR.search(text):
        return text
    for detector in DETECTORS:
        text = detector.pattern.sub(
            lambda m, d=detector: f"[REDACTED:{d.name}]" if d.is_valid(m.group(0)) else m.group(0),  # type: ignore[misc]
            text,
        )
    return text


def mask_value(value: Any, key: str | None = None) -> Any:
    """A copy of a JSON value with every finding replaced by ``[REDACTED:<kind>]``."""
    if _is_secret_field(key, value):
        return "[REDACTED:secret_field]"
    if isinstance(value, dict):
        masked: dict[str, Any] = {}
        for k, v in value.items():
            masked[_unique(_mask_text(str(k)), masked)] = mask_value(v, str(k))
        return masked
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, str):
        return _mask_text(value)
    return value


def _unique(key: str, taken: dict[str, Any]) -> str:
    """Two keys masked alike must not overwrite each other."""
    candidate, n = key, 1
    while candidate in taken:
        n += 1
        candidate = f"{key}#{n}"
    return candidate
