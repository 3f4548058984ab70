"""get_stats' tables: the event log, the daily aggregates kept from it, and the .gz files.

Both the log and the aggregates are written by the observer (service.observe) in the database
transaction of each change, so they never disagree with the transactions nor with each other.
A day is a calendar day of MOBIP_TIMEZONE, fixed when the event is filed (docs/stats.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class StatsEvent(Base):
    """One happening of one transaction (created, paid, refunded, cancelled, expired, denied,
    error): a line of the day's .gz file and the source the aggregates can be recounted from."""

    __tablename__ = "stats_events"
    __table_args__ = (
        # A day's file (by account, in event order) and the recounts.
        Index("ix_stats_events_account_id_day_id", "account_id", "day", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    trid: Mapped[str] = mapped_column(String(40))
    refund_id: Mapped[str | None] = mapped_column(String(40))
    happening: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The local date of ``at`` in MOBIP_TIMEZONE when filed, "YYYY-MM-DD".
    day: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(12))
    currency: Mapped[str] = mapped_column(String(3))
    # The transaction's total (a refund: the refund's amount), its fee (PAID only) and the net
    # (PAID: amount - fee; REFUNDED: -amount; others 0), minor units.
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)


class StatsDaily(Base):
    """The figures of one account's subtree (the account and every account below it), day,
    channel and currency: an event is added to the row of its account and of each ancestor, by
    an upsert in the same transaction, so any scope's month is read from its own rows (at most
    days x channels x currencies of them), however many merchants it has."""

    __tablename__ = "stats_daily"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    created_count: Mapped[int] = mapped_column(BigInteger)
    created_amount: Mapped[int] = mapped_column(BigInteger)
    paid_count: Mapped[int] = mapped_column(BigInteger)
    paid_amount: Mapped[int] = mapped_column(BigInteger)
    fees: Mapped[int] = mapped_column(BigInteger)
    refunded_count: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger)
    cancelled_count: Mapped[int] = mapped_column(BigInteger)
    expired_count: Mapped[int] = mapped_column(BigInteger)
    denied_count: Mapped[int] = mapped_column(BigInteger)
    error_count: Mapped[int] = mapped_column(BigInteger)


class StatsFile(Base):
    """A day's .gz file written for get_stats: where it is, whose, and until when its link
    works. The link's token is stored as its SHA-256 only."""

    __tablename__ = "stats_files"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    file_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    token_hash: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(1000))
    lines: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
