"""Policy: turns an action into a verdict, with the rules and checks that decided it.

The engine (``gatekit.engine``) asks a ``Policy`` for an ``Evaluation`` and
applies the risk floor itself (``apply_risk_floor``), so no policy can
auto-allow a high or critical action.

``load_policy(path)`` compiles a policy file (YAML: rules with CEL
conditions, shields, limits, trust, approval memory) into a ``RulePolicy``;
``FilePolicy(path)`` does the same and reloads the file when it changes.
Their counters live in a ``PolicyState``: the engine's store, so they are
durable and shared by every process on it.
"""

from gatekit.policy._base import (
    Evaluation,
    Policy,
    apply_risk_floor,
    dry_run,
    observe_decision,
    observe_review,
    rechecking,
)
from gatekit.policy.compiled import Explanation, RulePolicy, RuleTrace, load_policy, parse_policy
from gatekit.policy.default import DefaultPolicy
from gatekit.policy.reload import FilePolicy
from gatekit.policy.state import Charge, MemoryPolicyState, PolicyState
from gatekit.policy.trust import TrustLevel

__all__ = [
    "Charge",
    "DefaultPolicy",
    "Evaluation",
    "Explanation",
    "FilePolicy",
    "MemoryPolicyState",
    "Policy",
    "PolicyState",
    "RulePolicy",
    "RuleTrace",
    "TrustLevel",
    "apply_risk_floor",
    "dry_run",
    "load_policy",
    "observe_decision",
    "observe_review",
    "parse_policy",
    "rechecking",
]
