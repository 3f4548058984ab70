"""Transactions, their status history, and the status machine's table."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime


class TransactionStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    DENIED = "DENIED"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


# The status machine, in one table: PENDING may become any final status; final ones never change.
TRANSITIONS: dict[TransactionStatus, frozenset[TransactionStatus]] = {
    TransactionStatus.PENDING: frozenset(
        {
            TransactionStatus.PAID,
            TransactionStatus.DENIED,
            TransactionStatus.CANCELLED,
            TransactionStatus.ERROR,
        }
    ),
    TransactionStatus.PAID: frozenset(),
    TransactionStatus.DENIED: frozenset(),
    TransactionStatus.CANCELLED: frozenset(),
    TransactionStatus.ERROR: frozenset(),
}


class Media(StrEnum):
    SMS = "SMS"
    EMAIL = "EMAIL"


class TransactionKind(StrEnum):
    PAYMENT_REQUEST = "payment_request"
    ONE_USE_QR = "one_use_qr"
    # Started on a reusable QR code's product page (products/): one per customer who pays.
    PRODUCT_PAYMENT = "product_payment"
    # Started on an imported customer's invoice portal (receivables/): pays the invoices ticked.
    INVOICE_PORTAL = "invoice_portal"


class Transaction(Base):
    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    trid: Mapped[str] = mapped_column(String(40), unique=True)
    checkout_token: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(64))
    item_amount: Mapped[int] = mapped_column(BigInteger)
    tax_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    item_name: Mapped[str] = mapped_column(String(255))
    track_id: Mapped[str | None] = mapped_column(String(255))
    customer_name: Mapped[str | None] = mapped_column(String(255))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_phone: Mapped[str | None] = mapped_column(String(20))
    media: Mapped[str | None] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(2))
    redirect_url: Mapped[str] = mapped_column(Text)
    call_back_url: Mapped[str | None] = mapped_column(Text)
    retry_period_days: Mapped[int] = mapped_column(Integer)
    retry_attempts: Mapped[int] = mapped_column(Integer)
    automatic_resends: Mapped[int] = mapped_column(Integer, default=0)
    manual_resends: Mapped[int] = mapped_column(Integer, default=0)
    ttl_days: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    payment_method: Mapped[str | None] = mapped_column(String(64))
    is_refunded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the newest payment request (initial, manual or reminder) was queued: the reminders'
    # period counts from it. None for a one-use QR, which sends none.
    last_request_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The address the customer typed on the payment page for the receipt (a transaction without
    # customer_email); None when none was typed.
    receipt_email: Mapped[str | None] = mapped_column(String(320))
    # A payment started on a reusable QR code's product page: the QR's id and the quantity
    # bought (the amounts are the unit's times the quantity). Other transactions: None and 1.
    qr_id: Mapped[str | None] = mapped_column(String(40), index=True)
    quantity: Mapped[int] = mapped_column(Integer, server_default=text("1"), default=1)
    # Set once, when the transaction becomes PAID (service.mark_paid), never recomputed
    # (docs/fees.md): when, the schedule in force then (basis points, fixed minor units) and the
    # fee it gave, split in its percentage and fixed parts after the cap at the total.
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    fee_bp: Mapped[int | None] = mapped_column(Integer)
    fee_fixed: Mapped[int | None] = mapped_column(BigInteger)
    fee_variable: Mapped[int | None] = mapped_column(BigInteger)
    fee_fixed_part: Mapped[int | None] = mapped_column(BigInteger)
    fee: Mapped[int | None] = mapped_column(BigInteger)
    # The sum of the transaction's succeeded refunds (is_refunded once it reaches the total).
    refunded_amount: Mapped[int] = mapped_column(BigInteger, server_default=text("0"), default=0)

    @property
    def total_amount(self) -> int:
        return self.item_amount + self.tax_amount


class TransactionEvent(Base):
    """The status history: one row per status a transaction took, with its time and reason."""

    __tablename__ = "transaction_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class RefundStatus(StrEnum):
    # Reserved before the provider is called (its amount counts against what is left), then
    # SUCCEEDED once the provider took it; a refused one is deleted (nothing recorded).
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"


class RefundSource(StrEnum):
    API = "api"  # refund_transaction
    PROVIDER = "provider"  # made in the provider's dashboard, learnt from its webhook


class Refund(Base):
    """One refund of a PAID transaction: our id, the amount, when, and the provider's id."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("provider", "provider_reference"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(40), unique=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(12))
    provider: Mapped[str] = mapped_column(String(16))
    # The provider's id of the refund (Stripe re_…); None while PENDING.
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
