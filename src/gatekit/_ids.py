"""Identifiers: random, and ordered by time, so new rows land at the end of an index."""

from __future__ import annotations

import os
import time

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """``<prefix>_<microseconds, hex><64 random bits, hex>``: unique and time-ordered."""
    return f"{prefix}_{time.time_ns() // 1000:014x}{os.urandom(8).hex()}"
