"""What delegation costs per request: verification for chains of depth 1, 3 and 5,
next to the decision itself without delegation.

    uv run --no-sync python bench/bench_delegation.py [--calls 2000] [--store sqlite|memory|both]

For each depth, two cases: *cold* (every request brings a chain this engine has
never seen, so every hop's signature is verified) and *warm* (one chain for all
requests, as in a run: the chain comes from the verified-chain cache, and only
the proof's signature, the key reads and the time windows are checked).

Per store, three rows per case, measured one request of each in turn (so they
meet the same load and the same database size):
  decide, no delegation   Engine.decide of the same action without delegation
  verify   DelegationVerifier.verify alone (proof, replay look-up, chain, scope,
           the nonce written to the store), on a verifier over the engine's store
  decide   Engine.decide of the delegated request (verification, policy, the
           decision and its audit record committed); "adds" is its p50 minus
           the p50 without delegation
Proofs are signed before timing starts (that is the client's cost, printed
first with the parts of one verification).

The SQLite store is the embedded default (WAL, synchronous=NORMAL); in it the
nonce is its own small commit. The in-memory store shows the CPU cost alone.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import jwt

from gatekit import Action, DecisionRequest, LocalBackend, Settings
from gatekit.delegation import (
    PROOF_TYP,
    AgentKey,
    DelegationChain,
    DelegationScope,
    DelegationVerifier,
    action_body,
    register_key,
)
from gatekit.delegation._parsing import PROOF_CLAIMS, parse
from gatekit.delegation.keys import public_key_from_pem
from gatekit.engine import Engine
from gatekit.store import MemoryStore

DEPTHS = (1, 3, 5)
SCOPE = DelegationScope(
    max_risk="low", operations={"read"}, tools=("fs.read",), resources=("/data/reports",)
)
ACTION = Action(
    tool="fs.read",
    arguments={"path": "/data/reports/q3.txt"},
    risk_level="low",
    operation_class="read",
    agent_id="agent-0",  # replaced by the chain's delegatee
)


class Agents:
    """A root and five agents under it, registered in the engine's store."""

    def __init__(self, engine: Engine) -> None:
        self.root = AgentKey.generate("root")
        self.hops = [AgentKey.generate(f"agent-{i}") for i in range(max(DEPTHS))]
        register_key(engine.store, self.root, root=True)
        for key in self.hops:
            register_key(engine.store, key)

    def chain(self, depth: int) -> DelegationChain:
        """A fresh chain (new token ids: bytes never seen) of ``depth`` tokens."""
        first, now = self.hops[0], time.time()  # one issue time: no child outlives its parent
        chain = DelegationChain.issue_root(
            self.root,
            delegatee=first.identity,
            delegatee_key_id=first.key_id,
            scope=SCOPE,
            now=now,
        ).held_by(first)
        for holder in self.hops[1:depth]:
            chain = chain.delegate(
                delegatee=holder.identity, delegatee_key_id=holder.key_id, scope=SCOPE, now=now
            ).held_by(holder)
        return chain

    def request(self, chain: DelegationChain, depth: int) -> DecisionRequest:
        action = ACTION.model_copy(update={"agent_id": self.hops[depth - 1].identity})
        request = DecisionRequest.for_action(action)
        return request.model_copy(update={"delegation": chain.envelope(action)})


def _percentiles(samples: list[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99)] / 1000


def _timed(fn: Callable[[DecisionRequest], object], requests: list[DecisionRequest]) -> list[int]:
    clock, samples = time.perf_counter_ns, []
    for request in requests:
        start = clock()
        fn(request)
        samples.append(clock() - start)
    return samples


def _row(label: str, samples: list[int], baseline: float | None = None) -> float:
    p50, p99 = _percentiles(samples)
    extra = f"  adds p50 {p50 - baseline:7.1f} µs" if baseline is not None else ""
    print(f"  {label:<36} p50 {p50:8.1f} µs  p99 {p99:8.1f} µs{extra}")
    return p50


def _requests(agents: Agents, depth: int, calls: int, *, warm: bool) -> list[DecisionRequest]:
    """Signed now: a proof stays acceptable for 60 s, so sign just before timing."""
    if warm:
        chain = agents.chain(depth)
        return [agents.request(chain, depth) for _ in range(calls)]
    return [agents.request(agents.chain(depth), depth) for _ in range(calls)]


