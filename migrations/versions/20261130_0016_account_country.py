"""accounts.country: where the merchant is (ISO 3166-1 alpha-2), FR for the existing accounts

An imported customer's national phone number is read in its merchant's country (issue 15); until
now every account was taken as French, so the existing ones keep FR.

Revision ID: 20261130_0016
Revises: 20261130_0015
Create Date: 2026-11-30 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261130_0016"
down_revision = "20261130_0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("country", sa.String(length=2), nullable=False, server_default="FR")
        )


def downgrade() -> None:
    # SQLite's own DROP COLUMN (3.35+): a batch copy of accounts would trip the foreign keys
    # pointing at it (as in 20261130_0010).
    with op.batch_alter_table("accounts", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("country")
