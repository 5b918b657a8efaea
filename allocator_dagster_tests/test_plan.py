"""The rebalance plan: exact cents, withdrawals before deposits per chain, targets reached."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from allocator_dagster.model import Holdings
from allocator_dagster.plan import Action, PlanError, PoolInfo, Reason, build_plan, empty_plan

D = Decimal


def _pools(n: int) -> dict[str, PoolInfo]:
    return {f"p{i}": PoolInfo(chain=("eth", "arb", "base")[i % 3], protocol=f"proto{i % 4}", gas_usd=1.005)
            for i in range(n)}  # fmt: skip


def _apply(holdings: Holdings, plan) -> dict[str, Decimal]:
    out = dict(holdings.held())
    for order in plan.orders:
        sign = 1 if order.action == Action.DEPOSIT else -1
        out[order.pool] = out.get(order.pool, D("0")) + sign * order.amount_usd
    return {p: a for p, a in out.items() if a != 0}


def test_orders_reach_the_allocation_to_the_cent_and_the_cash_flow_balances() -> None:
    rng = random.Random(11)
    pools = _pools(12)
    for _ in range(200):
        held = {p: D(rng.randint(0, 10**8)) / 100 for p in rng.sample(sorted(pools), 5)}
        holdings = Holdings(positions=held, idle_usd=D(rng.randint(0, 10**7)) / 100)
        total = holdings.total_usd
        chosen = rng.sample(sorted(pools), 4)
        cuts = sorted(D(rng.randint(0, int(total * 100))) / 100 for _ in range(3))
        amounts = [b - a for a, b in zip([D("0"), *cuts], [*cuts, total], strict=True)]
        allocation = dict(zip(chosen, amounts, strict=True))
        plan = build_plan(holdings, allocation, pools)
        assert _apply(holdings, plan) == {p: a for p, a in allocation.items() if a > 0}
        assert plan.idle_end_usd == D("0.00")
        assert plan.idle_start_usd + plan.withdrawn_usd - plan.deposited_usd == plan.idle_end_usd
        for order in plan.orders:
            assert order.amount_usd > 0 and order.amount_usd == order.amount_usd.quantize(D("0.01"))
        chains = [o.chain for o in plan.orders]
        assert chains == sorted(chains)
        for chain in set(chains):
            actions = [o.action for o in plan.orders if o.chain == chain]
            assert actions == sorted(actions, key=lambda a: a != Action.WITHDRAW)


def test_reasons_and_refusals() -> None:
    pools = _pools(3)
    holdings = Holdings(positions={"p0": D("100.00")}, idle_usd=D("5.00"))
    pools["p9"] = PoolInfo(chain="eth", protocol="proto9")  # same chain as p0
    forced = build_plan(holdings, {"p9": D("100.00"), "p1": D("5.00")}, pools, forced=True)
    assert [(o.chain, o.pool, o.action, o.reason) for o in forced.orders] == [
        ("arb", "p1", Action.DEPOSIT, Reason.REBALANCE),
        ("eth", "p0", Action.WITHDRAW, Reason.FORCED_EXIT),
        ("eth", "p9", Action.DEPOSIT, Reason.REBALANCE),
    ]
    assert forced.orders[1].gas_usd == D("1.00")  # ties to even, exact cents
    placing = build_plan(holdings, {"p0": D("105.00")}, pools, yield_only=True)
    assert [(o.action, o.amount_usd, o.reason) for o in placing.orders] == [
        (Action.DEPOSIT, D("5.00"), Reason.PLACING_YIELD)
    ]
    with pytest.raises(PlanError, match="places 105.01 USD but the holdings are 105.00"):
        build_plan(holdings, {"p1": D("105.01")}, pools)
    with pytest.raises(PlanError, match="pool zz has no chain"):
        build_plan(holdings, {"zz": D("1.00")}, pools)
    held = empty_plan(holdings, "hold: the gain does not pay the costs")
    assert held.orders == () and held.idle_end_usd == held.idle_start_usd == D("5.00")


def test_payouts_leave_last_from_the_idle_cash_and_the_identities_are_proven() -> None:
    from allocator_dagster.model import IDLE
    from allocator_dagster.payouts import payout_of
    from allocator_dagster.plan import plan_violations
    from allocator_dagster.profit_split.split import SEED_SPLIT

    pools = _pools(3)
    holdings = Holdings(positions={"p0": D("100.00")}, idle_usd=D("5.00"))
    allocation = {"p1": D("60.00"), "p2": D("45.00")}
    payout = payout_of(D("10.00"), SEED_SPLIT, "seed")
    plan = build_plan(holdings, allocation, pools, payout=payout)
    assert [(o.pool, o.reason, o.recipient, o.amount_usd) for o in plan.payouts] == [
        (IDLE, Reason.PAYOUT, "dao", D("1.50")),
        (IDLE, Reason.PAYOUT, "lucky", D("0.30")),
        (IDLE, Reason.PAYOUT, "creator", D("0.20")),
    ]
    assert plan.orders[-3:] == plan.payouts and plan.paid_out_usd == D("2.00")
    assert _apply(holdings, build_plan(holdings, allocation, pools)) == allocation
    assert plan_violations(plan, holdings, allocation, payout) == []
    # a plan that misses a pool's target, pays the wrong amount, or deposits before withdrawing
    from dataclasses import replace

    short = replace(plan, orders=plan.orders[1:])
    assert any(
        "not the allocation" in v for v in plan_violations(short, holdings, allocation, payout)
    )
    assert any(
        "not what the profit split pays" in v for v in plan_violations(plan, holdings, allocation)
    )
    same_chain = {p: PoolInfo("eth", "x") for p in pools}
    one_chain = build_plan(holdings, allocation, same_chain, payout=payout)
    bad = replace(
        one_chain, orders=(one_chain.orders[1], one_chain.orders[0], *one_chain.orders[2:])
    )
    assert any(
        "deposit comes before a withdrawal" in v
        for v in plan_violations(bad, holdings, allocation, payout)
    )
    late = replace(plan, orders=(plan.orders[-1], *plan.orders[:-1]))
    assert "the payouts are not the last orders" in plan_violations(
        late, holdings, allocation, payout
    )
    # a held day still pays out of the day's profit
    held = empty_plan(holdings, "hold", payout)
    assert held.rebalance_orders == () and held.paid_out_usd == D("2.00")
    assert plan_violations(held, holdings, holdings.held(), payout) == []
    with pytest.raises(PlanError, match="exceed the day's profit"):
        build_plan(holdings, allocation, pools, payout=replace(payout, profit_usd=D("1.00")))
