"""Backends answer decision requests: in-process (``LocalBackend``) or a shared
server (``HttpBackend``, imported on first use: httpx is not loaded with gatekit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatekit.backends._base import Backend, ReviewBackend
from gatekit.backends.local import LocalBackend

if TYPE_CHECKING:
    from gatekit._settings import Settings
    from gatekit.backends.http import HttpBackend

__all__ = ["Backend", "HttpBackend", "LocalBackend", "ReviewBackend", "backend_from_settings"]


def backend_from_settings(settings: Settings) -> Backend:
    """The backend ``GATEKIT_*`` describes: the server at ``server_url`` when it is set,
    else the embedded engine."""
    if settings.server_url is not None:
        from gatekit.backends.http import HttpBackend

        return HttpBackend.from_settings(settings)
    return LocalBackend.from_settings(settings)


def __getattr__(name: str) -> Any:
    if name == "HttpBackend":
        from gatekit.backends.http import HttpBackend

        return HttpBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
