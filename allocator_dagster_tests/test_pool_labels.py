"""Readable pool labels: pools that share symbol and project stay apart, UUIDs become labels."""

from __future__ import annotations

import pandas as pd

from allocator_dagster.pool_labels import labels_from_universe, pool_label, readable

A = "dc8a57c3-1111-4a4a-8b8b-000000000001"
B = "dc8a57c4-2222-4a4a-8b8b-000000000002"


def test_labels_keep_pools_with_the_same_symbol_and_project_apart() -> None:
    universe = pd.DataFrame(
        {
            "pool": [A, B],
            "symbol": ["DAI", "DAI"],
            "project": ["venus-core-pool", "venus-core-pool"],
            "chain": ["BSC", "BSC"],
            "poolMeta": [None, "Stablecoins"],
        }
    )
    labels = labels_from_universe(universe, [A, B, "unknown"])
    assert labels == {
        A: "DAI · venus-core-pool · BSC · dc8a57c3",
        B: "DAI · venus-core-pool · BSC · Stablecoins · dc8a57c4",
    }
    assert (
        pool_label(A, "USDC", "aave-v3", "Ethereum", "  ") == "USDC · aave-v3 · Ethereum · dc8a57c3"
    )


def test_readable_replaces_known_uuids_only() -> None:
    other = "00000000-0000-4000-8000-000000000000"
    text = f"forced exit: pool {A} vanished; pool {other} too"
    assert readable(text, {A: "DAI · venus · BSC · dc8a57c3"}) == (
        f"forced exit: pool DAI · venus · BSC · dc8a57c3 vanished; pool {other} too"
    )


def test_a_cut_label_keeps_its_short_id() -> None:
    from allocator_dagster.pool_labels import fit

    label = pool_label(A, "WETH-WSTETH", "aerodrome-slipstream", "Base", "0.05% fee tier")
    assert fit(label, 200) == label
    cut = fit(label, 40)
    assert len(cut) == 40 and cut.endswith(" · dc8a57c3") and "…" in cut
