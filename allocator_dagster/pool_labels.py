"""Readable pool labels: a person tells pools apart by symbol, project, chain, poolMeta and a short id.

Cut labels ("DAI venus-core-poo" three times) and raw UUIDs are what an operator cannot check;
every place a person reads a pool uses `pool_label`. No Dagster import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # a label needs no solver: importing labels loads no report, solver or cvxpy
    from allocator_dagster.allocation_report import AllocationReport

SHORT_ID = 8
LABEL_CHARS = 44  # what a chart's axis or legend has room for
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)


def short_id(pool: str) -> str:
    """The first characters of the pool id: enough to tell pools apart, short enough to read."""
    return pool[:SHORT_ID]


def pool_label(pool: str, symbol: str, project: str, chain: str, pool_meta: object = None) -> str:
    """`USDC · aave-v3 · Ethereum · <poolMeta> · 1a2b3c4d`; poolMeta only when the pool has one."""
    parts = [str(symbol), str(project), str(chain)]
    if isinstance(pool_meta, str) and pool_meta.strip():
        parts.append(pool_meta.strip())
    parts.append(short_id(pool))
    return " · ".join(parts)


def fit(label: str, width: int = LABEL_CHARS) -> str:
    """`label` cut to `width` characters in the middle, keeping its end (the short pool id
    that tells pools apart)."""
    if len(label) <= width:
        return label
    tail = label[-(SHORT_ID + 3) :]
    return label[: width - len(tail) - 1] + "…" + tail


def labels_from_universe(universe: pd.DataFrame, pools: Iterable[str]) -> dict[str, str]:
    """The label of each of `pools` found in the day's universe (DefiLlama's yields shape)."""
    wanted = set(pools)
    if universe.empty or not wanted:
        return {}
    rows = universe[universe["pool"].isin(wanted)]
    meta = rows["poolMeta"] if "poolMeta" in rows.columns else pd.Series(None, index=rows.index)
    return {
        str(pool): pool_label(str(pool), symbol, project, chain, m)
        for pool, symbol, project, chain, m in zip(
            rows["pool"], rows["symbol"], rows["project"], rows["chain"], meta, strict=True
        )
    }


def pool_ids_in(texts: Iterable[str]) -> set[str]:
    """The pool UUIDs named in free text (the decision's reasons)."""
    return {m.group(0) for text in texts for m in _UUID.finditer(text)}


def readable(text: str, labels: Mapping[str, str]) -> str:
    """`text` with every known pool UUID replaced by its label (unknown ids stay as they are)."""
    return _UUID.sub(lambda m: labels.get(m.group(0), m.group(0)), text)


def report_labels(report: AllocationReport, universe: pd.DataFrame) -> dict[str, str]:
    """Labels of every pool a day's report names: its lines and the pools its reasons mention."""
    labels = {
        line.pool: pool_label(line.pool, line.symbol, line.project, line.chain)
        for line in report.lines
    }
    named = {line.pool for line in report.lines} | pool_ids_in(report.reasons)
    labels.update(labels_from_universe(universe, named))  # the universe knows poolMeta
    return labels
