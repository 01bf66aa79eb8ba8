"""Policy: turns an action into a verdict, with the rules and checks that decided it.

The engine asks a ``Policy`` for an ``Evaluation``; the risk floor and the
precedence of verdicts are applied by ``evaluate`` here, not by each policy, so
no policy can auto-allow a high or critical action.
"""

from gatekit.policy._base import Evaluation, Policy, apply_risk_floor
from gatekit.policy.default import DefaultPolicy

__all__ = ["DefaultPolicy", "Evaluation", "Policy", "apply_risk_floor"]
