"""Reading policy files: YAML with line numbers, so every error names file, line and field.

Policy files may come from people other than the operator, so reading one is
bounded: anchors and aliases may not expand the document by more than
``MAX_ALIAS_NODES`` nodes (a "billion laughs" file of a few hundred bytes would
otherwise stand for billions), an alias may not refer to its own anchor, and
collections may not nest deeper than ``MAX_DEPTH``. Each is a ValidationError
naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml

from gatekit._exceptions import ValidationError
from gatekit.policy.schema import PolicySpec

__all__ = ["Located", "Source", "field_path", "read_policy_spec", "read_yaml"]

Location = tuple[str | int, ...]

# libyaml's parser when it is there: large policies load many times faster.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Generous for shared blocks (a 10-node ``match`` reused by thousands of rules), yet
# small enough that validating the expanded document stays well under a second.
MAX_ALIAS_NODES = 50_000
# Policies nest a handful of levels; the bound keeps every recursive walk (libyaml's
# composer, line indexing, construction, validation) far from the stack's limits.
MAX_DEPTH = 100


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document came from, and the line of every key and list item in it."""

    name: str
    lines: dict[Location, int] = field(default_factory=dict)

    def line_of(self, location: Iterable[str | int]) -> int | None:
        """The line of the deepest known part of ``location`` (its parent if it is missing)."""
        parts = tuple(location)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)

    def error(self, location: Iterable[str | int], message: str) -> ValidationError:
        parts = tuple(location)
        where = f"{self.name}:{self.line_of(parts) or 1}"
        name = field_path(parts)
        return ValidationError(f"{where}: {name or '(top level)'}: {message}", field=name or None)


@dataclass(frozen=True, slots=True)
class Located:
    """A parsed YAML document and its source (for error lines)."""

    data: Any
    source: Source


def field_path(location: Iterable[str | int]) -> str:
    """``("rules", 3, "match", "tools")`` → ``rules[3].match.tools``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_yaml(text: str, name: str) -> Located:
    """Parse one YAML document, keeping the line of each key; duplicate keys are errors."""
    try:
        _check_expansion(text, name)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise ValidationError(f"{name}:{line}: invalid YAML: {problem}", field=None) from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{name}:1: invalid YAML: {exc}", field=None) from None
    source = Source(name)
    if node is None:
        return Located({}, source)
    source.lines[()] = node.start_mark.line + 1
    _index_lines(node, (), source)
    loader = _Loader("")
    try:
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ValidationError(f"{name}:{line}: invalid YAML: {exc.problem}", field=None) from None
    finally:
        loader.dispose()
    return Located(data, source)


@dataclass(slots=True)
class _Open:
    """A collection being parsed: its anchor, and how many nodes it stands for so far."""

    anchor: str | None
    nodes: int = 1


class _ExpansionCheck:
    """Follows the parser's events, counting the nodes each anchor stands for."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sizes: dict[str, int] = {}  # anchor → nodes, its own aliases expanded
        self.open: list[_Open] = []
        self.added = 0  # nodes that aliases add beyond those written out

    def scalar(self, anchor: str | None) -> None:
        self._count(1)
        if anchor is not None:
            self.sizes[anchor] = 1

    def start(self, anchor: str | None, line: int) -> None:
        if len(self.open) >= MAX_DEPTH:
            raise _yaml_error(self.name, line, f"nested deeper than {MAX_DEPTH} levels")
        self.open.append(_Open(anchor))

    def end(self) -> None:
        done = self.open.pop()
        self._count(done.nodes)
        if done.anchor is not None:
            self.sizes[done.anchor] = done.nodes

    def alias(self, anchor: str, line: int) -> None:
        if any(frame.anchor == anchor for frame in self.open):
            raise _yaml_error(self.name, line, f"alias *{anchor} refers to its own anchor")
        nodes = self.sizes.get(anchor, 1)  # an unknown anchor: the composer reports it
        self.added += nodes
        if self.added > MAX_ALIAS_NODES:
            problem = f"aliases expand the document by more than {MAX_ALIAS_NODES} nodes"
            raise _yaml_error(self.name, line, problem)
        self._count(nodes)

    def _count(self, nodes: int) -> None:
        if self.open:
            self.open[-1].nodes += nodes


def _check_expansion(text: str, name: str) -> None:
    """Refuse alias bombs, recursive aliases and deep nesting before anything walks
    the document: one pass over the parser's events, linear in the text, no recursion."""
    check = _ExpansionCheck(name)
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.ScalarEvent):
            check.scalar(event.anchor)
        elif isinstance(event, yaml.CollectionStartEvent):
            check.start(event.anchor, _line(event))
        elif isinstance(event, yaml.CollectionEndEvent):
            check.end()
        elif isinstance(event, yaml.AliasEvent):
            check.alias(str(event.anchor), _line(event))


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 1


def _yaml_error(name: str, line: int, problem: str) -> ValidationError:
    return ValidationError(f"{name}:{line}: invalid YAML: {problem}", field=None)


def _index_lines(node: yaml.Node, location: Location, source: Source) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            here = (*location, key)
            if key in seen:
                source.lines[here] = key_node.start_mark.line + 1  # point at the second one
                raise source.error(here, f"duplicate key {key!r}") from None
            seen.add(key)
            source.lines[here] = key_node.start_mark.line + 1
            _index_lines(value_node, here, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            here = (*location, index)
            source.lines[here] = item.start_mark.line + 1
            _index_lines(item, here, source)


def read_policy_spec(text: str, name: str) -> tuple[PolicySpec, Source]:
    """Validate a policy document; the error names file, line and field of each problem."""
    located = read_yaml(text, name)
    if not isinstance(located.data, dict):
        raise located.source.error((), "a policy file must be a mapping (version, rules, …)")
    try:
        return PolicySpec.model_validate(located.data), located.source
    except pydantic.ValidationError as exc:
        raise _describe(exc, located.source) from None


def _describe(exc: pydantic.ValidationError, source: Source) -> ValidationError:
    problems = []
    first_field: str | None = None
    for error in exc.errors(include_url=False):
        location = _data_location(error["loc"], source)
        name = field_path(location) or "(top level)"
        first_field = first_field or name
        line = source.line_of(location) or 1
        problems.append(f"{source.name}:{line}: {name}: {_message(error)}")
    return ValidationError("invalid policy\n  " + "\n  ".join(problems), field=first_field)


def _data_location(loc: tuple[str | int, ...], source: Source) -> Location:
    """Drop pydantic's type tags (``list[str]``, ``function-before``…) from an error location."""
    kept: list[str | int] = []
    for part in loc:
        candidate = (*kept, part)
        if isinstance(part, int) or candidate in source.lines or not _is_type_tag(part):
            kept.append(part)
    return tuple(kept)


def _is_type_tag(part: str) -> bool:
    return any(marker in part for marker in ("[", "(", "-")) and part not in ("", "-")


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = re.sub(r" or instance of \w+", "", message)  # our class names mean nothing here
    if error["type"] == "string_type" and isinstance(error.get("input"), bool):
        message += " (YAML reads yes/no/on/off/true/false as booleans: quote it)"
    return message


def read_policy_file(path: Path) -> tuple[PolicySpec, Source]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read policy file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{path}: policy file is not UTF-8 text (byte {exc.start})", field="(file)"
        ) from None
    return read_policy_spec(text, str(path))
