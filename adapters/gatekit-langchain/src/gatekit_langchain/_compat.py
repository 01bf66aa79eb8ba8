"""Which LangChain releases this adapter supports, checked before anything imports them.

The adapter leans on the tool, ToolNode and middleware interfaces of the 1.x
line; a 0.x or 2.x install would fail in confusing ways deep inside an agent
run, so it fails at import instead, naming the range to install.
"""

from __future__ import annotations

from gatekit.adapters import require

# distribution -> supported range (pyproject.toml says the same)
SUPPORTED = {"langchain-core": ">=1.0,<2", "langchain": ">=1.0,<2", "langgraph": ">=1.0,<2"}


def check_versions() -> None:
    """Raise ImportError naming the supported range if a framework package is off it."""
    for distribution, spec in SUPPORTED.items():
        require(distribution, spec, adapter="gatekit-langchain")
