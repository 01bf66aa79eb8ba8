"""The decision engine: the one home of the decision lifecycle.

    evaluate (client checks → policy → risk floor)
      → idempotency (the same key returns the same decision)
      → approvals (open a review, expire it, record a human's verdict with
        separation of duties, consume it once after a re-check)
      → audit events, committed with every state change

``Engine`` does all of it over a ``Store`` and a ``Policy``; the in-process
``LocalBackend`` and the decision server are thin transports to it. ``preview``
is the same evaluation as a dry run: nothing recorded, no counter moved.
"""

from gatekit._identity import same_identity
from gatekit.engine.core import Engine
from gatekit.engine.evaluation import as_policy

__all__ = ["Engine", "as_policy", "same_identity"]
