"""Which crewai this adapter works with, checked before crewai is imported.

The adapter relies on crewai's structured tool failures (``ToolFailure``) and
its generic hook dispatcher (``HookAborted``); both are in crewai 1.15, the
version the tests run against, so that is the floor.
"""

from __future__ import annotations

from gatekit.adapters import require

__all__ = ["SUPPORTED_CREWAI", "require_supported_crewai"]

SUPPORTED_CREWAI = ">=1.15,<2"


def require_supported_crewai() -> str:
    """The installed crewai version; ImportError naming the supported range otherwise."""
    return require("crewai", SUPPORTED_CREWAI, adapter="gatekit-crewai")
