"""Imports of a day's observed balances (`allocator balances import`): who, when, which file.

Revision ID: 0006
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "balance_imports",
        sa.Column("import_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ledger_date", sa.Date(), nullable=False),
        sa.Column("imported_by", sa.String(length=128), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_file", sa.String(length=512), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("total_usd", sa.Numeric(20, 2), nullable=False),
        sa.Column("replaced_source", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("import_id", name=op.f("pk_balance_imports")),
    )
    op.create_index(
        op.f("ix_balance_imports_ledger_date"), "balance_imports", ["ledger_date"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_balance_imports_ledger_date"), table_name="balance_imports")
    op.drop_table("balance_imports")
