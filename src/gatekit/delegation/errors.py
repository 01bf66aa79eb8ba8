"""Why a delegated request was refused, as a precise code for the audit."""

from __future__ import annotations

__all__ = ["GENERIC_REASON", "DelegationRefused"]

# What the caller is told, whatever the code: details would help an attacker probe.
GENERIC_REASON = "delegation could not be verified"


class DelegationRefused(Exception):
    """Verification failed; ``code`` (e.g. ``replay``, ``scope_widened.tools``) says
    where, and goes to the decision's ``delegation`` check and its audit record."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
