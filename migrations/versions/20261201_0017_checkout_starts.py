"""checkout_starts: the payments each client started from a product page or the customer portal

The per-client limit on those starts was counted in each server process's memory, so
`mobip serve --workers N` gave a client N budgets; the rows give every process one.

Revision ID: 20261201_0017
Revises: 20261130_0016
Create Date: 2026-12-01 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mobip.kit.db import UTCDateTime

revision = "20261201_0017"
down_revision = "20261130_0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkout_starts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_starts")),
    )
    op.create_index(
        "ix_checkout_starts_client_key_started_at",
        "checkout_starts",
        ["client_key", "started_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_checkout_starts_started_at"), "checkout_starts", ["started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_checkout_starts_started_at"), table_name="checkout_starts")
    op.drop_index("ix_checkout_starts_client_key_started_at", table_name="checkout_starts")
    op.drop_table("checkout_starts")
