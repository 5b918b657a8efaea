"""The rebalance plan: the orders that take a day's holdings exactly to its allocation.

Per chain, withdrawals come before deposits (the cash a deposit needs must be there first). Each
order is in exact cents and, for every pool, holding + deposits - withdrawals = allocation; the
idle cash absorbs the difference: idle + withdrawals - deposits = what the allocation leaves idle.
The plan is executed at the end of the day, when the day's realised profit has landed as idle
cash; the payouts of the profit split (`payouts.py`) then leave from that idle cash, as the last
orders, and never exceed the profit (a loss pays nothing).
A day without a new allocation (hold, infeasible) has no rebalance orders and says why; its
payouts still leave. `plan_violations` proves a plan's identities independently of the builder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from allocator_dagster.model import IDLE, Holdings
from allocator_dagster.money import CENT, to_cents
from allocator_dagster.payouts import Payout

ZERO = Decimal("0.00")


class Action(StrEnum):
    WITHDRAW = "withdraw"
    DEPOSIT = "deposit"


class Reason(StrEnum):
    REBALANCE = "rebalance"
    FORCED_EXIT = "forced exit"
    PLACING_YIELD = "placing yield"
    PAYOUT = "payout"


@dataclass(frozen=True)
class PoolInfo:
    chain: str
    protocol: str
    gas_usd: float = 0.0
    conversion_usd: float = 0.0


@dataclass(frozen=True)
class Order:
    chain: str
    pool: str
    protocol: str
    action: Action
    amount_usd: Decimal
    gas_usd: Decimal
    conversion_usd: Decimal
    reason: Reason
    recipient: str = ""  # a payout's recipient (profit-split category); empty for the others

    def as_dict(self) -> dict[str, str]:
        return {
            "chain": self.chain,
            "pool": self.pool,
            "protocol": self.protocol,
            "action": str(self.action),
            "amount_usd": str(self.amount_usd),
            "gas_usd": str(self.gas_usd),
            "conversion_usd": str(self.conversion_usd),
            "reason": str(self.reason),
            "recipient": self.recipient,
        }


@dataclass(frozen=True)
class Plan:
    orders: tuple[Order, ...]
    idle_start_usd: Decimal
    idle_end_usd: Decimal
    why: str = ""
    profit_usd: Decimal = ZERO  # the day's realised profit, landed as idle cash; pays the payouts

    @property
    def rebalance_orders(self) -> tuple[Order, ...]:
        return tuple(o for o in self.orders if o.reason != Reason.PAYOUT)

    @property
    def payouts(self) -> tuple[Order, ...]:
        return tuple(o for o in self.orders if o.reason == Reason.PAYOUT)

    @property
    def withdrawn_usd(self) -> Decimal:
        return sum(
            (o.amount_usd for o in self.rebalance_orders if o.action == Action.WITHDRAW), ZERO
        )

    @property
    def paid_out_usd(self) -> Decimal:
        return sum((o.amount_usd for o in self.payouts), ZERO)

    def as_dict(self, day: date) -> dict[str, object]:
        """Plain data (amounts as strings): what `allocator plan show --format json` prints and
        the rebalance_plan asset records."""
        return {
            "day": day.isoformat(),
            "orders": [o.as_dict() for o in self.orders],
            "idle_start_usd": str(self.idle_start_usd),
            "withdrawn_usd": str(self.withdrawn_usd),
            "deposited_usd": str(self.deposited_usd),
            "profit_usd": str(self.profit_usd),
            "paid_out_usd": str(self.paid_out_usd),
            "idle_end_usd": str(self.idle_end_usd),
            "why_empty": self.why,
        }

    @property
    def deposited_usd(self) -> Decimal:
        return sum((o.amount_usd for o in self.orders if o.action == Action.DEPOSIT), ZERO)


class PlanError(ValueError):
    """The allocation cannot be reached from the holdings (it places more than they hold)."""


def empty_plan(holdings: Holdings, why: str, payout: Payout | None = None) -> Plan:
    """No rebalance orders (a held or infeasible day): everything stays where it is; the day's
    payouts still leave from the idle cash."""
    return _with_payouts(
        Plan(orders=(), idle_start_usd=holdings.idle_usd, idle_end_usd=holdings.idle_usd, why=why),
        payout,
    )


def build_plan(
    holdings: Holdings,
    allocation: Mapping[str, Decimal],
    pools: Mapping[str, PoolInfo],
    *,
    forced: bool = False,
    yield_only: bool = False,
    payout: Payout | None = None,
) -> Plan:
    """The orders from `holdings` to `allocation` (amounts in USD, exact cents), then the payouts.

    `forced`: withdrawals that empty a pool are forced exits; `yield_only`: deposits place the
    idle yield. Every pool needs its chain and protocol in `pools`.
    """
    held = holdings.held()
    target = {p: to_cents(a) for p, a in allocation.items() if a > 0}
    placed = sum(target.values(), ZERO)
    if placed > holdings.total_usd:
        raise PlanError(
            f"the allocation places {placed} USD but the holdings are {holdings.total_usd} USD"
        )
    orders = []
    for pool in sorted(set(held) | set(target)):
        delta = target.get(pool, ZERO) - held.get(pool, ZERO)
        if delta == 0:
            continue
        info = pools.get(pool)
        if info is None:
            raise PlanError(f"pool {pool} has no chain and protocol: it is not in the day's data")
        if delta < 0:
            action = Action.WITHDRAW
            reason = Reason.FORCED_EXIT if forced and pool not in target else Reason.REBALANCE
        else:
            action = Action.DEPOSIT
            reason = Reason.PLACING_YIELD if yield_only else Reason.REBALANCE
        orders.append(
            Order(
                chain=info.chain,
                pool=pool,
                protocol=info.protocol,
                action=action,
                amount_usd=abs(delta),
                gas_usd=to_cents(info.gas_usd),
                conversion_usd=to_cents(info.conversion_usd),
                reason=reason,
            )
        )
    orders.sort(key=lambda o: (o.chain, o.action != Action.WITHDRAW, o.pool))
    plan = Plan(
        orders=tuple(orders),
        idle_start_usd=holdings.idle_usd,
        idle_end_usd=holdings.total_usd - placed,
    )
    return _with_payouts(plan, payout)


def _with_payouts(plan: Plan, payout: Payout | None) -> Plan:
    """`plan` with the payouts last, paid from the day's profit landed as idle cash."""
    if payout is None:
        return plan
    profit = payout.profit_usd
    orders = [
        Order(
            chain="",
            pool=IDLE,
            protocol="",
            action=Action.WITHDRAW,
            amount_usd=amount,
            gas_usd=ZERO,
            conversion_usd=ZERO,
            reason=Reason.PAYOUT,
            recipient=category,
        )
        for category, amount in payout.paid.items()
        if amount > 0
    ]
    if payout.paid_usd > max(profit, ZERO):  # the split's paid shares are part of the profit
        raise PlanError(
            f"the payouts ({payout.paid_usd} USD) exceed the day's profit ({profit} USD)"
        )
    return Plan(
        orders=plan.orders + tuple(orders),
        idle_start_usd=plan.idle_start_usd,
        idle_end_usd=plan.idle_end_usd,
        why=plan.why,
        profit_usd=profit,
    )


