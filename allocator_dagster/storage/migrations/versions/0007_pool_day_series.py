"""pool_day_series: each stored pool day's forecast inputs packed in one row, filled from the
rows already stored (one day at a time, so memory stays that of one day).

The packing is `storage.day_series`' (`series_row`): the row a write of the day gives today.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from allocator_dagster.storage.day_series import SERIES_COLUMNS, series_row

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    series = op.create_table(
        "pool_day_series",
        sa.Column("metric_date", sa.Date(), nullable=False),
        sa.Column("pools", sa.Integer(), nullable=False),
        sa.Column("pool_ids", sa.LargeBinary(), nullable=False),
        sa.Column("tvl_usd", sa.LargeBinary(), nullable=False),
        sa.Column("apy", sa.LargeBinary(), nullable=False),
        sa.Column("apy_base", sa.LargeBinary(), nullable=False),
        sa.Column("apy_reward", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("pools > 0", name=op.f("ck_pool_day_series_pools_positive")),
        sa.PrimaryKeyConstraint("metric_date", name=op.f("pk_pool_day_series")),
    )
    assert series is not None
    metrics = sa.table(
        "pool_daily_metrics",
        sa.column("metric_date", sa.Date()),
        sa.column("pool_id", sa.String()),
        *(sa.column(c, sa.Float()) for c in SERIES_COLUMNS.values()),
    )
    conn = op.get_bind()
    days = conn.execute(
        sa.select(metrics.c.metric_date).distinct().order_by(metrics.c.metric_date)
    ).scalars()
    for day in list(days):
        fetched = conn.execute(
            sa.select(metrics.c.pool_id, *(metrics.c[c] for c in SERIES_COLUMNS.values())).where(
                metrics.c.metric_date == day
            )
        ).all()
        columns = list(zip(*fetched, strict=True))
        numbers = dict(zip(SERIES_COLUMNS.values(), columns[1:], strict=True))
        conn.execute(series.insert(), series_row(conn.dialect, day, list(columns[0]), numbers))


def downgrade() -> None:
    op.drop_table("pool_day_series")
