"""The audit log: hash-chained records, signed checkpoints, offline verification.

Every decision, review, consumption and outcome becomes a record in its
writer's chain, committed with the state change. ``verify`` needs only the
public keys; ``gatekit audit verify`` is its command-line form.
"""

from gatekit.audit._keys import KeyRing, Signer, load_public_keys
from gatekit.audit._records import AuditEvent, AuditRecord, ChainHead, Checkpoint
from gatekit.audit.log import AuditLog
from gatekit.audit.retention import prune
from gatekit.audit.verify import AuditSource, Problem, Report, verify

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditRecord",
    "AuditSource",
    "ChainHead",
    "Checkpoint",
    "KeyRing",
    "Problem",
    "Report",
    "Signer",
    "load_public_keys",
    "prune",
    "verify",
]