def plan_violations(
    plan: Plan,
    holdings: Holdings,
    allocation: Mapping[str, Decimal],
    payout: Payout | None = None,
) -> list[str]:
    """Every identity the plan breaks (empty: executable): exact positive cents, each pool
    reaches its allocation, per chain withdrawals before deposits, the cash flow balances with the
    idle cash, and the payouts come last from the idle cash, equal to what the profit split pays
    and within the day's profit."""
    out = []
    reached = dict(holdings.held())
    for i, o in enumerate(plan.orders):
        if o.amount_usd <= 0 or o.amount_usd != o.amount_usd.quantize(CENT):
            out.append(f"order {i + 1} ({o.pool}): amount {o.amount_usd} is not positive cents")
        if o.reason == Reason.PAYOUT:
            if o.pool != IDLE or o.action != Action.WITHDRAW:
                out.append(f"order {i + 1}: a payout must withdraw from {IDLE}, not {o.pool}")
            continue
        sign = 1 if o.action == Action.DEPOSIT else -1
        reached[o.pool] = reached.get(o.pool, ZERO) + sign * o.amount_usd
    target = {p: a for p, a in allocation.items() if a > 0}
    for pool in sorted(set(reached) | set(target)):
        if reached.get(pool, ZERO) != target.get(pool, ZERO):
            out.append(
                f"pool {pool}: holding + deposits - withdrawals = {reached.get(pool, ZERO)} USD, "
                f"not the allocation {target.get(pool, ZERO)} USD"
            )
    rebalance = plan.rebalance_orders
    if plan.orders[: len(rebalance)] != rebalance:
        out.append("the payouts are not the last orders")
    for chain in sorted({o.chain for o in rebalance}):
        actions = [o.action for o in rebalance if o.chain == chain]
        if actions != sorted(actions, key=lambda a: a != Action.WITHDRAW):
            out.append(f"chain {chain}: a deposit comes before a withdrawal")
    paid = {o.recipient: o.amount_usd for o in plan.payouts}
    due = {c: a for c, a in payout.paid.items() if a > 0} if payout is not None else {}
    if paid != due:
        out.append(f"the payouts {paid} are not what the profit split pays {due}")
    if plan.idle_start_usd != holdings.idle_usd:
        out.append(f"the plan starts from {plan.idle_start_usd} USD idle, not {holdings.idle_usd}")
    flow = plan.idle_start_usd + plan.withdrawn_usd - plan.deposited_usd
    if flow != plan.idle_end_usd or plan.idle_end_usd < 0:
        out.append(
            f"cash flow: idle {plan.idle_start_usd} + withdrawn {plan.withdrawn_usd} - deposited "
            f"{plan.deposited_usd} = {flow} USD, but the plan leaves {plan.idle_end_usd} USD idle"
        )
    if plan.paid_out_usd > max(plan.profit_usd, ZERO):
        out.append(f"the payouts {plan.paid_out_usd} USD exceed the day's profit {plan.profit_usd}")
    return out
