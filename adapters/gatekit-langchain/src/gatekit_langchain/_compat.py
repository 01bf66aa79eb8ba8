"""Which LangChain releases this adapter supports, checked before anything imports them.

The adapter leans on the tool, ToolNode and middleware interfaces of the 1.x
line; a 0.x or 2.x install would fail in confusing ways deep inside an agent
run, so it fails at import instead, naming the range to install.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import metadata

# distribution -> supported major version (pyproject.toml says the same: >=1.0,<2)
SUPPORTED_MAJOR = {"langchain-core": 1, "langchain": 1, "langgraph": 1}


def supported_range() -> str:
    return ", ".join(f"{name}>={major}.0,<{major + 1}" for name, major in SUPPORTED_MAJOR.items())


_VERSION = re.compile(
    r"(\d+)\.\d+(?:\.\d+)*"  # release
    r"(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?(?:\+[\w.]+)?"  # pre, post, dev, local
)


def _major(version: str) -> int | None:
    """The major number of a PEP 440 version; None when it cannot be read."""
    match = _VERSION.fullmatch(version.strip())
    return int(match.group(1)) if match else None


def check_versions(version_of: Callable[[str], str] = metadata.version) -> None:
    """Raise ImportError naming the supported range if a framework package is off it."""
    for name, major in SUPPORTED_MAJOR.items():
        try:
            installed = version_of(name)
        except metadata.PackageNotFoundError:
            raise ImportError(
                f"gatekit-langchain needs {name}, which is not installed "
                f"(supported: {supported_range()})"
            ) from None
        if _major(installed) != major:
            wanted = f"{name}>={major}.0,<{major + 1}"
            raise ImportError(
                f"gatekit-langchain supports {wanted}, but {name} {installed} is installed "
                f"(supported: {supported_range()}); install a supported version: "
                f"pip install '{wanted}'"
            )
