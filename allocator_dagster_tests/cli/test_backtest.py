"""`allocator backtest` on a small real recording: JSON, the report, and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from allocator_dagster.cli import main

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "allocator_dagster_tests" / "fixtures" / "history" / "chart_2025-06.csv"
PARAMS = ROOT / "examples" / "backtest" / "history_params.yaml"
RANGE = ["--start", "2025-06-10", "--end", "2025-06-14"]


def backtest(*args: str):
    return CliRunner().invoke(main, ["backtest", *args])


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0]


def test_json_on_a_recording(tmp_path: Path) -> None:
    result = backtest(
        "--history", str(RECORDING), *RANGE, "--capital", "1000000",
        "--params", str(PARAMS), "--format", "json", "--strategies", "allocator,greedy,hold",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["start"] == "2025-06-10" and payload["capital_usd"] == 1_000_000.0
    allocator = payload["strategies"]["allocator"]
    assert [d["date"] for d in allocator["days"]][-1] == "2025-06-14"
    assert allocator["gross_usd"] > 0  # the recording's real APYs earned something
    assert (
        abs(
            allocator["net_usd"]
            - (allocator["gross_usd"] - allocator["gas_usd"] - allocator["conversion_usd"])
        )
        < 1e-6
    )


def test_table_and_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = backtest(
        "--history", str(RECORDING), *RANGE, "--params", str(PARAMS), "--report", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "allocator" in result.output and "oracle" in result.output
    text = (out / "report.md").read_text()
    assert "| strategy |" in text and "(cumulative_net_yield.png)" in text
    for stem in (
        "cumulative_net_yield",
        "expected_vs_realised",
        "turnover",
        "protocol_concentration",
    ):
        assert (out / f"{stem}.png").read_bytes().startswith(b"\x89PNG")


def test_trade_credibility_is_printed_when_asked() -> None:
    result = backtest(
        "--history", str(RECORDING), "--start", "2025-06-05", "--end", "2025-06-20",
        "--params", str(PARAMS), "--strategies", "allocator", "--trade-credibility",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "realised / forecast gain" in x)
    assert "of the trades over 1 d " in line and ", 30 d - (0 trades)" in line


def test_start_after_end() -> None:
    one_line_error(
        backtest("--history", str(RECORDING), "--start", "2025-06-14", "--end", "2025-06-10"),
        "--start 2025-06-14 is after --end 2025-06-10",
    )


def test_a_range_the_recording_does_not_hold() -> None:
    one_line_error(
        backtest("--history", str(RECORDING), "--start", "2024-01-01", "--end", "2024-01-03"),
        "no records for 2024-01-01",
        "2025-06-01 .. 2025-06-28",
    )


def test_unknown_strategy() -> None:
    one_line_error(
        backtest("--sample", *RANGE, "--strategies", "allocator,yolo"),
        "unknown strategy 'yolo'",
        "allocator, greedy, equal, hold, oracle",
    )


@pytest.mark.parametrize("sources", [[], ["--sample", "--history", str(RECORDING)]])
def test_exactly_one_source(sources: list[str]) -> None:
    one_line_error(backtest(*sources, *RANGE), "exactly one of --history FILE and --sample")


def test_a_history_file_with_a_bad_row_names_file_line_and_field(tmp_path: Path) -> None:
    lines = RECORDING.read_text(encoding="utf-8").splitlines()
    lines[3] = "2025-06-3x" + lines[3][len("2025-06-01") :]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    one_line_error(backtest("--history", str(bad), *RANGE), str(bad), "line 4", "field 'date'")


def test_a_missing_history_file(tmp_path: Path) -> None:
    one_line_error(backtest("--history", str(tmp_path / "nope.csv"), *RANGE), "no such file")


def test_bad_parameters_name_the_field(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("group2_max_pct: 3\n")
    one_line_error(
        backtest("--history", str(RECORDING), *RANGE, "--params", str(params)), "group2_max_pct"
    )


def test_a_date_that_is_not_a_date() -> None:
    one_line_error(
        backtest("--history", str(RECORDING), "--start", "June", "--end", "2025-06-14"),
        "--start 'June' is not a date",
    )


def test_lists_in_the_params_file_replace_the_default(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        PARAMS.read_text() + "approved_tokens: [DAI, USDC, USDT]\napproved_protocols: [curve-dex]\n"
    )
    result = backtest(
        "--history", str(RECORDING), *RANGE, "--params", str(params), "--format", "json",
        "--strategies", "greedy",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    days = json.loads(result.output)["strategies"]["greedy"]["days"]
    held = {pool for day in days for pool in day["positions"]}
    assert held == {"25171c4c-1877-449a-9f88-45a9f153ee31"}  # the only approved pool: DAI-USDC-USDT


def test_a_report_folder_that_cannot_be_made_is_refused_before_the_replay(tmp_path: Path) -> None:
    """It was a NotADirectoryError traceback (exit 1) after the whole replay."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    target = a_file / "report"  # (an existing file itself is refused by click's Path type)
    result = backtest("--history", str(RECORDING), *RANGE, "--report", str(target))
    one_line_error(result, f"--report {target}: {a_file} is not a folder")


def test_every_bad_parameter_is_its_own_error_line(tmp_path: Path) -> None:
    """The backtest said the problems of a parameters file on one line joined by an escaped
    newline (`\\x0a`), unlike every other command: now one `error:` line each, as options.fail."""
    params = tmp_path / "params.yaml"
    params.write_text("group2_max_pct: 3\nmin_pools: -1\n")
    result = backtest("--history", str(RECORDING), *RANGE, "--params", str(params))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {params}: field ") for line in lines)
    assert "\\x0a" not in result.output


def test_a_capital_that_is_not_a_number() -> None:
    """click's FloatRange let NaN through (it compares false): a decimal.InvalidOperation
    traceback after the days were loaded."""
    one_line_error(backtest("--sample", *RANGE, "--capital", "nan"), "'nan' is not a finite number")
