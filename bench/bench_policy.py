"""decide() latency for an action that matches one rule among N unrelated ones.

    uv run --no-sync python bench/bench_policy.py [--iterations 20000] [--rounds 10]

Prints p50/p99 of ``RulePolicy.evaluate`` (the policy alone) and of
``LocalBackend.decide`` (end to end: evaluation, risk floor, Decision model,
store) for N = 10, 100, 1,000 and 10,000 rules, with and without a CEL
condition on the matching rule. The unrelated rules are a realistic mix:
exact tool names, tool globs, intents and operation-class rules. "index" is
the rule index alone without its memo (the cost for a tool never seen before).

The machine is shared, so all sizes are measured in interleaved rounds and a
p50 is the lowest round median (the round least disturbed by other
processes); p99 is over every call.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from gatekit import Action, DecisionRequest, LocalBackend
from gatekit.policy import RulePolicy, load_policy, parse_policy

SIZES = (10, 100, 1_000, 10_000)


def _unrelated_rule(i: int) -> str:
    kind = i % 10
    if kind < 6:
        match = f"{{tools: [tool_{i}]}}"
    elif kind < 8:
        match = f"{{tools: ['svc{i}.*']}}"
    elif kind == 8:
        match = f"{{intents: [intent_{i}]}}"
    else:
        match = f"{{tools: [tool_{i}], operations: [delete]}}"
    verdict = ("allow", "review", "block")[i % 3]
    return f"  - {{id: r{i}, match: {match}, verdict: {verdict}}}\n"


def build_policy(n: int, with_condition: bool) -> RulePolicy:
    when = ", when: 'args.amount < 1000'" if with_condition else ""
    matching = f"  - {{id: target, match: {{tools: [pay_invoice]}}{when}, verdict: allow}}\n"
    rules = [_unrelated_rule(i) for i in range(n - 1)]
    rules.insert(len(rules) // 2, matching)
    return parse_policy("default: review\nrules:\n" + "".join(rules))


class Sampler:
    """Collects per-call timings of one callable over several rounds."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.call = call
        self.medians: list[float] = []
        self.samples: list[int] = []

    def run(self, calls: int) -> None:
        call, clock = self.call, time.perf_counter_ns
        samples = []
        gc.disable()
        try:
            for _ in range(calls):
                start = clock()
                call()
                samples.append(clock() - start)
        finally:
            gc.enable()
        self.medians.append(statistics.median(samples))
        self.samples.extend(samples)

    @property
    def p50(self) -> float:
        return min(self.medians) / 1000

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[int(len(ordered) * 0.99)] / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=20_000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    action = Action(
        tool="pay_invoice",
        risk_level="low",
        operation_class="financial",
        agent_id="bench",
        arguments={"invoice": "INV-42", "amount": 250},
    )
    request = DecisionRequest.for_action(action)
    header = (
        f"{'rules':>7} {'CEL':>4} {'compile ms':>10} | {'evaluate p50':>12} {'p99':>7} | "
        f"{'decide p50':>10} {'p99':>7} | {'index p50':>9}  (µs)"
    )
    print(header)
    print("-" * len(header))
    per_round = max(args.iterations // args.rounds, 1)
    summary = []
    for with_condition in (False, True):
        rows = []
        for n in SIZES:
            started = time.perf_counter()
            policy = build_policy(n, with_condition)
            compile_ms = (time.perf_counter() - started) * 1000
            assert policy.evaluate(request).rule_ids == ("target",)
            backend = LocalBackend(policy=policy)
            index = policy._index
            samplers = (
                Sampler(lambda p=policy: p.evaluate(request)),
                Sampler(lambda b=backend: b.decide(request)),
                Sampler(lambda i=index: i.lookup(action)),
            )
            for sampler in samplers:
                sampler.run(min(2_000, per_round))  # warm up
                sampler.medians.clear()
                sampler.samples.clear()
            rows.append((n, compile_ms, samplers))
        gc.collect()
        for _ in range(args.rounds):
            for _, _, samplers in rows:
                for sampler in samplers:
                    sampler.run(per_round)
        for n, compile_ms, (evaluate, decide, index) in rows:
            print(
                f"{n:>7} {'yes' if with_condition else 'no':>4} {compile_ms:>10.0f} | "
                f"{evaluate.p50:>12.2f} {evaluate.p99:>7.2f} | "
                f"{decide.p50:>10.2f} {decide.p99:>7.2f} | {index.p50:>9.2f}"
            )
        first, last = rows[0][2], rows[-1][2]
        summary.append(
            f"CEL={'yes' if with_condition else 'no '}: p50 at N={SIZES[-1]:,} / N={SIZES[0]}: "
            f"evaluate {last[0].p50 / first[0].p50:.2f}x, decide {last[1].p50 / first[1].p50:.2f}x,"
            f" index {last[2].p50 / first[2].p50:.2f}x"
        )
    print()
    print("\n".join(summary))
    print()
    _bench_sample_policy(request, args.iterations)


def _bench_sample_policy(request: DecisionRequest, iterations: int) -> None:
    """The sample policy with every feature on: shields, limits, trust, approval memory."""
    path = Path(__file__).parents[1] / "examples" / "policies" / "payments-agent.yaml"
    policy = load_policy(path)
    # Budgets and rate limits would soon block a loop of identical calls; lift them.
    for limit in policy.limits:
        object.__setattr__(limit, "maximum", float("inf"))
    backend = LocalBackend(policy=policy)
    evaluate = Sampler(lambda: policy.evaluate(request))
    decide = Sampler(lambda: backend.decide(request))
    rounds = 10
    for _ in range(rounds):
        evaluate.run(max(iterations // rounds, 1))
        decide.run(max(iterations // rounds, 1))
    print(
        f"sample policy, every feature on ({path.name}): evaluate p50 {evaluate.p50:.2f} "
        f"p99 {evaluate.p99:.2f} µs | decide p50 {decide.p50:.2f} p99 {decide.p99:.2f} µs"
    )


if __name__ == "__main__":
    main()
