"""`allocator solve`'s input files: POOLS.csv and HOLDINGS.csv (`inputs.py`)."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest

from allocator_dagster.inputs import (
    MAX_REPORTED_ERRORS,
    InputFileError,
    read_holdings_csv,
    read_pools_csv,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEADER = "pool,chain,project,symbol,underlyingTokens,tvlUsd,apy,apyBase,apyReward,stablecoin"


def write(tmp_path: Path, text: str, name: str = "POOLS.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> list[str]:
    with pytest.raises(InputFileError) as caught:
        read_pools_csv(path)
    prefix = f"{path}: "
    lines = str(caught.value).split("\n")
    assert all(line.startswith(prefix) for line in lines)
    return [line.removeprefix(prefix) for line in lines]


def test_the_example_file_is_the_validated_universe() -> None:
    universe = read_pools_csv(EXAMPLES / "pools.csv")
    assert len(universe) == 40
    assert list(universe["pool"]) == sorted(universe["pool"])
    steth = universe.set_index("pool").loc["747c1d2a-c668-4682-b9f9-296708a3dd90"]
    assert (steth["symbol"], steth["tvlUsd"], steth["apyBase"]) == ("STETH", 17616960529.0, 2.231)
    assert steth["apy"] == 2.231  # an empty apy is apyBase + apyReward, as from the API
    assert not steth["stablecoin"]
    assert tuple(steth["underlyingTokens"]) == ("0x0000000000000000000000000000000000000000",)


def test_cells_are_read_as_defillama_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{HEADER},poolMeta,apy_forecast,tvl_forecast\n"
        " p1 ,Ethereum,aave-v3,USDC, 0xa ; ;0xb,1000000,5,,,yes, fixed ,4.5,\n"
        "p2,Base,aave-v3,DAI,,2e6,,3,1,\n",  # a short row: the missing cells are empty
    )
    universe = read_pools_csv(path).set_index("pool")
    p1, p2 = universe.loc["p1"], universe.loc["p2"]
    assert tuple(p1["underlyingTokens"]) == ("0xa", "0xb")
    assert p1["stablecoin"]
    assert p1["poolMeta"] == "fixed"
    assert (p1["apy_forecast"], math.isnan(p1["tvl_forecast"])) == (4.5, True)
    assert p2["apy"] == 4.0 and math.isnan(p2["apy_forecast"])
    assert not p2["stablecoin"] and p2["poolMeta"] is None


def test_every_bad_row_is_named_by_its_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{HEADER},apy_forecast,tvl_forecast\n"
        "p1,Ethereum,aave-v3,USDC,,1000000,5,,,true,4.5,\n"
        "p2,Base,aave-v3,DAI,,2e6,,3,1,,,\n"
        "p1,Base,aave-v3,DAI,,2e6,,3,1,,,\n"
        "p3,Base,aave-v3,DAI,,lots,,3,1,maybe,nan,0\n"
        "p4,Base,aave-v3,DAI,,1e6,,3,1,false,,,extra\n"
        "p5,Base,,DAI,,-1,,3,1,false,,\n"
        "\n"
        '"p6",Base,aave-v3,"USDT\nsplit",,1e6,inf,3,1,no,,-5\n'
        "p7,Base,aave-v3,USDT,,1e6,3,3,,no,,x\n",
    )
    assert error_of(path) == [
        # once, by file line (not again by the record validation's row index)
        "line 4: duplicate pool id 'p1' (first on line 2)",
        "line 5 (pool p3): field 'tvlUsd' is not a number: 'lots'",
        "line 5 (pool p3): field 'stablecoin' must be true or false, got 'maybe'",
        "line 5 (pool p3): field 'apy_forecast' is nan (must be finite)",
        "line 5 (pool p3): field 'tvl_forecast' must be positive, got 0.0",
        "line 6 (pool p4): more values than columns",
        "line 7 (pool p5): required field 'project' is null",
        # the blank line 8 is skipped; a quoted cell over two lines is one row
        "line 9 (pool p6): field 'tvl_forecast' must be positive, got -5.0",
        "line 11 (pool p7): field 'tvl_forecast' is not a number: 'x'",
    ]


def test_a_bad_header_is_named_before_any_row(tmp_path: Path) -> None:
    path = write(tmp_path, "pool,chain,chain,symbol,tvlUsd,colour\nnot,even,read,at,all,x\n")
    assert error_of(path) == [
        "line 1: unknown column 'colour'",
        "line 1: required column 'project' is missing",
        "line 1: column 'chain' appears twice",
    ]


def test_many_errors_are_cut_short(tmp_path: Path) -> None:
    rows = "".join(f"p{i},Base,aave-v3,DAI,,oops,,3,1,\n" for i in range(25))
    errors = error_of(write(tmp_path, f"{HEADER}\n{rows}"))
    assert len(errors) == MAX_REPORTED_ERRORS + 1
    assert errors[0] == "line 2 (pool p0): field 'tvlUsd' is not a number: 'oops'"
    assert errors[-1] == "... and 5 more errors"


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="POOLS.csv: file not found"):
        read_pools_csv(tmp_path / "POOLS.csv")
    assert error_of(write(tmp_path, "")) == ["empty file (expected a header line)"]
    # only the header: named as the file's error, not solved as a day with no pool
    assert error_of(write(tmp_path, f"{HEADER}\n")) == ["no pool rows after the header line"]


def test_holdings_rows_are_named_by_their_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path, "pool,amount_usd\np1,100.005\n\nidle_usd,50\np2,-3\n", name="HOLDINGS.csv"
    )
    with pytest.raises(InputFileError) as caught:
        read_holdings_csv(path)
    assert str(caught.value) == f"{path}: line 5 (pool p2): field 'amount_usd' is negative: -3"
    path.write_text("amount_usd,pool\n100.005,p1\n\n50,idle_usd\n", encoding="utf-8")
    holdings = read_holdings_csv(path)
    assert holdings.idle_usd == Decimal("50.00")
    assert dict(holdings.positions) == {"p1": Decimal("100.00")}
