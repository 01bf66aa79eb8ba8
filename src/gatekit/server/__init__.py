"""The decision server: ``gatekit serve`` (extra ``gatekit-core[server]``).

``create_app(settings)`` is the FastAPI app; ``gatekit.api_keys`` its keys."""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the gatekit server needs its extra: pip install 'gatekit-core[server]'"
    ) from exc

from gatekit.server.app import create_app

__all__ = ["create_app"]
