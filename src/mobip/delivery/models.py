"""The outbox table: messages to the outside world, written in the transaction that caused them."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class OutboxMessage(Base):
    """One message to send: claimed with a lease, run by its kind's handler, outcome recorded.

    ``attempts`` counts the times a worker claimed the message (a claim is an attempt even if the
    worker dies before recording the outcome, so a message that crashes workers still runs out of
    attempts); ``release`` gives an unstarted claim back without counting it.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # Serves the claim: status = 'pending' AND next_attempt_at <= now ORDER BY next_attempt_at.
        Index("ix_outbox_claim", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    # Where it goes: an e-mail address, a phone number, a callback URL (meaning depends on kind).
    target: Mapped[str] = mapped_column(Text)
    # JSON object, as text (see load_payload).
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    # What the message is about (e.g. a trid), so a transaction can list its messages.
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def load_payload(self) -> dict[str, Any]:
        """The payload as the dict given to ``enqueue``."""
        data: dict[str, Any] = json.loads(self.payload)
        return data

    def __repr__(self) -> str:
        return (
            f"<OutboxMessage id={self.id} kind={self.kind!r} status={self.status} "
            f"attempts={self.attempts}/{self.max_attempts}>"
        )


class AttemptOutcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


class OutboxAttempt(Base):
    """One recorded attempt at sending an outbox message: when, how long, what came back.

    Written in the same transaction as the message's outcome, so an attempt whose worker died
    before recording leaves no row (the message's ``attempts`` counter still counts it).
    """

    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("outbox.id", ondelete="CASCADE"),
        index=True,
    )
    number: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    # The first characters of the receiver's reply (never a secret of ours).
    response_excerpt: Mapped[str | None] = mapped_column(String(256))
    error: Mapped[str | None] = mapped_column(Text)


class CallbackSecret(Base):
    """An account's Standard Webhooks signing secret (``whsec_…``), encrypted at rest."""

    __tablename__ = "callback_secrets"

    account_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    )
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
