"""External invoices (issue 15): a merchant's sources, their customers and invoices, the status
mapping of each source, the import batches, and what settles the invoices (the links between a
transaction and the invoices its track_id lists, and the allocations of its payment)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class InvoiceStatus(StrEnum):
    """An invoice's MOBIP status (set_external_invoice_status maps the external codes to them)."""

    PENDING = "pending"  # not yet due
    DUE = "due"
    FULLY_PAID = "fully_paid"
    PARTIALLY_PAID = "partially_paid"


class ExternalSource(Base):
    """One of a merchant's external systems (``ExternalSourceId``), created by its first import
    or mapping; another merchant's source of the same id is another row."""

    __tablename__ = "external_sources"
    __table_args__ = (UniqueConstraint("account_id", "source_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    source_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExternalStatusCode(Base):
    """One external status code of a source and the MOBIP status it means (an external code
    means one MOBIP status: the primary key says so)."""

    __tablename__ = "external_status_codes"

    source_pk: Mapped[int] = mapped_column(
        ForeignKey("external_sources.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    mobip_status: Mapped[str] = mapped_column(String(16))
    # The order the codes were given in (the first code of a status is the one read back).
    position: Mapped[int] = mapped_column(Integer)


class ExternalBatch(Base):
    """An import's ``BatchId`` and its reply: the same BatchId again is answered with it."""

    __tablename__ = "external_batches"
    __table_args__ = (UniqueConstraint("source_pk", "batch_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    source_pk: Mapped[int] = mapped_column(ForeignKey("external_sources.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(String(64))
    reply: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExternalCustomer(Base):
    """A customer of a source, as last imported, with its credit (overpayments) and the public
    half of its portal token (the other half is an HMAC of it: see service.portal_token)."""

    __tablename__ = "external_customers"
    __table_args__ = (UniqueConstraint("source_pk", "customer_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    source_pk: Mapped[int] = mapped_column(ForeignKey("external_sources.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164
    email: Mapped[str | None] = mapped_column(String(320))
    balance: Mapped[int | None] = mapped_column(BigInteger)  # CustomerBalance_in_cents
    balance_date: Mapped[date | None] = mapped_column(Date)
    # What MOBIP received beyond the invoices a payment listed (minor units, never negative).
    credit: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    portal_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExternalInvoice(Base):
    """An invoice of a source (``InvId`` unique within it), as last imported, with what MOBIP
    payments settled of it."""

    __tablename__ = "external_invoices"
    __table_args__ = (
        UniqueConstraint("source_pk", "inv_id"),
        # Settlement finds a track_id's ids among all of a merchant's sources.
        Index("ix_external_invoices_account_id_inv_id", "account_id", "inv_id"),
        Index("ix_external_invoices_customer_pk_due_date", "customer_pk", "due_date"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    source_pk: Mapped[int] = mapped_column(ForeignKey("external_sources.id", ondelete="CASCADE"))
    customer_pk: Mapped[int] = mapped_column(
        ForeignKey("external_customers.id", ondelete="CASCADE")
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    inv_id: Mapped[str] = mapped_column(String(64))
    inv_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    label: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    external_status: Mapped[str | None] = mapped_column(String(64))
    # Settled by MOBIP payments (allocations less their reversals), minor units.
    paid_amount: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # When MOBIP payments last covered it in full (None while not fully paid by MOBIP).
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExternalInvoiceChange(Base):
    """An invoice's values before a re-import changed them (its history)."""

    __tablename__ = "external_invoice_changes"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    invoice_pk: Mapped[int] = mapped_column(
        ForeignKey("external_invoices.id", ondelete="CASCADE"), index=True
    )
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    batch_id: Mapped[str | None] = mapped_column(String(64))
    customer_pk: Mapped[int] = mapped_column(BigInteger)
    inv_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    label: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    external_status: Mapped[str | None] = mapped_column(String(64))


class PaymentLink(Base):
    """A transaction whose track_id lists this invoice (linked when it is created)."""

    __tablename__ = "external_payment_links"

    trid: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_pk: Mapped[int] = mapped_column(
        ForeignKey("external_invoices.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Allocation(Base):
    """Part of a paid transaction given to an invoice, or (no invoice) to its customer's credit;
    a refund reverses them, the last allocated first (``reversed_amount``)."""

    __tablename__ = "external_allocations"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    trid: Mapped[str] = mapped_column(String(40), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    invoice_pk: Mapped[int | None] = mapped_column(
        ForeignKey("external_invoices.id", ondelete="CASCADE")
    )
    customer_pk: Mapped[int] = mapped_column(
        ForeignKey("external_customers.id", ondelete="CASCADE")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    reversed_amount: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
