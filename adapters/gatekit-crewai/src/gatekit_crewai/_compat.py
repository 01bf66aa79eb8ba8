"""Which crewai this adapter works with, checked before crewai is imported.

The adapter relies on crewai's structured tool failures (``ToolFailure``) and
its generic hook dispatcher (``HookAborted``); both are in crewai 1.15, the
version the tests run against, so that is the floor.
"""

from __future__ import annotations

import re
from importlib import metadata

SUPPORTED_CREWAI = ">=1.15,<2"
_MINIMUM = (1, 15)
_MAJOR = 1


def check_crewai_version(version: str) -> None:
    """Raise ImportError with the supported range unless ``version`` is in it."""
    match = re.match(r"(\d+)\.(\d+)", version)
    found = (int(match[1]), int(match[2])) if match else None
    if found is None or found < _MINIMUM or found[0] != _MAJOR:
        raise ImportError(
            f"gatekit-crewai supports crewai {SUPPORTED_CREWAI}, but crewai {version} is "
            f"installed; install a supported version: pip install 'crewai{SUPPORTED_CREWAI}'"
        )


def require_supported_crewai() -> None:
    try:
        version = metadata.version("crewai")
    except metadata.PackageNotFoundError:
        raise ImportError(
            f"gatekit-crewai needs crewai {SUPPORTED_CREWAI}: "
            f"pip install 'crewai{SUPPORTED_CREWAI}'"
        ) from None
    check_crewai_version(version)
