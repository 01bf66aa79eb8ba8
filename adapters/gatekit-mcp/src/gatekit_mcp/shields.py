"""Result shields: look at what a tool returns before the model reads it.

Two kinds of finding:

* **secrets and personal data** — the core DLP detectors (``gatekit.dlp``):
  API keys, tokens, private keys, credentials in URLs, secret-named keys
  assigned in text (``db_password: …``), …; e-mail, IBAN, card numbers
  (category ``pii``).
* **instructions aimed at the model** (prompt injection in tool output) — a
  short, deliberately conservative list of phrases that have no business in
  tool output, plus invisible characters used to hide text:

  ===================  ==========================================================
  ``ignore_previous``  "ignore / disregard / forget (all) previous|prior|above
                       instructions|rules|prompts"
  ``role_override``    "you are now a/the/DAN/…", "from now on you are a …",
                       "from now on you will act|respond|obey…|must ignore…"
                       (not "from now on you will need to run make", nor
                       "… you will be billed monthly")
  ``system_prompt``    "system prompt" together with reveal/print/show/ignore…,
                       or "new system prompt"
  ``role_marker``      a line starting "System:" or "SYSTEM:" followed by text,
                       chat-template tokens (``<|im_start|>``, ``[INST]``,
                       ``<<SYS>>``). A lowercase ``system:`` (a YAML key) and
                       "assistant:" lines (chat logs) are ordinary data.
  ``conceal``          "do not tell/inform the user", "without telling the user"
  ``hidden_text``      zero-width and Unicode tag characters
  ===================  ==========================================================

  These catch the common, lazy attacks; they are not a classifier and a
  determined attacker can phrase around them. Findings are recorded either way.

Every pattern runs on RE2 (linear time in the length of the text), so an upstream
server cannot stall the proxy with a crafted result. Each distinct text of a
result is scanned once: a ``structuredContent`` string that repeats a content
block's text is not scanned again.

What happens to a finding is configured per kind (``ShieldsConfig``):
off, warn (record only), redact (replace it in the result), block (withhold the
result: the model gets an error result instead).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import re2

from gatekit.dlp import mask_value, scan_value
from gatekit_mcp.config import ShieldMode, ShieldsConfig

__all__ = [
    "INJECTION_PATTERNS",
    "ResultFinding",
    "ShieldVerdict",
    "injections_in",
    "redact_injections_in",
    "shield_result",
]

# Any run of whitespace, Unicode spaces included: a no-break space must not hide a phrase.
_S = r"[\s\p{Z}]+"

INJECTION_PATTERNS: tuple[tuple[str, re2._Regexp[str]], ...] = tuple(
    (name, re2.compile(pattern))
    for name, pattern in (
        (
            "ignore_previous",
            rf"(?i)\b(?:ignore|disregard|forget|override){_S}(?:(?:all|any|the|your|these|my){_S})*"
            rf"(?:previous|prior|above|earlier|preceding|system|former){_S}"
            r"(?:instructions?|rules|prompts?|messages|directions|guidelines|directives)",
        ),
        (
            # A role follows, not any words: "from now on, you will need to run make" is a note.
            "role_override",
            rf"(?i)\byou{_S}are{_S}now{_S}(?:a|an|the|my|dan|called|named|acting|playing|free|"
            rf"unrestricted|jailbroken|no{_S}longer|in{_S}\w+{_S}mode)\b"
            rf"|\bfrom{_S}now{_S}on,?{_S}you{_S}(?:are{_S}(?:a|an|the|my|dan|no{_S}longer|free|"
            rf"going{_S}to)|(?:will|must|shall){_S}(?:act|behave|pretend|roleplay|respond|reply|"
            r"answer|speak|obey|follow|ignore|disregard))\b",
        ),
        (
            "system_prompt",
            rf"(?i)\b(?:reveal|print|show|repeat|output|leak|ignore|new|updated){_S}"
            rf"(?:(?:your|the|my){_S})?system{_S}prompt\b",
        ),
        (
            # Capitalised like a chat transcript's turn; a lowercase "system:" is a YAML key.
            "role_marker",
            r"(?m)^[ \t]*S(?i:ystem)[ \t]*:[ \t]*\S|<\|im_start\|>|<\|system\|>|\[/?INST\]|<<SYS>>",
        ),
        (
            "conceal",
            rf"(?i)\b(?:do{_S}not|don't|never){_S}(?:tell|inform|mention{_S}(?:this{_S})?to)"
            rf"{_S}the{_S}user\b|\bwithout{_S}telling{_S}the{_S}user\b",
        ),
        ("hidden_text", r"[\x{200b}-\x{200f}\x{2060}-\x{2064}\x{feff}\x{e0000}-\x{e007f}]+"),
    )
)
# One pass over each string finds out whether any pattern matches at all (the
# common answer is no); only then is each pattern tried to name the finding.
_ANY_INJECTION = re2.compile("|".join(f"(?:{p.pattern})" for _, p in INJECTION_PATTERNS))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate is data, not an error


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # a redaction cut through a malformed sequence
        return data.decode("utf-8", "replace")


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


_LONGEST_KEY_IN_PATH = 128


def _child(path: str, key: Any) -> str:
    name = str(key)
    if len(name) > _LONGEST_KEY_IN_PATH:  # a path names the key, not all of it
        name = name[:_LONGEST_KEY_IN_PATH] + "…"
    return f"{path}.{name}"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON value, keys included: the model reads both."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            child = _child(path, key)
            yield child, str(key)
            yield from _strings(item, child)
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


# Stands in for a text already scanned elsewhere in the result: it has no findings
# of its own, yet a secret-named key holding it is still a secret field.
_ALREADY_SCANNED = " "


def _without_repeats(value: Any, seen: set[str]) -> Any:
    """``value`` with every string met before (in ``seen``, or earlier in ``value``)
    replaced by a stand-in, so that each distinct text is scanned once."""
    if isinstance(value, str):
        if value in seen:
            return _ALREADY_SCANNED
        seen.add(value)
        return value
    if isinstance(value, dict):
        return {key: _without_repeats(item, seen) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_repeats(item, seen) for item in value]
    return value


def _scanned_parts(result: dict[str, Any]) -> dict[str, Any]:
    # What the model reads: the content blocks (minus base64 payloads) and the
    # structured content, which often repeats a block's text (tools that return
    # structured output also send it as text).
    seen: set[str] = set()
    parts: dict[str, Any] = {
        "content": _without_repeats([_readable(b) for b in result.get("content", [])], seen)
    }
    if result.get("structuredContent") is not None:
        parts["structuredContent"] = _without_repeats(result["structuredContent"], seen)
    return parts


def _dlp_findings(parts: dict[str, Any]) -> list[ResultFinding]:
    # The core scan screens each string in one pass before running detectors.
    return [ResultFinding(f.category, f.detector, f.path) for f in scan_value(parts, "result")]


def _injections_in(text: str) -> Iterator[str]:
    data = _utf8(text)
    if _ANY_INJECTION.search(data) is None:
        return
    for name, pattern in INJECTION_PATTERNS:
        if pattern.search(data) is not None:
            yield name


def injections_in(text: str) -> list[str]:
    """The injection patterns (names) found in ``text``."""
    return list(_injections_in(text))


def _injections(parts: dict[str, Any]) -> list[ResultFinding]:
    return [
        ResultFinding("injection", name, path)
        for path, text in _strings(parts, "result")
        for name in _injections_in(text)
    ]


def _redact_injection_text(text: str) -> str:
    data = _utf8(text)
    if _ANY_INJECTION.search(data) is None:
        return text
    for name, pattern in INJECTION_PATTERNS:
        replacement = b"" if name == "hidden_text" else b"[REDACTED:prompt_injection]"
        data = pattern.sub(replacement, data)
    return _text(data)


def redact_injections_in(text: str) -> str:
    """``text`` with every injection pattern's match replaced (hidden text removed)."""
    return _redact_injection_text(text)


