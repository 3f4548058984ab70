"""the partner feed's lines (issue 14)

Revision ID: 20261130_0013
Revises: 20261130_0012
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

revision = "20261130_0013"
down_revision = "20261130_0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
