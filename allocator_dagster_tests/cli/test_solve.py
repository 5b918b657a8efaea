"""`allocator solve` with hostile amounts and machine-read output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from allocator_dagster.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = ["solve", "--pools", str(EXAMPLES / "pools.csv"), "--params", str(EXAMPLES / "params.yaml")]


def _solve(*args: str):
    return CliRunner().invoke(main, [*BASE, *args])


@pytest.mark.parametrize("capital", ["1e25", "1e13", "1e300", "nan", "NaN"])  # NaN: a traceback
def test_an_absurd_capital_is_bad_input(capital: str) -> None:
    result = _solve("--capital", capital)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--capital'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_absurd_holding_names_the_file_line_and_field(tmp_path: Path) -> None:
    holdings = tmp_path / "holdings.csv"
    holdings.write_text("pool,amount_usd\nidle_usd,1e30\n")
    result = _solve("--holdings", str(holdings))
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"error: {holdings}: line 2 (pool idle_usd): field 'amount_usd' is 1.000000E+30 USD; "
        "at most 1,000,000,000,000 USD is accepted (the solvers keep cent precision up to that)"
    )


def test_holdings_that_add_up_to_too_much_are_bad_input(tmp_path: Path) -> None:
    holdings = tmp_path / "holdings.csv"
    holdings.write_text("pool,amount_usd\nidle_usd,9e11\nsome-pool,9e11\n")
    result = _solve("--holdings", str(holdings))
    assert result.exit_code == 2, result.output
    assert (
        "error: the total capital is 1.800000E+12 USD; at most 1,000,000,000,000" in result.output
    )


def test_one_trillion_is_still_solved(tmp_path: Path) -> None:
    result = _solve("--capital", "1e12", "--format", "json")
    assert result.exit_code in (0, 1), result.output  # optimal, or a clear infeasible hold
    assert json.loads(result.output)["status"] in ("optimal", "infeasible")


def test_solver_output_never_reaches_stdout(tmp_path: Path) -> None:
    """HiGHS prints some messages with C printf, past its output_flag (on this diluted MIP:
    'HighsMipSolverData::transformNewIntegerFeasibleSolution ...'): stdout must stay JSON."""
    import subprocess
    import sys

    import pandas as pd

    pools = pd.read_csv(EXAMPLES / "pools.csv")
    pools["tvlUsd"] = pools["tvlUsd"] * 1e5  # room for a billion
    pools.to_csv(tmp_path / "pools.csv", index=False)
    params = (EXAMPLES / "params.yaml").read_text()
    assert "yield_model: linear" in params
    (tmp_path / "params.yaml").write_text(
        params.replace("yield_model: linear", "yield_model: diluted")
    )
    done = subprocess.run(
        [str(Path(sys.executable).with_name("allocator")), "solve",
         "--pools", str(tmp_path / "pools.csv"), "--params", str(tmp_path / "params.yaml"),
         "--capital", "1e9", "--format", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the whole of stdout is one JSON object
    assert report["status"] == "optimal"


def test_native_output_goes_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    import os

    from allocator_dagster.solvers._output import native_output_to_stderr

    os.write(1, b"before\n")
    with native_output_to_stderr():
        os.write(1, b"from C\n")
        with native_output_to_stderr():
            os.write(1, b"nested\n")
        os.write(1, b"still C\n")
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert out == "before\nafter\n"
    assert err == "from C\nnested\nstill C\n"


def test_a_held_day_reports_what_the_held_positions_earn(tmp_path: Path) -> None:
    """Infeasible: nothing moves, yet the holdings earn their APY (issue 12: not 'Daily yield 0.00')."""
    import pandas as pd

    params = (EXAMPLES / "params.yaml").read_text()
    assert "\nmin_pools:" in params
    impossible = tmp_path / "params.yaml"
    impossible.write_text(
        "\n".join(
            "min_pools: 5000" if line.startswith("min_pools:") else line
            for line in params.splitlines()
        )
    )
    holdings = EXAMPLES / "holdings.csv"
    args = ["--params", str(impossible), "--holdings", str(holdings)]
    runner = CliRunner()
    table = runner.invoke(main, ["solve", "--pools", str(EXAMPLES / "pools.csv"), *args])
    assert table.exit_code == 1, table.output
    assert "Decision: hold   status: infeasible" in table.output

    # the expectation from the files alone: amount x APY / 36,500 per held pool, in cents; the
    # example's held pools give no `apy`, so it is apyBase + apyReward (a missing part is 0)
    pools = pd.read_csv(EXAMPLES / "pools.csv").set_index("pool")
    apy = pools["apyBase"].fillna(0) + pools["apyReward"].fillna(0)
    held = pd.read_csv(holdings)
    held = held[held["pool"] != "idle_usd"]
    assert pools.loc[held["pool"], "apy"].isna().all()
    expected = sum(
        round(float(row.amount_usd) * float(apy[row.pool]) / 36_500, 2) for row in held.itertuples()
    )
    assert f"Daily yield {expected:>25,.2f} USD/day (the held positions at their APY" in (
        table.output
    )
    first = held.iloc[0]
    [line] = [ln for ln in table.output.splitlines() if f" · {first.pool[:8]} " in ln]
    assert line.split()[-1] == f"{float(apy[first.pool]):.2f}" != "0.00"

    data = runner.invoke(
        main, ["solve", "--pools", str(EXAMPLES / "pools.csv"), *args, "--format", "json"]
    )
    report = json.loads(data.output)
    assert report["decision"] == "hold" and report["daily_yield_usd"] == 0.0  # the model's
    assert report["held_daily_yield_usd"] == f"{expected:.2f}"


def test_the_table_names_pools_by_their_readable_labels() -> None:
    """Issue 12: a person reads `symbol · project · chain · poolMeta · short id`, never a raw id."""
    import re

    import pandas as pd

    result = _solve()
    assert result.exit_code == 0, result.output
    pools = pd.read_csv(EXAMPLES / "pools.csv").set_index("pool")
    rows = [
        line for line in result.output.splitlines() if re.search(r" · \w{8}\s+[\d,]+\.\d\d ", line)
    ]
    assert rows, result.output
    for row in rows:
        short = re.search(r" · ([0-9a-f]{8})\s", row)
        assert short, row
        (pool,) = [p for p in pools.index if p.startswith(short.group(1))]
        symbol, project, chain = pools.loc[pool, ["symbol", "project", "chain"]]
        assert row.startswith(f"{symbol} · {project} · {chain} · "), row
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", result.output)  # no raw UUID anywhere


def test_a_solve_loads_cvxpy_only_for_the_convex_backend() -> None:
    """`allocator solve` imports what a solve needs: the milp backend and the linear model's
    binding limits need no cvxpy (whose import alone costs more than a plain HiGHS script)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from allocator_dagster.cli import main\n"
        "import allocator_dagster.cli.solve\n"
        "print('cvxpy' in sys.modules)\n"
        f"result = CliRunner().invoke(main, {BASE!r} + sys.argv[1:] + ['--format', 'json'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert result.output.count('binding_limits') == 1\n"
        "print('cvxpy' in sys.modules)\n"
    )
    for solver, loaded in [("milp", "False\nFalse\n"), ("convex", "False\nTrue\n")]:
        done = subprocess.run(
            [sys.executable, "-c", probe, "--solver", solver],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == loaded, solver


def test_a_list_entry_lists_add_refuses_is_refused_in_the_params_file(tmp_path: Path) -> None:
    """The lists of a --params file went through unchecked (`Aave V3` approved no protocol,
    silently): each entry is now checked as `allocator lists add` checks it, one line each."""
    params = tmp_path / "params.yaml"
    example = (EXAMPLES / "params.yaml").read_text().splitlines(keepends=True)
    kept = [line for line in example if not line.startswith(("icebox_", "blacklisted_"))]
    params.write_text(
        "".join(kept) + "icebox_tokens: ['bad token']\nblacklisted_tokens: [USDC, 'Aave V3']\n"
    )
    result = _solve("--params", str(params))
    assert result.exit_code == 2, result.output
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    added = CliRunner().invoke(
        main, ["lists", "add", "icebox-tokens", "bad token", "--reason", "r", "--by", "b",
               "--database-url", url],
    )  # fmt: skip
    assert added.exit_code == 2
    reason = added.output.strip().removeprefix("error: ")
    assert result.output.splitlines() == [
        f"error: {params}: field 'blacklisted_tokens': entry 'Aave V3': symbol 'Aave V3' "
        "contains ' '; a symbol has no spaces, '-', ',' or ';' ('-' separates the tokens of a "
        "pool symbol such as USDC-USDT)",
        f"error: {params}: field 'icebox_tokens': entry 'bad token': {reason}",
    ]
