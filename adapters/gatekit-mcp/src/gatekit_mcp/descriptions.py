"""What the upstream says about itself, through the injection shield.

Besides results, the model reads what a server says about itself: the
``instructions`` of its ``initialize`` answer, and the ``description`` and
``title`` texts of what it lists — tools, prompts (their arguments too),
resources and resource templates — at any depth (an input schema's property
descriptions included). Those texts go through the result shields' injection
patterns, in the configured ``shields.injection`` mode:

* ``warn``: logged, passed as they are;
* ``redact``: the phrases replaced with ``[REDACTED:prompt_injection]``;
* ``block``: withheld — the instructions are left out of the ``initialize``
  answer, a listed item whose texts hold an injection is left out of its list
  (every call is still gated: hiding is about what the model reads);
* ``off``: not looked at.

Only injection is looked for: a description names what a server offers, and
the secrets and personal data of a server's own texts are not the client's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gatekit_mcp._compat import Wire
from gatekit_mcp.config import ShieldMode
from gatekit_mcp.shields import ResultFinding, injections_in, redact_injections_in

__all__ = [
    "LISTED",
    "DescriptionVerdict",
    "shield_descriptions",
    "shield_instructions",
    "shield_listing",
]

logger = logging.getLogger("gatekit_mcp")

DESCRIBING = frozenset({"description", "title"})
"""Keys whose string values describe something to the model."""

LISTED = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}
"""Listing method -> the key of its items."""


@dataclass(frozen=True, slots=True)
class DescriptionVerdict:
    findings: list[ResultFinding]
    shown: Any  # what the model may read; None when withheld (block)

    def summary(self) -> str:
        return "; ".join(f.describe() for f in self.findings)


def _describing_texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}"
            if key in DESCRIBING and isinstance(item, str):
                yield child, item
            else:
                yield from _describing_texts(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _describing_texts(item, f"{path}[{index}]")


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: redact_injections_in(item)
            if key in DESCRIBING and isinstance(item, str)
            else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def shield_descriptions(value: Any, mode: ShieldMode, path: str) -> DescriptionVerdict:
    """The injection shield on ``value``: a text itself when it is a string, else
    its describing texts (``description``, ``title``) at any depth."""
    if mode is ShieldMode.OFF:
        return DescriptionVerdict([], value)
    texts = [(path, value)] if isinstance(value, str) else _describing_texts(value, path)
    findings = [
        ResultFinding("injection", name, where)
        for where, text in texts
        for name in injections_in(text)
    ]
    if not findings or mode is ShieldMode.WARN:
        return DescriptionVerdict(findings, value)
    if mode is ShieldMode.BLOCK:
        return DescriptionVerdict(findings, None)
    shown = redact_injections_in(value) if isinstance(value, str) else _redacted(value)
    return DescriptionVerdict(findings, shown)


def _handled(mode: ShieldMode) -> str:
    return {ShieldMode.BLOCK: "withheld", ShieldMode.REDACT: "redacted"}.get(mode, "passed")


def shield_instructions(initialized: Wire, mode: ShieldMode) -> Wire:
    """The ``initialize`` answer with its instructions as the shield leaves them."""
    instructions = initialized.get("instructions")
    if not isinstance(instructions, str):
        return initialized
    verdict = shield_descriptions(instructions, mode, "instructions")
    if not verdict.findings:
        return initialized
    logger.warning("gatekit: %s the upstream's instructions: %s", _handled(mode), verdict.summary())
    shown = {key: value for key, value in initialized.items() if key != "instructions"}
    if verdict.shown is not None:
        shown["instructions"] = verdict.shown
    return shown


def shield_listing(method: str, page: Wire, mode: ShieldMode) -> Wire:
    """A page of ``method``'s listing with its items as the shield leaves them."""
    key = LISTED[method]
    items = page.get(key)
    if mode is ShieldMode.OFF or not isinstance(items, list):
        return page
    shown: list[Any] = []
    for index, item in enumerate(items):
        verdict = shield_descriptions(item, mode, f"{key}[{index}]")
        if verdict.findings:
            name = item.get("name") if isinstance(item, dict) else None
            logger.warning(
                "gatekit: %s %s %r in %s: %s",
                _handled(mode),
                key[:-1],
                name,
                method,
                verdict.summary(),
            )
        if verdict.shown is not None:
            shown.append(verdict.shown)
    return {**page, key: shown}
