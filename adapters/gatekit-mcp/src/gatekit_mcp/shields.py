"""Result shields: look at what a tool returns before the model reads it.

Two kinds of finding:

* **secrets and personal data** — the core DLP detectors (``gatekit.dlp``):
  API keys, tokens, private keys, credentials in URLs, …; e-mail, IBAN, card
  numbers (category ``pii``).
* **instructions aimed at the model** (prompt injection in tool output) — a
  short, deliberately conservative list of phrases that have no business in
  tool output, plus invisible characters used to hide text:

  ===================  ==========================================================
  ``ignore_previous``  "ignore / disregard / forget (all) previous|prior|above
                       instructions|rules|prompts"
  ``role_override``    "you are now …", "from now on you (are|will|must) …"
  ``system_prompt``    "system prompt" together with reveal/print/show/ignore…,
                       or "new system prompt"
  ``role_marker``      a line starting "system:" / "assistant:", chat-template
                       tokens (``<|im_start|>``, ``[INST]``, ``<<SYS>>``)
  ``conceal``          "do not tell/inform the user", "without telling the user"
  ``hidden_text``      zero-width and Unicode tag characters
  ===================  ==========================================================

  These catch the common, lazy attacks; they are not a classifier and a
  determined attacker can phrase around them. Findings are recorded either way.

What happens to a finding is configured per kind (``ShieldsConfig``):
off, warn (record only), redact (replace it in the result), block (withhold the
result: the model gets an error result instead).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gatekit.dlp import mask_value, scan_value
from gatekit_mcp.config import ShieldMode, ShieldsConfig

__all__ = ["INJECTION_PATTERNS", "ResultFinding", "ShieldVerdict", "shield_result"]

_FLAGS = re.IGNORECASE | re.MULTILINE

INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, _FLAGS))
    for name, pattern in (
        (
            "ignore_previous",
            r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*"
            r"(?:previous|prior|above|earlier|preceding|system)\s+"
            r"(?:instructions?|rules|prompts?|messages|directions|guidelines)",
        ),
        ("role_override", r"\byou\s+are\s+now\b|\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must)\b"),
        (
            "system_prompt",
            r"\b(?:reveal|print|show|repeat|output|leak|ignore|new|updated)\s+"
            r"(?:(?:your|the|my)\s+)?system\s+prompt\b",
        ),
        ("role_marker", r"^\s*(?:system|assistant)\s*:|<\|im_start\|>|\[/?INST\]|<<SYS>>"),
        (
            "conceal",
            r"\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention\s+(?:this\s+)?to)\s+"
            r"the\s+user\b|\bwithout\s+telling\s+the\s+user\b",
        ),
        ("hidden_text", "[\u200b-\u200f\u2060-\u2064\ufeff\U000e0000-\U000e007f]+"),
    )
)
# One pass over each string finds out whether any pattern matches at all (the
# common answer is no); only then is each pattern tried to name the finding.
_ANY_INJECTION = re.compile("|".join(f"(?:{p.pattern})" for _, p in INJECTION_PATTERNS), _FLAGS)


@dataclass(frozen=True, slots=True)
class ResultFinding:
    kind: str  # "secret", "pii" or "injection"
    detector: str
    path: str

    def describe(self) -> str:
        return f"{self.kind}:{self.detector}@{self.path}"


@dataclass(frozen=True, slots=True)
class ShieldVerdict:
    findings: list[ResultFinding]
    result: dict[str, Any]  # the result to return (redacted where configured)
    blocked_by: list[ResultFinding]

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_by)

    def summary(self) -> str:
        return "; ".join(f.describe() for f in self.findings)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


# Content-block fields that are kept as they are: base64 payloads (images, audio,
# blobs) are neither scanned nor masked, and the block's shape stays valid.
_BINARY_FIELDS = frozenset({"data", "blob"})
_KEPT_FIELDS = _BINARY_FIELDS | {"type", "mimeType"}


def _readable(block: Any) -> Any:
    """A content block without its binary payloads (recursing into embedded resources)."""
    if not isinstance(block, dict):
        return block
    return {
        key: _readable(value) if key == "resource" else value
        for key, value in block.items()
        if key not in _BINARY_FIELDS
    }


def _scanned_parts(result: dict[str, Any]) -> dict[str, Any]:
    # What the model reads: the content blocks (minus base64 payloads) and the
    # structured content.
    parts: dict[str, Any] = {"content": [_readable(b) for b in result.get("content", [])]}
    if result.get("structuredContent") is not None:
        parts["structuredContent"] = result["structuredContent"]
    return parts


def _dlp_findings(parts: dict[str, Any]) -> list[ResultFinding]:
    # The core scan screens each string in one pass before running detectors.
    return [ResultFinding(f.category, f.detector, f.path) for f in scan_value(parts, "result")]


def _injections(parts: dict[str, Any]) -> list[ResultFinding]:
    return [
        ResultFinding("injection", name, path)
        for path, text in _strings(parts, "result")
        if _ANY_INJECTION.search(text)
        for name, pattern in INJECTION_PATTERNS
        if pattern.search(text)
    ]


def _redact_injections(value: Any) -> Any:
    if isinstance(value, str):
        for name, pattern in INJECTION_PATTERNS:
            replacement = "" if name == "hidden_text" else "[REDACTED:prompt_injection]"
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {key: _redact_injections(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_injections(item) for item in value]
    return value


def _redact(value: Any, mask: bool, injection: bool) -> Any:
    if mask:
        value = mask_value(value)
    return _redact_injections(value) if injection else value


def _redact_block(block: Any, mask: bool, injection: bool) -> Any:
    """Redact every field of a content block except its type and binary payloads."""
    if not isinstance(block, dict):
        return block
    kept = {key: value for key, value in block.items() if key in _KEPT_FIELDS}
    rest = {k: v for k, v in block.items() if k not in _KEPT_FIELDS and k != "resource"}
    redacted = _redact(rest, mask, injection)
    if "resource" in block:
        redacted["resource"] = _redact_block(block["resource"], mask, injection)
    return {**redacted, **kept}


def shield_result(result: dict[str, Any], config: ShieldsConfig) -> ShieldVerdict:
    """Scan a ``CallToolResult`` (wire form) and apply ``config`` to what is found."""
    modes = {"secret": config.secrets, "pii": config.pii, "injection": config.injection}
    parts = _scanned_parts(result)
    findings: list[ResultFinding] = []
    if config.secrets is not ShieldMode.OFF or config.pii is not ShieldMode.OFF:
        findings += [
            f
            for f in _dlp_findings(parts)
            if modes.get(f.kind, ShieldMode.OFF) is not ShieldMode.OFF
        ]
    if config.injection is not ShieldMode.OFF:
        findings += _injections(parts)
    if not findings:
        return ShieldVerdict([], result, [])
    blocked_by = [f for f in findings if modes[f.kind] is ShieldMode.BLOCK]
    redact = {f.kind for f in findings if modes[f.kind] is ShieldMode.REDACT}
    if blocked_by or not redact:
        return ShieldVerdict(findings, result, blocked_by)
    # Core DLP masking covers secrets and personal data together, so redacting
    # one kind also masks the other in the same strings (documented).
    mask = bool(redact & {"secret", "pii"})
    redacted = dict(result)
    injection = "injection" in redact
    redacted["content"] = [_redact_block(b, mask, injection) for b in result.get("content", [])]
    if result.get("structuredContent") is not None:
        redacted["structuredContent"] = _redact(result["structuredContent"], mask, injection)
    return ShieldVerdict(findings, redacted, [])
