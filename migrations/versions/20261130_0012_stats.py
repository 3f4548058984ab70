"""get_stats' daily aggregates, event log and files (issue 14)

stats_events: one row per happening of a transaction (created, paid, refunded, cancelled,
expired, denied, error) under its local day; stats_daily: their sums by account, day, channel
and currency, kept by the same unit of work; stats_files: the .gz files of get_stats, 24 hours.
The tables start empty; 20261130_0015 fills them from the existing history (docs/stats.md).

Revision ID: 20261130_0012
Revises: 20261130_0011
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mobip.kit.db

revision = "20261130_0012"
down_revision = "20261130_0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc(name: str) -> sa.Column[object]:
    return sa.Column(name, mobip.kit.db.UTCDateTime(timezone=True), nullable=False)


def _count(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def _account(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts")
    )


def upgrade() -> None:
    op.create_table(
        "stats_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("trid", sa.String(length=40), nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("happening", sa.String(length=12), nullable=False),
        _utc("at"),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _count("amount"),
        _count("fee"),
        _count("net"),
        _account("stats_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_events")),
    )
    op.create_index(
        "ix_stats_events_account_id_day_id", "stats_events", ["account_id", "day", "id"]
    )
    op.create_table(
        "stats_daily",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *(
            _count(name)
            for name in (
                "created_count",
                "created_amount",
                "paid_count",
                "paid_amount",
                "fees",
                "refunded_count",
                "refunded_amount",
                "cancelled_count",
                "expired_count",
                "denied_count",
                "error_count",
            )
        ),
        _account("stats_daily"),
        sa.PrimaryKeyConstraint(
            "account_id", "day", "channel", "currency", name=op.f("pk_stats_daily")
        ),
    )
    op.create_table(
        "stats_files",
        sa.Column("id", _ID, nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        _utc("created_at"),
        _utc("expires_at"),
        _account("stats_files"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_files")),
        sa.UniqueConstraint("file_id", name=op.f("uq_stats_files_file_id")),
    )
    op.create_index(op.f("ix_stats_files_expires_at"), "stats_files", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_stats_files_expires_at"), table_name="stats_files")
    op.drop_table("stats_files")
    op.drop_table("stats_daily")
    op.drop_index("ix_stats_events_account_id_day_id", table_name="stats_events")
    op.drop_table("stats_events")
