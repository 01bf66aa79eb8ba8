"""Policy: turns an action into a verdict, with the rules and checks that decided it.

The engine asks a ``Policy`` for an ``Evaluation``; the risk floor is applied
by the engine (``apply_risk_floor``), not by each policy, so no policy can
auto-allow a high or critical action.

``load_policy(path)`` compiles a policy file (YAML: rules with CEL
conditions, shields, limits, trust, approval memory) into a ``RulePolicy``;
``FilePolicy(path)`` does the same and reloads the file when it changes.
"""

from gatekit.policy._base import (
    Evaluation,
    Policy,
    apply_risk_floor,
    as_policy,
    observe_decision,
    observe_review,
    rechecking,
)
from gatekit.policy.default import DefaultPolicy
from gatekit.policy.engine import Explanation, RulePolicy, RuleTrace, load_policy, parse_policy
from gatekit.policy.reload import FilePolicy
from gatekit.policy.state import MemoryPolicyState, PolicyState
from gatekit.policy.trust import TrustLevel

__all__ = [
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
    "as_policy",
    "load_policy",
    "observe_decision",
    "observe_review",
    "parse_policy",
    "rechecking",
]
