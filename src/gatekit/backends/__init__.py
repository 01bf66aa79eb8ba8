"""Backends answer decision requests: in-process (``LocalBackend``) or remote."""

from gatekit.backends._base import Backend, ReviewBackend
from gatekit.backends.local import LocalBackend

__all__ = ["Backend", "LocalBackend", "ReviewBackend"]
