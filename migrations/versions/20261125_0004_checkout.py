"""checkout: payment attempts, provider events and webhooks, test accounts

Revision ID: 20261125_0004
Revises: 20261125_0003
Create Date: 2026-11-25 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261125_0004"
down_revision = "20261125_0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_test", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    op.create_table(
        "payment_attempts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("transaction_id", _ID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("card_brand", sa.String(length=16), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("provider_reference", sa.String(length=255), nullable=True),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_payment_attempts_transaction_id_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
    )
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_attempts_client_key"), ["client_key"])
        batch_op.create_index(batch_op.f("ix_payment_attempts_created_at"), ["created_at"])
        batch_op.create_index(
            batch_op.f("ix_payment_attempts_provider_reference"), ["provider_reference"]
        )
        batch_op.create_index(batch_op.f("ix_payment_attempts_transaction_id"), ["transaction_id"])

    op.create_table(
        "provider_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("received_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_provider_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_events")),
        sa.UniqueConstraint(
            "provider", "event_id", name=op.f("uq_provider_events_provider_event_id")
        ),
    )

    op.create_table(
        "provider_webhooks",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("endpoint_id", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_provider_webhooks_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_webhooks")),
        sa.UniqueConstraint("account_id", name=op.f("uq_provider_webhooks_account_id")),
    )


def downgrade() -> None:
    op.drop_table("provider_webhooks")
    op.drop_table("provider_events")
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_attempts_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_payment_attempts_provider_reference"))
        batch_op.drop_index(batch_op.f("ix_payment_attempts_created_at"))
        batch_op.drop_index(batch_op.f("ix_payment_attempts_client_key"))
    op.drop_table("payment_attempts")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("is_test")