def _verify_only(engine: Engine) -> Callable[[DecisionRequest], object]:
    """A verifier of its own (and so a cache of its own) over the engine's store."""
    verifier = DelegationVerifier(engine.store)  # type: ignore[arg-type]

    def verify(request: DecisionRequest) -> object:
        assert request.delegation is not None
        return verifier.verify(request.delegation, (request.action,), time.time())

    return verify


def _interleaved(
    *cases: tuple[Callable[[DecisionRequest], object], list[DecisionRequest]],
) -> list[list[int]]:
    """One request of each case in turn, so every case meets the same machine load
    and the same database size (the rows compare like with like)."""
    clock = time.perf_counter_ns
    samples: list[list[int]] = [[] for _ in cases]
    for i in range(len(cases[0][1])):
        for (fn, requests), timings in zip(cases, samples, strict=True):
            start = clock()
            fn(requests[i])
            timings.append(clock() - start)
    return samples


def bench_store(label: str, engine: Engine, calls: int) -> None:
    print(f"{label}")
    agents = Agents(engine)
    verify = _verify_only(engine)
    warm_up = [DecisionRequest.for_action(ACTION) for _ in range(min(500, calls))]
    _timed(engine.decide, warm_up)  # the store, policy and audit
    _timed(engine.decide, _requests(agents, 1, min(200, calls), warm=False))
    for depth in DEPTHS:
        for warm in (False, True):
            case = f"depth {depth}, {'warm' if warm else 'cold'}"
            plain = [DecisionRequest.for_action(ACTION) for _ in range(calls)]
            base, decided, verified = _interleaved(
                (engine.decide, plain),
                (engine.decide, _requests(agents, depth, calls, warm=warm)),
                (verify, _requests(agents, depth, calls, warm=warm)),
            )
            baseline = _row(f"{case}: decide, no delegation", base)
            _row(f"{case}: verify", verified)
            _row(f"{case}: decide", decided, baseline)


def _each(fn: Callable[[], object], calls: int) -> list[int]:
    clock, samples = time.perf_counter_ns, []
    for _ in range(calls):
        start = clock()
        fn()
        samples.append(clock() - start)
    return samples


def bench_parts(calls: int) -> None:
    """The pieces of one request's verification, and the client's signing."""
    engine = Engine(None, MemoryStore())
    agents = Agents(engine)
    chain = agents.chain(3)
    request = agents.request(chain, 3)
    assert request.delegation is not None
    proof = request.delegation.proof
    jws = parse(proof, PROOF_TYP, PROOF_CLAIMS)
    record = engine.store.agent_key(jws.key_id)  # type: ignore[attr-defined]
    public_key = public_key_from_pem(record.public_key)
    print("the parts of one request (a proof under a depth-3 chain)")
    _row("client: sign a proof", _each(lambda: chain.envelope(request.action), calls))
    _row(
        "Ed25519 verification",
        _each(lambda: public_key.verify(jws.signature, jws.signing_input), calls),
    )
    _row("strict parse of the proof", _each(lambda: parse(proof, PROOF_TYP, PROOF_CLAIMS), calls))
    _row("canonical body of the action", _each(lambda: action_body(request.action), calls))
    _row(
        "PyJWS.decode_complete (unused)",
        _each(
            lambda: jwt.PyJWS().decode_complete(proof, key=public_key, algorithms=["EdDSA"]), calls
        ),
    )


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend.from_settings(Settings(data_dir=Path(tmp)))
        try:
            yield backend.engine
        finally:
            backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="requests per row")
    parser.add_argument("--store", choices=("sqlite", "memory", "both"), default="both")
    args = parser.parse_args()
    if args.calls < 10:
        sys.exit("--calls must be at least 10")

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (timings are wall-clock)")
    print(f"{args.calls} requests per row; chain cache on (default size)")
    bench_parts(args.calls)
    if args.store in ("memory", "both"):
        bench_store("in-memory store (CPU only)", Engine(None, MemoryStore()), args.calls)
    if args.store in ("sqlite", "both"):
        with sqlite_engine() as engine:
            bench_store("SQLite store (the embedded default)", engine, args.calls)


if __name__ == "__main__":
    main()