def _redact_injections(value: Any) -> Any:
    if isinstance(value, str):
        return _redact_injection_text(value)
    if isinstance(value, dict):
        redacted: dict[str, Any] = {}
        repeats: dict[str, int] = {}
        for key, item in value.items():
            name = _redact_injection_text(str(key))
            if name in redacted:  # two keys redacted alike must both survive
                repeats[name] = repeats.get(name, 1) + 1
                name = f"{name}#{repeats[name]}"
            redacted[name] = _redact_injections(item)
        return redacted
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


# -- the quick look -----------------------------------------------------------------
#
# Most results hold nothing to find, and most are small: for those, looking at
# each string on its own (a regex call, a path, a masked key per string) costs
# far more than the scan itself. So a small result is first looked at as one
# text, every string and key on a line of its own; only when that text could
# hold a finding are the strings scanned one by one (which names the path).
#
# One text finds whatever its strings do: a newline before and after each
# string is what the start and end of a text are to ``\b`` and ``(?m)^``, the
# detectors that check a match (card and IBAN checksums, secret assignments)
# never match across a newline, and those that can (``bearer`` + spaces) are a
# finding wherever they match. A match across two strings only costs the
# one-by-one scan. A key that names a secret (``password``) makes its value a
# finding whatever the value says: keys are looked up on their own (cached).

