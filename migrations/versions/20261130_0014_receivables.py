"""external invoices: sources, customers, invoices, status mappings, settlement (issue 15)

external_sources holds each merchant's ExternalSourceIds; external_status_codes the mapping of a
source's status codes to MOBIP's four; external_batches the BatchIds already imported (and their
reply); external_customers and external_invoices what was imported (external_invoice_changes the
values a re-import replaced); external_payment_links the invoices a transaction's track_id lists,
external_allocations what its payment gave each of them (or the customer's credit).

Revision ID: 20261130_0014
Revises: 20261130_0013
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261130_0014"
down_revision = "20261130_0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "external_sources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_external_sources_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_sources")),
        sa.UniqueConstraint(
            "account_id", "source_id", name=op.f("uq_external_sources_account_id_source_id")
        ),
    )
    op.create_table(
        "external_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "source_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_pk"],
            ["external_sources.id"],
            name=op.f("fk_external_batches_source_pk_external_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_batches")),
        sa.UniqueConstraint(
            "source_pk", "batch_id", name=op.f("uq_external_batches_source_pk_batch_id")
        ),
    )
    op.create_table(
        "external_customers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "source_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("balance", sa.BigInteger(), nullable=True),
        sa.Column("balance_date", sa.Date(), nullable=True),
        sa.Column("credit", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("portal_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_external_customers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["source_pk"],
            ["external_sources.id"],
            name=op.f("fk_external_customers_source_pk_external_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_customers")),
        sa.UniqueConstraint("portal_id", name=op.f("uq_external_customers_portal_id")),
        sa.UniqueConstraint(
            "source_pk", "customer_id", name=op.f("uq_external_customers_source_pk_customer_id")
        ),
    )
    op.create_index(
        op.f("ix_external_customers_account_id"), "external_customers", ["account_id"], unique=False
    )
    op.create_table(
        "external_status_codes",
        sa.Column(
            "source_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("mobip_status", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_pk"],
            ["external_sources.id"],
            name=op.f("fk_external_status_codes_source_pk_external_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_pk", "code", name=op.f("pk_external_status_codes")),
    )
    op.create_table(
        "external_invoices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "source_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("inv_id", sa.String(length=64), nullable=False),
        sa.Column("inv_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("external_status", sa.String(length=64), nullable=True),
        sa.Column("paid_amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("paid_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_external_invoices_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["external_customers.id"],
            name=op.f("fk_external_invoices_customer_pk_external_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_pk"],
            ["external_sources.id"],
            name=op.f("fk_external_invoices_source_pk_external_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_invoices")),
        sa.UniqueConstraint(
            "source_pk", "inv_id", name=op.f("uq_external_invoices_source_pk_inv_id")
        ),
    )
    op.create_index(
        "ix_external_invoices_account_id_inv_id",
        "external_invoices",
        ["account_id", "inv_id"],
        unique=False,
    )
    op.create_index(
        "ix_external_invoices_customer_pk_due_date",
        "external_invoices",
        ["customer_pk", "due_date"],
        unique=False,
    )
    op.create_table(
        "external_allocations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("trid", sa.String(length=40), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "invoice_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "customer_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reversed_amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_external_allocations_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["external_customers.id"],
            name=op.f("fk_external_allocations_customer_pk_external_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_pk"],
            ["external_invoices.id"],
            name=op.f("fk_external_allocations_invoice_pk_external_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_allocations")),
    )
    op.create_index(
        op.f("ix_external_allocations_trid"), "external_allocations", ["trid"], unique=False
    )
    op.create_table(
        "external_invoice_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "invoice_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("changed_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("customer_pk", sa.BigInteger(), nullable=False),
        sa.Column("inv_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("external_status", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_pk"],
            ["external_invoices.id"],
            name=op.f("fk_external_invoice_changes_invoice_pk_external_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_invoice_changes")),
    )
    op.create_index(
        op.f("ix_external_invoice_changes_invoice_pk"),
        "external_invoice_changes",
        ["invoice_pk"],
        unique=False,
    )
    op.create_table(
        "external_payment_links",
        sa.Column("trid", sa.String(length=40), nullable=False),
        sa.Column(
            "invoice_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_external_payment_links_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_pk"],
            ["external_invoices.id"],
            name=op.f("fk_external_payment_links_invoice_pk_external_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trid", "invoice_pk", name=op.f("pk_external_payment_links")),
    )


def downgrade() -> None:
    op.drop_table("external_payment_links")
    op.drop_index(
        op.f("ix_external_invoice_changes_invoice_pk"), table_name="external_invoice_changes"
    )
    op.drop_table("external_invoice_changes")
    op.drop_index(op.f("ix_external_allocations_trid"), table_name="external_allocations")
    op.drop_table("external_allocations")
    op.drop_index("ix_external_invoices_customer_pk_due_date", table_name="external_invoices")
    op.drop_index("ix_external_invoices_account_id_inv_id", table_name="external_invoices")
    op.drop_table("external_invoices")
    op.drop_table("external_status_codes")
    op.drop_index(op.f("ix_external_customers_account_id"), table_name="external_customers")
    op.drop_table("external_customers")
    op.drop_table("external_batches")
    op.drop_table("external_sources")
