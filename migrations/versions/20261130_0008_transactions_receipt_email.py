"""transactions.receipt_email: the address a customer typed on the payment page for the receipt

A transaction created without customer_email (a one-use QR, a request sent by SMS) had no
receipt; the hosted page now asks for an optional address, kept here so the confirmation page
can say where the receipt went when the link is opened again.

Revision ID: 20261130_0008
Revises: 20261130_0007
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261130_0008"
down_revision = "20261130_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_email", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_column("receipt_email")
