"""A vanished pool's exit has no group; an allocation may be feasible but not proven optimal.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("asset_allocation_details") as batch:
        batch.alter_column("pool_group", existing_type=sa.SmallInteger(), nullable=True)
    with op.batch_alter_table("asset_allocations") as batch:
        batch.drop_constraint(op.f("ck_asset_allocations_status_enum"), type_="check")
        batch.create_check_constraint(
            "status_enum", "status IN ('optimal', 'feasible', 'infeasible', 'failed')"
        )


def downgrade() -> None:
    with op.batch_alter_table("asset_allocations") as batch:
        batch.drop_constraint(op.f("ck_asset_allocations_status_enum"), type_="check")
        batch.create_check_constraint(
            "status_enum", "status IN ('optimal', 'infeasible', 'failed')"
        )
    with op.batch_alter_table("asset_allocation_details") as batch:
        batch.alter_column("pool_group", existing_type=sa.SmallInteger(), nullable=False)
