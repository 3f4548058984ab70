"""reusable_qrs (create_reusable_qr, issue 12); transactions.qr_id and transactions.quantity

A reusable QR code is a product paid any number of times: each payment started on its page is
an ordinary transaction that records the QR it came from and the quantity bought.

Revision ID: 20261130_0009
Revises: 20261130_0008
Create Date: 2026-11-30 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261130_0009"
down_revision = "20261130_0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reusable_qrs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("qr_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("item_amount", sa.BigInteger(), nullable=False),
        sa.Column("tax_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("item_name", sa.String(length=255), nullable=False),
        sa.Column("item_message", sa.String(length=500), nullable=True),
        sa.Column("item_reference", sa.String(length=255), nullable=True),
        sa.Column("item_category", sa.String(length=255), nullable=True),
        sa.Column("item_brand", sa.String(length=255), nullable=True),
        sa.Column("item_photo", sa.Text(), nullable=False),
        sa.Column("photo_key", sa.String(length=80), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=80), nullable=False),
        sa.Column("photo_width", sa.Integer(), nullable=False),
        sa.Column("photo_height", sa.Integer(), nullable=False),
        sa.Column("item_video", sa.Text(), nullable=True),
        sa.Column("call_back_url", sa.Text(), nullable=True),
        sa.Column("redirect_url", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_reusable_qrs_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reusable_qrs")),
        sa.UniqueConstraint("qr_id", name=op.f("uq_reusable_qrs_qr_id")),
    )
    op.create_index("ix_reusable_qrs_account_id_id", "reusable_qrs", ["account_id", "id"])
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("qr_id", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("quantity", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_transactions_qr_id"), ["qr_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_qr_id"))
        batch_op.drop_column("quantity")
        batch_op.drop_column("qr_id")
    op.drop_index("ix_reusable_qrs_account_id_id", table_name="reusable_qrs")
    op.drop_table("reusable_qrs")
