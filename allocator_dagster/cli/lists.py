"""`allocator lists show|add|remove LIST [VALUE] --reason TEXT --by NAME`."""

from __future__ import annotations

import click

from allocator_dagster.cli.options import database_url_option, fail
from allocator_dagster.dynamic_lists import LIST_KINDS
from allocator_dagster.storage import StorageError, get_engine
from allocator_dagster.storage.lists import ListChangeError, change_list, list_entries
from allocator_dagster.terminal import shown

LIST_CHOICE = click.Choice(sorted(LIST_KINDS))


@click.group("lists")
def command() -> None:
    """Show and change the dynamic lists (every change is recorded with who, when and why)."""


@command.command("show")
@click.argument("list_kind", type=LIST_CHOICE)
@database_url_option
def show(list_kind: str, database_url: str | None) -> None:
    """Print the entries of one list."""
    try:
        rows = list_entries(get_engine(database_url), LIST_KINDS[list_kind])
    except StorageError as exc:
        fail(exc)
    if not rows:
        click.echo(f"{list_kind}: empty")
    for row in rows:
        click.echo(
            f"{shown(row['value']):<48} added {row['added_at']:%Y-%m-%d %H:%M} "
            f"by {shown(row['added_by'])}: {shown(row['reason'])}"
        )


def _change(
    action: str, list_kind: str, value: str, reason: str, by: str, database_url: str | None
) -> None:
    try:
        change = change_list(
            get_engine(database_url),
            LIST_KINDS[list_kind],
            value,
            action=action,
            reason=reason,
            by=by,
        )
    except (ListChangeError, StorageError) as exc:
        fail(exc)
    verb = "added to" if action == "add" else "removed from"
    click.echo(
        f"{shown(change.value)} {verb} {list_kind} "
        f"(change #{change.change_id} by {shown(change.changed_by)})"
    )


CHANGE_HELP = {
    "add": "Add VALUE to a list (approve a token or protocol, blacklist or icebox a token).",
    "remove": "Remove VALUE from a list.",
}
VALUE_HELP = (
    "VALUE is a token (an EVM address 0x + 40 hex digits, a chain-prefixed address, "
    "coingecko:ID, a base58 mint, or a symbol such as USDC) or, for approved-protocols, a "
    "DefiLlama project slug (aave-v3). The change is recorded with --reason and --by; the "
    "list-change sensor turns a change that makes a held pool ineligible into a forced "
    "reallocation of today."
)


def _change_command(action: str):
    @command.command(action, help=f"{CHANGE_HELP[action]}\n\n{VALUE_HELP}")
    @click.argument("list_kind", type=LIST_CHOICE)
    @click.argument("value")
    @click.option("--reason", required=True, help="Why (kept in the change history).")
    @click.option("--by", "by", required=True, help="Who makes the change.")
    @database_url_option
    def run(list_kind: str, value: str, reason: str, by: str, database_url: str | None) -> None:
        _change(action, list_kind, value, reason, by, database_url)

    return run


add = _change_command("add")
remove = _change_command("remove")
