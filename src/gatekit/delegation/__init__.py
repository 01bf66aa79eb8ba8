"""Delegation: an orchestrator lets a worker agent act for it, within a scope.

``DelegationChain`` holds signed tokens from a trusted root to the worker (each hop
can only narrow) and the worker's ``AgentKey``, which signs a proof for every
request. The engine verifies proof, replay, chain and scope before policy runs
(``DelegationVerifier``); a failure is ``blocked`` with a precise code in the
``delegation`` check and the audit, and a generic reason for the caller.
"""

from __future__ import annotations

from gatekit.delegation.errors import GENERIC_REASON, DelegationRefused
from gatekit.delegation.issuing import PROOF_HEADER, ChildRequest, DelegationIssuer, IssuedChild
from gatekit.delegation.keys import AgentKey, key_id_of
from gatekit.delegation.records import DelegationStore, KeyRecord, KeyStatus
from gatekit.delegation.registry import register_key, revoke_key
from gatekit.delegation.scope import DelegationScope
from gatekit.delegation.tokens import (
    DELEGATE_TARGET,
    DELEGATION_TYP,
    PROOF_TYP,
    DelegationChain,
    action_body,
    issue_delegation,
    issue_proof,
    token_hash,
)
from gatekit.delegation.verify import (
    ChildGrant,
    DelegationConfig,
    DelegationVerifier,
    VerifiedDelegation,
)

__all__ = [
    "DELEGATE_TARGET",
    "DELEGATION_TYP",
    "GENERIC_REASON",
    "PROOF_HEADER",
    "PROOF_TYP",
    "AgentKey",
    "ChildGrant",
    "ChildRequest",
    "DelegationChain",
    "DelegationConfig",
    "DelegationIssuer",
    "DelegationRefused",
    "DelegationScope",
    "DelegationStore",
    "DelegationVerifier",
    "IssuedChild",
    "KeyRecord",
    "KeyStatus",
    "VerifiedDelegation",
    "action_body",
    "issue_delegation",
    "issue_proof",
    "key_id_of",
    "register_key",
    "revoke_key",
    "token_hash",
]
