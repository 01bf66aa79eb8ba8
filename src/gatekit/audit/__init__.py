"""The audit log: hash-chained records, signed checkpoints, offline verification.

Every decision, review, consumption and outcome becomes a record in its
writer's chain, committed with the state change. Signed checkpoints are also
written to a witness file outside the database, so a truncated or rolled-back
database is detected. ``verify`` needs only the trusted public keys (and the
witness); ``gatekit audit verify`` is its command-line form.
"""

from gatekit.audit._keys import KeyRing, Signer, load_public_keys
from gatekit.audit._records import AuditEvent, AuditRecord, ChainHead, Checkpoint
from gatekit.audit.log import AuditLog
from gatekit.audit.retention import prune
from gatekit.audit.verify import AuditSource, Problem, Report, verify
from gatekit.audit.witness import Witness, WitnessState, read_witness

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
    "Witness",
    "WitnessState",
    "load_public_keys",
    "prune",
    "read_witness",
    "verify",
]