QUICK_LOOK_CHARS = 16_384
"""Results with at most this much text (strings and keys) get the quick look."""

_LONGEST_CACHED_KEY = 256


def _collect(value: Any, texts: list[str], keys: list[str]) -> None:
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            keys.append(str(key))
            _collect(item, texts, keys)
    elif isinstance(value, list):
        for item in value:
            _collect(item, texts, keys)


@functools.lru_cache(maxsize=1024)
def _plain_key_cached(key: str) -> bool:
    return not scan_value({key: "x"}, "key")


def _plain_key(key: str) -> bool:
    """Neither a key that names a secret nor a key with a finding in it."""
    if len(key) > _LONGEST_CACHED_KEY:  # an upstream must not fill the cache with these
        return not scan_value({key: "x"}, "key")
    return _plain_key_cached(key)


def _nothing_to_find(parts: dict[str, Any], config: ShieldsConfig) -> bool:
    """True when no shield can find anything in ``parts`` (a small result only;
    False means: scan string by string)."""
    texts: list[str] = []
    keys: list[str] = []
    _collect(parts, texts, keys)
    if sum(map(len, texts)) + sum(map(len, keys)) > QUICK_LOOK_CHARS:
        return False
    text = "\n".join(texts + keys)
    if config.injection is not ShieldMode.OFF and _ANY_INJECTION.search(_utf8(text)) is not None:
        return False
    if config.secrets is ShieldMode.OFF and config.pii is ShieldMode.OFF:
        return True
    return not scan_value(text, "result") and all(_plain_key(key) for key in keys)


def _modes(config: ShieldsConfig) -> dict[str, ShieldMode]:
    return {"secret": config.secrets, "pii": config.pii, "injection": config.injection}


def _findings(parts: dict[str, Any], config: ShieldsConfig) -> list[ResultFinding]:
    """Every finding in ``parts``, string by string, with its path."""
    modes = _modes(config)
    findings: list[ResultFinding] = []
    if config.secrets is not ShieldMode.OFF or config.pii is not ShieldMode.OFF:
        findings += [
            f
            for f in _dlp_findings(parts)
            if modes.get(f.kind, ShieldMode.OFF) is not ShieldMode.OFF
        ]
    if config.injection is not ShieldMode.OFF:
        findings += _injections(parts)
    return findings


def shield_result(result: dict[str, Any], config: ShieldsConfig) -> ShieldVerdict:
    """Scan a ``CallToolResult`` (wire form) and apply ``config`` to what is found."""
    modes = _modes(config)
    parts = _scanned_parts(result)
    if _nothing_to_find(parts, config):
        return ShieldVerdict([], result, [])
    findings = _findings(parts, config)
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
