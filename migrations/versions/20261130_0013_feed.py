"""feed_lines: the partner feed's lines, one per payment and one per refund (issue 14)

id is the feed's id_flux (unique, increasing); acked_at stays NULL until the partner
acknowledges the line (set_mobip_transactions). A partial index serves the pulls of the pending
lines in id order (a partner's filters its accounts), one on trid the acknowledgements.

Revision ID: 20261130_0013
Revises: 20261130_0012
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261130_0013"
down_revision = "20261130_0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_PENDING = sa.text("acked_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "feed_lines",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("trid", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("item_amount", sa.BigInteger(), nullable=False),
        sa.Column("tax_amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("event_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acked_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_feed_lines_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_lines")),
    )
    op.create_index(
        "ix_feed_lines_pending",
        "feed_lines",
        ["id"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_index("ix_feed_lines_trid", "feed_lines", ["trid"])


def downgrade() -> None:
    op.drop_index("ix_feed_lines_trid", table_name="feed_lines")
    op.drop_index("ix_feed_lines_pending", table_name="feed_lines")
    op.drop_table("feed_lines")
