"""Adapters only translate: they use gatekit's public surface, never its insides."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADAPTER_SOURCES = sorted((ROOT / "adapters").glob("*/src/**/*.py"))


def _private_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [n for n in names if n.startswith("gatekit.") and "._" in f".{n[8:]}"]
    return found


def _backend_reads(tree: ast.AST) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "backend"
    ]


def test_there_are_adapter_sources_to_check() -> None:
    assert len(ADAPTER_SOURCES) > 10


@pytest.mark.parametrize("path", ADAPTER_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_adapter_module_imports_a_private_gatekit_module(path: Path) -> None:
    assert _private_imports(ast.parse(path.read_text(), str(path))) == []


@pytest.mark.parametrize("path", ADAPTER_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_adapter_module_touches_a_clients_backend(path: Path) -> None:
    assert _backend_reads(ast.parse(path.read_text(), str(path))) == []


def test_the_gateway_uses_only_public_client_methods() -> None:
    tree = ast.parse((ROOT / "src" / "gatekit" / "gateway.py").read_text())
    client_privates = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and isinstance(node.value, ast.Attribute)
        and node.value.attr in ("client", "aclient")
    ]
    assert client_privates == []


def test_the_walk_finds_what_it_looks_for() -> None:
    tree = ast.parse(
        "from gatekit._models import X\nimport gatekit._context\nfrom gatekit import adapters\n"
        "client.backend.policy\n"
    )
    assert _private_imports(tree) == ["gatekit._models", "gatekit._models.X", "gatekit._context"]
    assert _backend_reads(tree) == [4]
