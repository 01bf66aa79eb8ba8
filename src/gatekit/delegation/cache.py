"""Verified chains, remembered by their tokens' hashes, so a run pays the
signatures once.

What a cache hit skips is only what cannot change for the same bytes: parsing,
the header allow-list, every signature, the hash links, narrowing, depth and
cycles. What can change after a chain verified — a key revoked, a key past its
validity window, a token expired or not yet valid — the verifier checks again on
every hit, against the store and the clock (see ``DelegationVerifier``).

Bounded: least recently used chains go first, and an entry whose earliest expiry
has passed is dropped when it is next looked up, so an entry lives at most as long
as its shortest-lived token.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from gatekit.delegation._parsing import MAX_TOKEN_BYTES, Jws
from gatekit.delegation.scope import DelegationScope
from gatekit.delegation.tokens import token_hash

__all__ = ["ChainCache", "ChainKey", "VerifiedChain", "chain_key"]

ChainKey = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """A chain whose signatures, links and narrowing have been verified."""

    tokens: tuple[Jws, ...]  # root first
    scopes: tuple[DelegationScope, ...]  # one per token, parsed once
    root: str  # the root issuer's identity

    @property
    def leaf(self) -> Jws:
        return self.tokens[-1]

    @property
    def expires(self) -> int:
        return min(int(token.claims["exp"]) for token in self.tokens)


def chain_key(raw_tokens: Sequence[object]) -> ChainKey | None:
    """The SHA-256 of every token, root first; None for anything but ASCII strings
    of a token's size at most (strict parsing refuses those; they are never cached,
    nor hashed). Every hash, not only the leaf's: a hit must be these exact bytes."""
    hashes = []
    for raw in raw_tokens:
        if not isinstance(raw, str) or len(raw) > MAX_TOKEN_BYTES or not raw.isascii():
            return None
        hashes.append(token_hash(raw))
    return tuple(hashes)


class ChainCache:
    """A thread-safe LRU map from ``ChainKey`` to ``VerifiedChain``; ``size`` 0
    turns it off."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("the chain cache size must not be negative")
        self.size = size
        self._entries: OrderedDict[ChainKey, VerifiedChain] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: ChainKey | None, now: float) -> VerifiedChain | None:
        if key is None or not self.size:
            return None
        with self._lock:
            chain = self._entries.get(key)
            if chain is None:
                return None
            if now >= chain.expires:
                del self._entries[key]  # a cold verification will say `token_expired`
                return None
            self._entries.move_to_end(key)
            return chain

    def put(self, key: ChainKey | None, chain: VerifiedChain) -> None:
        if key is None or not self.size:
            return
        with self._lock:
            self._entries[key] = chain
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def drop(self, key: ChainKey | None) -> None:
        if key is None:
            return
        with self._lock:
            self._entries.pop(key, None)
