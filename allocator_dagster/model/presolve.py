"""Before and after a solve: drop pools that cannot change the optimum, snap answers onto the model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from allocator_dagster.model.problem import Problem


def presolve_dominated(problem: Problem) -> tuple[Problem, np.ndarray]:
    """Remove pools that provably hold nothing in some optimal solution (linear model only).

    Pools with the same group and gas cost compete only through their net daily rate
    r = apy/36500 - conversion/H and their cap U. Pool j is dominated by i when r_i >= r_j and
    U_i >= U_j (ties broken by rank). If j has at least `min_pools` dominators whose caps sum to
    at least the most its group can take, G = min(T, group cap), then an optimal solution
    exists that does not select j: take an optimal solution maximising the amount in better
    ranked pools; if it selected j, either a dominator is unselected (swap j for it), or one has
    room (move j's money there; with all dominators at cap their caps would sum below G), or j
    sits at min_position_usd and can be dropped into the dominators' room (at least `min_pools`
    others stay selected). Each step is feasible, weakly better and moves money up the ranking,
    a contradiction. Held pools are never removed, and the steps move money only between pools
    not held, so the minimum withdrawal (constraint 8, on held pools) keeps the proof exact. Returns the reduced problem and the keep mask.
    """
    n = problem.n
    keep = np.ones(n, dtype=bool)
    if problem.yield_model != "linear" or n == 0:
        return problem, keep
    rate = problem.linear_rate() - problem.conversion_rate / problem.horizon_days
    held = problem.is_held | (problem.lower > 0)
    total = problem.total_usd
    need_count = problem.min_pools
    for k in (1, 2, 3):
        budget = min(total, problem.group_caps_usd[k - 1])
        in_group = (problem.group == k) & ~held
        for gas_value in np.unique(problem.gas[in_group]):
            members = np.flatnonzero(in_group & (problem.gas == gas_value))
            if len(members) <= need_count:
                continue
            # rank order: rate desc, cap desc, pool id asc (ids are sorted, so index asc)
            order = members[np.lexsort((members, -problem.upper[members], -rate[members]))]
            caps = problem.upper[order]
            # Fenwick tree over caps ranked descending: count and sum of inserted caps >= U_j
            cap_rank = np.argsort(np.argsort(-caps, kind="stable"), kind="stable")
            # equal caps must count as ">=": map each cap to the last position of its equal run
            sorted_caps = -np.sort(-caps)
            last_pos = np.searchsorted(-sorted_caps, -caps, side="right") - 1
            size = len(order)
            bit_count = [0] * (size + 1)
            bit_sum = [0.0] * (size + 1)
            caps_list = caps.tolist()
            for pos in range(size):
                # query prefix [0 .. last_pos[pos]] of the descending-cap order
                i = int(last_pos[pos]) + 1
                count = 0
                s = 0.0
                while i > 0:
                    count += bit_count[i]
                    s += bit_sum[i]
                    i -= i & -i
                if count >= need_count and s >= budget and count > 0:
                    keep[order[pos]] = False
                i = int(cap_rank[pos]) + 1
                c = caps_list[pos]
                while i <= size:
                    bit_count[i] += 1
                    bit_sum[i] += c
                    i += i & -i
    removed = int(n - keep.sum())
    if removed == 0:
        return problem, keep
    reduced = problem.subset(keep)
    note = (
        f"dominance presolve removed {removed} of {n} pools (same group and gas, lower net rate "
        f"and cap than at least min_pools={problem.min_pools} pools that can absorb the group's budget); exact"
    )
    return replace(reduced, presolve_removed=removed, presolve_note=note), keep


def polish(problem: Problem, x: np.ndarray) -> np.ndarray:
    """Snap a solver's answer onto the feasible set: bounds, group caps and the exact total.

    Solvers return amounts to their feasibility tolerance (1e-7 of T is 1 USD on 10 M USD).
    Only pools already selected and not left untouched are adjusted, by at most that tolerance,
    so the selection, and with it every fixed cost, is unchanged.
    """
    x = np.clip(np.asarray(x, dtype=float), problem.lower, problem.upper)
    upper = problem.upper_given(x)  # a reduced holding stays at or below its ceiling
    x = np.minimum(x, upper)
    untouched = problem.untouched(x)
    movable = (x > 0) & ~untouched
    for k in (1, 2, 3):
        members = (problem.group == k) & movable
        excess = float(x[problem.group == k].sum()) - problem.group_caps_usd[k - 1]
        if excess > 0 and members.any():
            room = x[members] - np.maximum(problem.lower[members], problem.min_position_usd)
            take = np.minimum(room, excess * room / max(room.sum(), 1e-12))
            x[members] -= take
    for _ in range(3):
        residual = problem.total_usd - float(x.sum())
        if abs(residual) < 1e-9:
            break
        if residual > 0:
            group_room = {
                k: problem.group_caps_usd[k - 1] - float(x[problem.group == k].sum())
                for k in (1, 2, 3)
            }
            room = np.where(movable, upper - x, 0.0)
            room = np.minimum(room, [max(group_room[int(g)], 0.0) for g in problem.group])
        else:
            room = np.where(movable, x - np.maximum(problem.lower, problem.min_position_usd), 0.0)
        room = np.clip(room, 0.0, None)
        if room.sum() <= 0:
            break
        x += np.sign(residual) * np.minimum(room, abs(residual) * room / room.sum())
    return x
