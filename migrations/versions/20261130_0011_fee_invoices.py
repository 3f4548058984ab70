"""invoices, invoice_counters, invoice_schedule: the platform's fee invoices (issue 13)

An invoice covers one merchant's fees over [period_start, period_end); its number comes from the
year's counter row, which every issuer locks first (no gap, no repeat); invoice_schedule records
how far the monthly issuing has gone.

Revision ID: 20261130_0011
Revises: 20261130_0010
Create Date: 2026-11-30 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261130_0011"
down_revision = "20261130_0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc(name: str) -> sa.Column[object]:
    return sa.Column(name, mobip.kit.db.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", _ID, nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        _utc("issued_at"),
        sa.Column("invoice_date", sa.String(length=10), nullable=False),
        _utc("period_start"),
        _utc("period_end"),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("seller_name", sa.String(length=255), nullable=False),
        sa.Column("seller_address", sa.String(length=1000), nullable=False),
        sa.Column("seller_vat_id", sa.String(length=64), nullable=False),
        sa.Column("buyer_uid", sa.String(length=40), nullable=False),
        sa.Column("buyer_name", sa.String(length=255), nullable=False),
        sa.Column("buyer_external_id", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("transactions_count", sa.BigInteger(), nullable=False),
        sa.Column("transactions_amount", sa.BigInteger(), nullable=False),
        sa.Column("fee_variable", sa.BigInteger(), nullable=False),
        sa.Column("fee_fixed", sa.BigInteger(), nullable=False),
        sa.Column("amount_excl_tax", sa.BigInteger(), nullable=False),
        sa.Column("vat_rate_bp", sa.Integer(), nullable=False),
        sa.Column("vat_amount", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_invoices_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_invoices_invoice_id")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
        sa.UniqueConstraint(
            "account_id",
            "period_start",
            "currency",
            name=op.f("uq_invoices_account_id_period_start_currency"),
        ),
    )
    op.create_index("ix_invoices_account_id_period_end", "invoices", ["account_id", "period_end"])
    op.create_table(
        "invoice_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_invoice_counters")),
    )
    op.create_table(
        "invoice_schedule",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        _utc("issued_through"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_schedule")),
    )


def downgrade() -> None:
    op.drop_table("invoice_schedule")
    op.drop_table("invoice_counters")
    op.drop_index("ix_invoices_account_id_period_end", table_name="invoices")
    op.drop_table("invoices")
