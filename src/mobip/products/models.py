"""Reusable QR codes: one printed code per product, paid any number of times."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime


class QrStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class ReusableQr(Base):
    """A product behind one QR code: what the product page shows and what each payment costs."""

    __tablename__ = "reusable_qrs"
    # The merchant's list, newest first, keyset-paginated on id.
    __table_args__ = (Index("ix_reusable_qrs_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    qr_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(12))
    # Per unit, in minor units of the merchant's currency at creation.
    item_amount: Mapped[int] = mapped_column(BigInteger)
    tax_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    item_name: Mapped[str] = mapped_column(String(255))
    item_message: Mapped[str | None] = mapped_column(String(500))
    item_reference: Mapped[str | None] = mapped_column(String(255))
    item_category: Mapped[str | None] = mapped_column(String(255))
    item_brand: Mapped[str | None] = mapped_column(String(255))
    # The URL the photo was downloaded from, as given; the stored copies are named by their hash.
    item_photo: Mapped[str] = mapped_column(Text)
    photo_key: Mapped[str] = mapped_column(String(80))
    thumbnail_key: Mapped[str] = mapped_column(String(80))
    photo_width: Mapped[int] = mapped_column(Integer)
    photo_height: Mapped[int] = mapped_column(Integer)
    item_video: Mapped[str | None] = mapped_column(Text)
    call_back_url: Mapped[str | None] = mapped_column(Text)
    redirect_url: Mapped[str | None] = mapped_column(Text)
    # The product page's default language; None: the browser's Accept-Language decides.
    language: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def total_amount(self) -> int:
        return self.item_amount + self.tax_amount
