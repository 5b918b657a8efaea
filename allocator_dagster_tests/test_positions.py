"""The positions file: a checked map of the treasury's wallets and receipt tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocator_dagster.positions import (
    NATIVE,
    PositionsFileError,
    parse_positions,
    read_positions_file,
)
from allocator_dagster_tests.support.fake_chain import ATOKEN, USDC, VAULT, WALLETS, positions_yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "positions.yaml"


def test_a_valid_file_is_parsed_with_one_spelling_of_addresses() -> None:
    text = positions_yaml("pool-a", "pool-b").replace(ATOKEN, ATOKEN.upper().replace("0X", "0x"))
    positions = parse_positions(text, "p.yaml")
    assert positions.wallets == WALLETS
    assert list(positions.pools) == ["pool-a", "pool-b"]
    assert positions.pools["pool-a"].token == ATOKEN  # lower-case
    assert positions.pools["pool-a"].asset_decimals == 6
    assert positions.pools["pool-b"].kind == "erc4626"
    assert positions.pools["pool-b"].asset_decimals == 6
    assert [i.token for i in positions.idle] == [USDC, NATIVE]
    assert positions.price_key(8453, VAULT) == f"base:{VAULT}"
    assert positions.price_key(1, NATIVE) == "ethereum:0x" + "0" * 40
    assert len(positions.sha256) == 64


def test_the_example_file_is_valid() -> None:
    positions = read_positions_file(EXAMPLE)
    assert positions.wallets and positions.pools and positions.idle


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("decimals: 18", "decimals: true"), "positions.pool-b: field 'decimals': Input should be a valid integer"),
        (("decimals: 18", "decimals: 99"), "positions.pool-b: field 'decimals': Input should be less than or equal to 36"),
        (("kind: erc4626", "kind: erc721"), "positions.pool-b: field 'kind'"),
        (("chain_id: 8453", "chain_id: 777"), "positions.pool-b: field 'chain_id': 777 has no DefiLlama chain name"),
        (("chain_id: 8453", "chain_id: -1"), "positions.pool-b: field 'chain_id'"),
        ((f'token: "{VAULT}"', 'token: "0x12"'), "positions.pool-b: field 'token': must be a 0x address"),
        ((f'token: "{VAULT}"', f'token: "{VAULT}"\n    color: red'), "positions.pool-b: field 'color': Extra inputs"),
        ((f'  - "{WALLETS[1]}"', f'  - "{WALLETS[0]}"'), r"wallets\[1\]: .* is listed twice"),
        ((f'  - "{WALLETS[1]}"', '  - "vitalik.eth"'), r"wallets\[1\]: must be a 0x address"),
        ((f'chain_id: 8453\n    token: "{VAULT}"', f'chain_id: 1\n    token: "{ATOKEN}"'), "positions.pool-b: field 'token': .* already the token of pool pool-a"),
        (("token: native", f'token: "{USDC}"'), r"idle\[1\]: field 'token': .* already counted \(idle\[0\]\)"),
        (("kind: erc20", "kind: erc20\n    underlying_decimals: 18"), "positions.pool-a: field 'underlying_decimals': an erc20 receipt is redeemable 1:1"),
    ],
)  # fmt: skip
def test_each_error_names_the_file_entry_and_field(change: tuple[str, str], message: str) -> None:
    text = positions_yaml("pool-a", "pool-b")
    assert change[0] in text
    text = text.replace(change[0], change[1], 1)
    with pytest.raises(PositionsFileError, match=message) as err:
        parse_positions(text, "p.yaml")
    assert all(line.startswith("p.yaml: ") for line in str(err.value).splitlines())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wallets: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("positions: {}\n", "field 'wallets': Field required"),
        (f'wallets: ["{WALLETS[0]}"]\n', "lists no positions and no idle tokens"),
        (f'wallets: ["{WALLETS[0]}"]\npositions:\n  idle_usd: {{chain_id: 1, token: "{ATOKEN}", decimals: 6, kind: erc20, underlying: "{USDC}"}}\n', "not idle_usd"),
    ],
)  # fmt: skip
def test_a_broken_file_is_refused(text: str, message: str) -> None:
    with pytest.raises(PositionsFileError, match=message):
        parse_positions(text, "p.yaml")


def test_a_missing_file_and_an_unset_variable_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PositionsFileError, match="nope.yaml: cannot read"):
        read_positions_file(tmp_path / "nope.yaml")
    with pytest.raises(PositionsFileError, match="set ALLOCATOR_POSITIONS_FILE"):
        read_positions_file("")


def test_the_same_token_on_another_chain_is_another_token() -> None:
    text = positions_yaml("pool-a", "pool-b").replace(f'token: "{VAULT}"', f'token: "{ATOKEN}"')
    assert parse_positions(text, "p.yaml").pools["pool-b"].token == ATOKEN


def test_chain_names_can_be_added() -> None:
    text = positions_yaml("pool-a", "pool-b").replace("chain_id: 8453", "chain_id: 777")
    positions = parse_positions(text + "chains: {777: mychain}\n", "p.yaml")
    assert positions.price_key(777, VAULT) == f"mychain:{VAULT}"
