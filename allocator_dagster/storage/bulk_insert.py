"""Bulk inserts of column-wise rows in the open transaction, the fastest way each driver has:
COPY on PostgreSQL (psycopg2), the driver's executemany with SQLAlchemy's bind processors on
SQLite, SQLAlchemy's executemany elsewhere. The stored values are those of
`conn.execute(table.insert(), rows)`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import sqlalchemy as sa


def insert_columns(
    conn: sa.Connection,
    table: sa.Table,
    columns: dict[str, list[Any]],
    constants: dict[str, Any],
) -> None:
    """One executemany INSERT of per-row `columns` plus `constants` (the same in every row).

    On qmark drivers (SQLite) the rows go straight to the cursor, with SQLAlchemy's own bind
    processors applied column by column: the same statement and stored values as
    `conn.execute(table.insert(), rows)`, without its per-row parameter handling (most of the
    time of a 1,000-row day). Elsewhere SQLAlchemy's executemany (batched on PostgreSQL).
    """
    names = [*columns, *constants]
    size = len(next(iter(columns.values()))) if columns else 0
    if size == 0:
        return
    dialect = conn.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        _copy_columns(conn, table, columns, constants, size)
        return
    if dialect.paramstyle != "qmark":
        rows = [
            {**dict(zip(columns, values, strict=True)), **constants}
            for values in zip(*columns.values(), strict=True)
        ]
        conn.execute(table.insert(), rows)
        return
    compiled = table.insert().compile(dialect=dialect, column_keys=names)
    processed: list[list[Any]] = []
    for name in compiled.positiontup or ():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if name in constants:
            value = constants[name] if process is None else process(constants[name])
            processed.append([value] * size)
        else:
            values = columns[name]
            if process is None:
                processed.append(values)
            elif isinstance(table.c[name].type, sa.JSON):
                processed.append(_json_texts(process, values))
            else:
                processed.append([process(v) for v in values])
    conn.exec_driver_sql(compiled.string, list(zip(*processed, strict=True)))


def _json_texts(encode: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    """`[encode(v) for v in values]` for a JSON column whose values repeat (token lists):
    each distinct list of str encoded once."""
    memo: dict[tuple[str, ...], Any] = {}
    out = []
    for v in values:
        if type(v) is list and all(type(t) is str for t in v):
            key = tuple(v)
            text = memo.get(key)
            if text is None:
                text = memo[key] = encode(v)
            out.append(text)
        else:
            out.append(encode(v))
    return out


def _csv_field(value: Any) -> str:
    """One CSV field for COPY: NULL is the unquoted empty field, text is always quoted (so an
    empty string stays a string), a float is its `repr` (the text psycopg2 sends for a bound
    float, so the stored value is that of an INSERT)."""
    if value is None:
        return ""
    if type(value) is bool:
        return "t" if value else "f"
    if type(value) is float or type(value) is int:
        return repr(value)
    text = value.isoformat() if isinstance(value, date) else str(value)
    return '"' + text.replace('"', '""') + '"'


def _csv_column(values: list[Any]) -> list[str]:
    """`[_csv_field(v) for v in values]`, with the common columns (numbers, text, each with
    nulls) written without a call per value."""
    kinds = set(map(type, values))
    if kinds <= {float, type(None)}:
        return ["" if v is None else float.__repr__(v) for v in values]
    if kinds <= {str, type(None)}:
        return ["" if v is None else '"' + v.replace('"', '""') + '"' for v in values]
    return [_csv_field(v) for v in values]


def _copy_columns(
    conn: sa.Connection,
    table: sa.Table,
    columns: dict[str, list[Any]],
    constants: dict[str, Any],
    size: int,
) -> None:
    """The same rows through PostgreSQL's COPY FROM STDIN (CSV), in the open transaction."""
    json_columns = {c.name for c in table.c if isinstance(c.type, sa.JSON)}
    names = [*columns, *constants]
    fields = [
        _csv_column(_json_texts(json.dumps, values) if name in json_columns else values)
        for name, values in columns.items()
    ]
    fields += [[_csv_field(value)] * size for value in constants.values()]
    buffer = io.StringIO("".join(",".join(row) + "\n" for row in zip(*fields, strict=True)))
    quote = conn.dialect.identifier_preparer.quote
    statement = (
        f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        "FROM STDIN WITH (FORMAT csv)"
    )
    dbapi = conn.dialect.loaded_dbapi
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(statement, buffer)
    except dbapi.Error as exc:  # as SQLAlchemy raises it for an INSERT (e.g. IntegrityError)
        raise sa.exc.DBAPIError.instance(
            statement, None, exc, dbapi.Error, dialect=conn.dialect
        ) from exc
    finally:
        cursor.close()
