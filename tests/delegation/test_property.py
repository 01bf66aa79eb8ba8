"""Whatever chain is built, an allowed action lies inside every hop's scope."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekit._models import Action, DataSensitivity, OperationClass, RiskLevel, Status
from gatekit.delegation import AgentKey, DelegationChain, DelegationScope, register_key
from gatekit.delegation.scope import scope_violation
from tests.delegation.world import World, segments

TOOLS = ["fs.read", "fs.write", "fs.*", "shell.run", "*", "f*"]
PATHS = ["/data", "/data/a", "/data/a/../b", "/etc", "/data/a/x"]


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:  # type: ignore[type-arg]
    return st.none() | strategy


scopes = st.builds(
    DelegationScope,
    max_risk=_maybe(st.sampled_from(list(RiskLevel))),
    operations=_maybe(st.frozensets(st.sampled_from(list(OperationClass)), max_size=3)),
    sensitivities=_maybe(st.frozensets(st.sampled_from(list(DataSensitivity)), max_size=3)),
    tools=_maybe(st.lists(st.sampled_from(TOOLS), max_size=2).map(tuple)),
    resources=_maybe(st.lists(st.sampled_from(PATHS), max_size=2).map(tuple)),
    budget=st.none(),
)
actions = st.builds(
    Action,
    tool=st.sampled_from(["fs.read", "fs.write", "shell.run"]),
    arguments=st.fixed_dictionaries({"path": st.sampled_from([*PATHS, "/data/a/../../etc"])}),
    risk_level=st.sampled_from(list(RiskLevel)),
    operation_class=st.sampled_from(list(OperationClass)),
    data_sensitivity=st.sampled_from(list(DataSensitivity)),
    agent_id=st.just("a2"),
)

WORLD = World()
AGENTS = [AgentKey.generate(f"a{i}") for i in range(3)]
for agent in AGENTS:
    register_key(WORLD.store, agent)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(hops=st.lists(scopes, min_size=1, max_size=3), action=actions)
def test_an_allowed_action_lies_inside_every_hops_scope(
    hops: list[DelegationScope], action: Action
) -> None:
    chain = DelegationChain.issue_root(
        WORLD.root, delegatee="a0", delegatee_key_id=AGENTS[0].key_id, scope=hops[0], now=WORLD.now
    ).held_by(AGENTS[0])
    for index, scope in enumerate(hops[1:], start=1):
        chain = chain.delegate(
            delegatee=f"a{index}",
            delegatee_key_id=AGENTS[index].key_id,
            scope=scope,
            ttl=3600 - index,
            now=WORLD.now,
        ).held_by(AGENTS[index])
    action = action.model_copy(update={"agent_id": f"a{len(hops) - 1}"})
    decision = WORLD.decide(WORLD.request(chain, action))
    if decision.status is Status.ALLOWED:
        for token in chain.tokens:
            scope = DelegationScope.from_claims(segments(token)[1]["scope"])
            assert scope_violation(scope, action) is None
    else:
        assert decision.checks[0].name == "delegation" or action.risk_level.never_auto_allowed
