"""Asking a gatekit server for a child token (``POST /v1/delegations``): the body
is serialised once, and the proof signs exactly those bytes, which are sent as is."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pydantic

from gatekit._exceptions import BackendError
from gatekit.delegation.errors import DelegationRefused
from gatekit.delegation.issuing import PROOF_HEADER, ChildRequest, IssuedChild
from gatekit.delegation.scope import DelegationScope
from gatekit.delegation.tokens import DELEGATE_TARGET, issue_proof

if TYPE_CHECKING:
    from gatekit.delegation.tokens import DelegationChain

__all__ = ["request_child"]


def request_child(
    chain: DelegationChain,
    server_url: str,
    *,
    api_key: str,
    delegatee: str,
    delegatee_key_id: str,
    scope: DelegationScope,
    ttl: float | None = None,
    http: httpx.Client | None = None,
    timeout: float = 10.0,
) -> DelegationChain:
    """``chain`` (held by its leaf's delegatee) with a child for ``delegatee``
    issued by the server at ``server_url``. A refusal raises ``DelegationRefused``
    with the server's code; no answer, or one that is not this chain plus one token,
    raises ``BackendError``. ``http`` is a client to send with, with its own timeouts
    (default: a new one, with ``timeout``)."""
    holder = chain.key
    if holder is None:
        raise ValueError("this chain has no key to sign with: use .held_by(key)")
    request = ChildRequest(
        chain=list(chain.tokens),
        delegatee=delegatee,
        delegatee_key_id=delegatee_key_id,
        scope=scope,
        ttl=ttl,
    )
    body = request.model_dump_json(exclude_none=True).encode()
    proof = issue_proof(
        holder, leaf_token=chain.leaf, body=body, audience=chain.audience, target=DELEGATE_TARGET
    )
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        PROOF_HEADER: proof,
    }
    url = f"{server_url.rstrip('/')}/v1/delegations"
    try:
        if http is None:
            with httpx.Client(timeout=timeout) as own:
                answer = own.post(url, content=body, headers=headers)
        else:
            answer = http.post(url, content=body, headers=headers)  # its own timeouts
    except httpx.HTTPError as exc:
        raise BackendError(f"could not ask {url} for a delegation: {exc}") from exc
    if answer.status_code != 201:
        raise _refusal(url, answer)
    try:
        issued = IssuedChild.model_validate_json(answer.content)
    except pydantic.ValidationError:
        raise BackendError(f"{url} answered something that is not a delegation") from None
    if tuple(issued.chain) != (*chain.tokens, issued.token):
        raise BackendError(f"{url} answered a chain that does not extend this one")
    return type(chain)(tuple(issued.chain), None, chain.audience)


def _refusal(url: str, answer: httpx.Response) -> Exception:
    try:
        problem = answer.json()
    except ValueError:
        problem = None
    code = problem.get("code") if isinstance(problem, dict) else None
    if isinstance(code, str) and code:
        return DelegationRefused(code)
    return BackendError(f"{url} answered {answer.status_code} without a problem code")
