"""Checkout tables: payment attempts, payments started from pages (the per-client limit),
provider events (webhook de-duplication), webhooks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime


class AttemptOutcome(StrEnum):
    PAID = "paid"
    DECLINED = "declined"
    ERROR = "error"
    # A redirect provider's payment was opened (the customer went to the provider's page).
    STARTED = "started"
    # The provider took a payment for a transaction another attempt had already paid.
    DUPLICATE = "duplicate"


class PaymentAttempt(Base):
    """One payment attempt: when, how it ended and why. Card data: brand and last 4 only."""

    __tablename__ = "payment_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    card_brand: Mapped[str | None] = mapped_column(String(16))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    provider_reference: Mapped[str | None] = mapped_column(String(255), index=True)
    # HMAC of the client address (rate limits per client without storing the address).
    client_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class PageStart(Base):
    """A payment a client started from a hosted page of another domain (a product's Pay, the
    customer portal's Pay). The per-client limit counts these rows, so every server process
    shares one budget; the worker deletes them once older than the attempt window."""

    __tablename__ = "checkout_starts"
    __table_args__ = (
        Index("ix_checkout_starts_client_key_started_at", "client_key", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # HMAC of the client address, as payment_attempts.client_key.
    client_key: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ProviderEvent(Base):
    """A provider webhook event already handled: the same event id is never applied twice."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProviderWebhook(Base):
    """The webhook endpoint MOBIP registered on a merchant's provider account, with its secret."""

    __tablename__ = "provider_webhooks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    endpoint_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # SHA-256 of the private key it was registered with: a new key registers again.
    key_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
