"""transactions.last_request_at: when the newest payment request was queued

The reminders' period counts from it. It was read from the outbox (the newest payment_request
row about the transaction); the transactions domain now keeps it on its own row, so its queries
no longer join a table that delivery owns. Filled here from that same outbox query.

Revision ID: 20261130_0006
Revises: 20261125_0005
Create Date: 2026-11-30 11:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261130_0006"
down_revision = "20261125_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_request_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=True)
        )
    # The outbox's kind "payment_request" (delivery.service.PAYMENT_REQUEST) covers the initial
    # request, manual resends and reminders alike.
    op.execute(
        """
        UPDATE transactions SET last_request_at = (
            SELECT max(outbox.created_at) FROM outbox
            WHERE outbox.subject = transactions.trid
              AND outbox.account_id = transactions.account_id
              AND outbox.kind = 'payment_request'
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_column("last_request_at")
