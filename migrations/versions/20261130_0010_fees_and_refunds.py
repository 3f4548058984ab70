"""Fees and refunds (issue 13): accounts' fee schedules, each PAID transaction's fee, refunds

An account's fee schedule is two nullable columns (None: inherited). A transaction gets its
paid_at and its fee (the schedule used and the two parts after the cap) once, when it becomes
PAID, and the running sum of its refunds; each refund is a row of ``refunds``.

Revision ID: 20261130_0010
Revises: 20261130_0009
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261130_0010"
down_revision = "20261130_0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fee_bp", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("fee_fixed", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paid_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("fee_bp", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("fee_fixed", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("fee_variable", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("fee_fixed_part", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("fee", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "refunded_amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False
            )
        )
        batch_op.create_index(batch_op.f("ix_transactions_paid_at"), ["paid_at"], unique=False)
    # Transactions PAID before fees existed: paid when their status last changed, with no fee.
    op.execute(
        "UPDATE transactions SET paid_at = status_changed_at, fee_bp = 0, fee_fixed = 0, "
        "fee_variable = 0, fee_fixed_part = 0, fee = 0 WHERE status = 'PAID'"
    )
    op.create_table(
        "refunds",
        sa.Column("id", _ID, nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=False),
        sa.Column("transaction_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_reference", sa.String(length=255), nullable=True),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refunded_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_refunds_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_refunds_transaction_id_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_refunds_refund_id")),
        sa.UniqueConstraint(
            "provider", "provider_reference", name=op.f("uq_refunds_provider_provider_reference")
        ),
    )
    op.create_index(op.f("ix_refunds_account_id"), "refunds", ["account_id"], unique=False)
    op.create_index(op.f("ix_refunds_transaction_id"), "refunds", ["transaction_id"], unique=False)


def downgrade() -> None:
    # SQLite drops the columns in place (ALTER TABLE … DROP COLUMN, SQLite 3.35+): recreating
    # accounts or transactions would trip (or cascade through) the foreign keys pointing at them.
    op.drop_index(op.f("ix_refunds_transaction_id"), table_name="refunds")
    op.drop_index(op.f("ix_refunds_account_id"), table_name="refunds")
    op.drop_table("refunds")
    with op.batch_alter_table("transactions", schema=None, recreate="never") as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_paid_at"))
        batch_op.drop_column("refunded_amount")
        batch_op.drop_column("fee")
        batch_op.drop_column("fee_fixed_part")
        batch_op.drop_column("fee_variable")
        batch_op.drop_column("fee_fixed")
        batch_op.drop_column("fee_bp")
        batch_op.drop_column("paid_at")
    with op.batch_alter_table("accounts", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("fee_fixed")
        batch_op.drop_column("fee_bp")
