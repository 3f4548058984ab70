"""Idempotency-Key: a repeated create returns the first reply byte for byte and creates nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Integer, LargeBinary, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from mobip.api.envelope import Params
from mobip.kit.db import Base, UTCDateTime, insert_unless_present
from mobip.kit.errors import IdempotencyKeyInProgress, IdempotencyKeyReused, InvalidField

HEADER = "idempotency-key"
MAX_KEY_CHARS = 255
TTL = timedelta(hours=24)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_uid", "key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_uid: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(MAX_KEY_CHARS))
    endpoint: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


@dataclass(frozen=True)
class StoredReply:
    status_code: int
    content_type: str
    body: bytes


def read_key(raw: str | None) -> str | None:
    """The Idempotency-Key header, checked: printable ASCII, at most 255 characters."""
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise InvalidField(
            "Idempotency-Key", f"must be 1 to {MAX_KEY_CHARS} printable ASCII characters"
        )
    return key


def request_fingerprint(endpoint: str, params: Params) -> str:
    """What makes two requests "the same": endpoint and parameters, except the access token."""
    fields = {name: params.raw(name) for name in sorted(params.names()) if name != "access_token"}
    blob = json.dumps([endpoint, fields], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def claim(
    session: Session, *, account_uid: str, key: str, endpoint: str, fingerprint: str, now: datetime
) -> StoredReply | None:
    """Take the key for this request, or return the reply stored under it.

    The insert waits on a concurrent holder of the same key (PostgreSQL: unique-index wait;
    SQLite: the write lock), so of 20 simultaneous requests one runs and 19 replay its reply.
    """
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.account_uid == account_uid,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at <= now - TTL,
        )
    )
    if insert_unless_present(
        session,
        IdempotencyRecord,
        ("account_uid", "key"),
        account_uid=account_uid,
        key=key,
        endpoint=endpoint,
        request_hash=fingerprint,
        created_at=now,
    ):
        return None
    record = session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.account_uid == account_uid, IdempotencyRecord.key == key
        )
    ).one()
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    if record.body is None:
        # The same request still running (an endpoint whose reply waits on a call outside the
        # database, api/routing's CallOutside): it must not run twice.
        raise IdempotencyKeyInProgress()
    return StoredReply(record.status_code or 200, record.content_type or "", record.body)


def release(session: Session, *, account_uid: str, key: str) -> None:
    """Give the key back (its request failed and left nothing done): the same request may be
    sent again."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.account_uid == account_uid, IdempotencyRecord.key == key
        )
    )


def store(session: Session, *, account_uid: str, key: str, reply: StoredReply) -> None:
    """Keep the reply under the key, in the same transaction as the work it describes."""
    record = session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.account_uid == account_uid, IdempotencyRecord.key == key
        )
    ).one()
    record.status_code = reply.status_code
    record.content_type = reply.content_type
    record.body = reply.body
    session.flush()
