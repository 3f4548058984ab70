"""Fee invoices, their yearly number counters and the monthly schedule's progress."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class Invoice(Base):
    """One merchant's fees over ``[period_start, period_end)``; never changed once issued.

    Everything printed is stored (seller and buyer included), so a later change of the settings
    or of the account does not change an issued invoice.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        # One invoice per account, currency and period start: a second issuer adds nothing.
        UniqueConstraint("account_id", "period_start", "currency"),
        # The account's list, newest first, and its chain's end (max period_end).
        Index("ix_invoices_account_id_period_end", "account_id", "period_end"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(40), unique=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The issue date in MOBIP_TIMEZONE, "YYYY-MM-DD" (invoice_date).
    invoice_date: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    # The zone the period's months were counted in (the PDF shows the period in it).
    timezone: Mapped[str] = mapped_column(String(64))
    seller_name: Mapped[str] = mapped_column(String(255))
    seller_address: Mapped[str] = mapped_column(String(1000))
    seller_vat_id: Mapped[str] = mapped_column(String(64))
    buyer_uid: Mapped[str] = mapped_column(String(40))
    buyer_name: Mapped[str] = mapped_column(String(255))
    buyer_external_id: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    # The lines: the PAID transactions (count, their totals), the percentage and the fixed part.
    transactions_count: Mapped[int] = mapped_column(BigInteger)
    transactions_amount: Mapped[int] = mapped_column(BigInteger)
    fee_variable: Mapped[int] = mapped_column(BigInteger)
    fee_fixed: Mapped[int] = mapped_column(BigInteger)
    amount_excl_tax: Mapped[int] = mapped_column(BigInteger)
    # MOBIP_FEE_VAT_RATE at issue, in hundredths of a percent (2000 = 20 %).
    vat_rate_bp: Mapped[int] = mapped_column(Integer)
    vat_amount: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)


class InvoiceCounter(Base):
    """The last number given in a year: the row every issuer locks, so numbers have no gap."""

    __tablename__ = "invoice_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(BigInteger)


class InvoiceSchedule(Base):
    """How far the monthly issuing has gone (one row): the month ends before it are done."""

    __tablename__ = "invoice_schedule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    issued_through: Mapped[datetime] = mapped_column(UTCDateTime())
