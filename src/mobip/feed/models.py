"""The partner feed's lines: one per payment and one per refund, until the partner acknowledges
them (docs/feed.md)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")
_PENDING = text("acked_at IS NULL")


class LineType(StrEnum):
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"


class FeedLine(Base):
    """One payment (positive amounts) or one refund (negative amounts, no fee: a refund does not
    return it) of a transaction; ``id`` is the feed's ``id_flux``, unique and increasing."""

    __tablename__ = "feed_lines"
    __table_args__ = (
        # The pending lines in id_flux order: every pull walks it, a partner's filtering its
        # subtree's account ids. No (account_id, id) index, on purpose: SQLite picks it for an
        # IN list of accounts and then sorts every pending line of the subtree at each page,
        # and picks it over the trid index for acknowledgements (docs/feed.md).
        Index("ix_feed_lines_pending", "id", sqlite_where=_PENDING, postgresql_where=_PENDING),
        # set_mobip_transactions acknowledges by trid.
        Index("ix_feed_lines_trid", "trid"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    trid: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(8))
    refund_id: Mapped[str | None] = mapped_column(String(40))
    # Minor units; a refund's are negative and amount = item_amount + tax_amount.
    amount: Mapped[int] = mapped_column(BigInteger)
    item_amount: Mapped[int] = mapped_column(BigInteger)
    tax_amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)  # amount - fee
    currency: Mapped[str] = mapped_column(String(3))
    event_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the partner acknowledged the line (set_mobip_transactions); NULL while pending.
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
