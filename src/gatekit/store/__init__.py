"""Durable state behind the embedded engine: decisions, approvals, idempotency keys.

``Store`` is the one interface; ``MemoryStore`` keeps state in the process.
"""

from gatekit.store._base import Store, reuse_for_same_action
from gatekit.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store", "reuse_for_same_action"]
