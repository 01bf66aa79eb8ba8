"""Every fenced ```python block in every README runs, as written, and exits 0.

Each block runs alone in a fresh interpreter, the way a reader would paste it into
a file: in an empty temporary directory, with its own gatekit data directory and
home directory. A block that needs mcp 2.x (``gatekit_mcp.middleware``) runs
under mcp 2.x when that environment exists (``scripts/test-mcp2.sh`` makes it);
under mcp 1.x it must fail the way the MCP README says it does.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = [
    ROOT / "README.md",
    *sorted((ROOT / "adapters").glob("*/README.md")),
]
MCP2_PYTHON = ROOT / ".venv-mcp2" / "bin" / "python"
TIMEOUT = 120  # seconds per block; importing crewai alone takes several

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    readme: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.readme.relative_to(ROOT)}:{self.line}"


def fenced_blocks(readme: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = readme.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        start, indent, body = index, len(opening["indent"]), []
        while index < len(lines):
            closing = FENCE.match(lines[index])
            index += 1
            if closing and closing["fence"] == opening["fence"] and not closing["info"].strip():
                break
            body.append(lines[index - 1][indent:])  # a fence inside a list item is indented
        else:
            raise AssertionError(f"{readme}:{start}: unclosed code fence")
        language = opening["info"].strip().split(" ")[0] if opening["info"].strip() else ""
        blocks.append(Block(readme, start, language, "\n".join(body) + "\n"))
    return blocks


ALL_BLOCKS = [block for readme in READMES for block in fenced_blocks(readme)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language == "python"]


def needs_mcp2(block: Block) -> bool:
    return "gatekit_mcp.middleware" in block.code


def run_block(
    block: Block, tmp_path: Path, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    script = tmp_path / f"{block.readme.parent.name}_line_{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GATEKIT_")}
    env = {
        **inherited,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "GATEKIT_DATA_DIR": str(tmp_path / ".gatekit"),
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
        "CREWAI_TESTING": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
    }
    return subprocess.run(
        [python, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


MAIN_BLOCKS = [block for block in PYTHON_BLOCKS if not needs_mcp2(block)]
MCP2_BLOCKS = [block for block in PYTHON_BLOCKS if needs_mcp2(block)]


def test_every_readme_has_python_snippets() -> None:
    for readme in READMES:
        assert any(b.readme == readme for b in PYTHON_BLOCKS), f"{readme}: no python snippet"


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.name for b in ALL_BLOCKS])
def test_every_fence_names_its_language(block: Block) -> None:
    # An untagged or mistagged fence would hide Python from the test below.
    assert block.language in {"python", "bash", "yaml", "json", "text"}, block.language


@pytest.mark.parametrize("block", MAIN_BLOCKS, ids=[b.name for b in MAIN_BLOCKS])
def test_python_snippet_runs(block: Block, tmp_path: Path) -> None:
    result = run_block(block, tmp_path)
    assert result.returncode == 0, f"{block.name}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


@pytest.mark.parametrize("block", MCP2_BLOCKS, ids=[b.name for b in MCP2_BLOCKS])
def test_mcp2_snippet_runs_under_mcp2(block: Block, tmp_path: Path) -> None:
    if not MCP2_PYTHON.exists():
        pytest.skip("no mcp 2.x environment: run scripts/test-mcp2.sh once to make .venv-mcp2")
    result = run_block(block, tmp_path, python=str(MCP2_PYTHON))
    assert result.returncode == 0, f"{block.name}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


@pytest.mark.parametrize("block", MCP2_BLOCKS, ids=[b.name for b in MCP2_BLOCKS])
def test_mcp2_snippet_under_mcp1_points_to_the_alternatives(block: Block, tmp_path: Path) -> None:
    if not version("mcp").startswith("1."):
        pytest.skip(f"mcp {version('mcp')} is installed here, not 1.x")
    result = run_block(block, tmp_path)
    assert result.returncode != 0
    assert "ImportError: gatekit_mcp.middleware needs mcp 2.x" in result.stderr
    assert "gatekit-mcp proxy" in result.stderr and "McpToolBoundary" in result.stderr


def test_quick_start_is_two_commands() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = [b for b in fenced_blocks(readme) if b.code.strip() and b.code in section]
    commands = [line.split("#", 1)[0].strip() for line in block.code.splitlines()]
    assert [c for c in commands if c] == ["bash scripts/demo.sh", "bash scripts/test.sh"]


def test_adapter_options_have_the_names_the_readme_gives() -> None:
    # README "Adapter options": one name for one idea, in every adapter's entry points.
    from gatekit_crewai import crewai_tool, install_hooks, secure_crewai_tool
    from gatekit_langchain import GatekitMiddleware, langchain_tool, secure_langchain_tool
    from gatekit_mcp import McpToolBoundary, ProxyConfig

    from gatekit.adapters import ToolCallGate

    def defaults(fn: Callable[..., object]) -> dict[str, object]:
        return {n: p.default for n, p in inspect.signature(fn).parameters.items()}

    shared = {"on_review", "review_timeout", "on_denied"}
    per_tool = {"tools", "default"}
    for entry in (ToolCallGate, GatekitMiddleware, McpToolBoundary):
        assert shared | per_tool <= defaults(entry).keys(), entry
    for entry in (secure_langchain_tool, langchain_tool, secure_crewai_tool, crewai_tool):
        assert shared <= defaults(entry).keys(), entry
    assert {"on_review", "review_timeout"} | per_tool <= defaults(install_hooks).keys()
    assert "on_denied" not in defaults(install_hooks)  # crewai hooks cannot raise
    assert {"on_review", "review_timeout"} | per_tool <= ProxyConfig.model_fields.keys()
    assert "on_denied" not in ProxyConfig.model_fields
    assert ProxyConfig().review_timeout == 30

    for entry in (ToolCallGate, secure_crewai_tool, crewai_tool, install_hooks, McpToolBoundary):
        assert defaults(entry)["on_review"] == "wait", entry
    for entry in (GatekitMiddleware, secure_langchain_tool, langchain_tool):
        assert defaults(entry)["on_review"] == "auto", entry
    for entry in (ToolCallGate, GatekitMiddleware, secure_langchain_tool, secure_crewai_tool):
        assert defaults(entry)["on_denied"] == "message", entry
    assert defaults(McpToolBoundary)["on_denied"] == "raise"

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Adapter options", 1)[1].split("\n### ", 1)[0]
    for option in sorted(shared | per_tool):
        assert f"`{option}`" in table, option
