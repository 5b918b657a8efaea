"""The rebalance plan: the orders that take a day's holdings exactly to its allocation.

Per chain, withdrawals come before deposits (the cash a deposit needs must be there first). Each
order is in exact cents and, for every pool, holding + deposits - withdrawals = allocation; the
idle cash absorbs the difference: idle + withdrawals - deposits = what the allocation leaves idle.
A day without a new allocation (hold, infeasible) has an empty plan that says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from allocator_dagster.model import Holdings
from allocator_dagster.money import to_cents

ZERO = Decimal("0.00")


class Action(StrEnum):
    WITHDRAW = "withdraw"
    DEPOSIT = "deposit"


class Reason(StrEnum):
    REBALANCE = "rebalance"
    FORCED_EXIT = "forced exit"
    PLACING_YIELD = "placing yield"


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
        }


@dataclass(frozen=True)
class Plan:
    orders: tuple[Order, ...]
    idle_start_usd: Decimal
    idle_end_usd: Decimal
    why: str = ""

    @property
    def withdrawn_usd(self) -> Decimal:
        return sum((o.amount_usd for o in self.orders if o.action == Action.WITHDRAW), ZERO)

    @property
    def deposited_usd(self) -> Decimal:
        return sum((o.amount_usd for o in self.orders if o.action == Action.DEPOSIT), ZERO)


class PlanError(ValueError):
    """The allocation cannot be reached from the holdings (it places more than they hold)."""


def empty_plan(holdings: Holdings, why: str) -> Plan:
    """No orders (a held or infeasible day): everything stays where it is."""
    return Plan(
        orders=(), idle_start_usd=holdings.idle_usd, idle_end_usd=holdings.idle_usd, why=why
    )


def build_plan(
    holdings: Holdings,
    allocation: Mapping[str, Decimal],
    pools: Mapping[str, PoolInfo],
    *,
    forced: bool = False,
    yield_only: bool = False,
) -> Plan:
    """The orders from `holdings` to `allocation` (amounts in USD, exact cents).

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
    # the cash flow balances with the idle cash, to the cent
    assert plan.idle_start_usd + plan.withdrawn_usd - plan.deposited_usd == plan.idle_end_usd
    return plan
