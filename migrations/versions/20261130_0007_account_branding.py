"""account_branding: a merchant's logo and accent colour

One row per account that has branding (accounts domain); the logo is stored sanitised.

Revision ID: 20261130_0007
Revises: 20261130_0006
Create Date: 2026-11-30 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261130_0007"
down_revision = "20261130_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_branding",
        sa.Column(
            "account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("accent_colour", sa.String(length=7), nullable=True),
        sa.Column("logo_content_type", sa.String(length=32), nullable=True),
        sa.Column("logo_sha256", sa.String(length=64), nullable=True),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", mobip.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_branding_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_branding")),
    )


def downgrade() -> None:
    op.drop_table("account_branding")
