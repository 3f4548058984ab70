"""Outbox rules: adding a message in the caller's transaction, and when to retry a failed one."""

from __future__ import annotations

import base64
import json
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from mobip.delivery import repository
from mobip.delivery.models import CallbackSecret, OutboxAttempt, OutboxMessage, OutboxStatus
from mobip.kit.clock import Clock
from mobip.kit.db import insert_new
from mobip.kit.security import Encryptor


class Jitter(StrEnum):
    # uniform(0, exponential delay): spreads retries the most (AWS "full jitter").
    FULL = "full"
    # uniform(base, 3 x the previous exponential delay): never sooner than base.
    DECORRELATED = "decorrelated"
    # uniform(0.8, 1.2) x the exponential delay: spread, yet a known least total (callbacks).
    PROPORTIONAL = "proportional"


@dataclass(frozen=True)
class RetryPolicy:
    """How a kind is retried: delays ``base * 2**(n-1)``, jittered, capped at ``cap``."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    jitter: Jitter = Jitter.FULL

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("need 0 < base <= cap")


DEFAULT_POLICY = RetryPolicy()


def _exponential(policy: RetryPolicy, failures: int) -> timedelta:
    # Doubling past the cap only risks an OverflowError; stop at the cap.
    delay = policy.base
    for _ in range(failures - 1):
        if delay >= policy.cap:
            break
        delay *= 2
    return min(delay, policy.cap)


def backoff_bounds(policy: RetryPolicy, failures: int) -> tuple[timedelta, timedelta]:
    """The range ``backoff_delay`` draws from after the ``failures``-th failed attempt (>= 1)."""
    if failures < 1:
        raise ValueError("failures must be at least 1")
    if policy.jitter is Jitter.FULL:
        return timedelta(0), _exponential(policy, failures)
    if policy.jitter is Jitter.PROPORTIONAL:
        delay = _exponential(policy, failures)
        return delay * 0.8, delay * 1.2
    previous = _exponential(policy, failures - 1) if failures > 1 else policy.base
    return policy.base, min(policy.cap, previous * 3)


def backoff_delay(
    policy: RetryPolicy, failures: int, rng: random.Random | None = None
) -> timedelta:
    """How long to wait before the next attempt, after the ``failures``-th failed attempt.

    Exponential, capped, with the policy's jitter so that messages that failed together (a
    receiver down) do not come back together. Decorrelated jitter is computed from the
    un-jittered previous delay, so it needs no state beyond the attempt count.
    """
    low, high = backoff_bounds(policy, failures)
    fraction = (rng or random).random()
    return low + (high - low) * fraction


class NewMessage(TypedDict):
    """A message to add: ``target`` is an address, a phone number or a URL, per ``kind``.

    ``max_attempts`` is fixed on the row: pass the kind's ``RetryPolicy.max_attempts``.
    ``not_before`` delays the first attempt; ``subject`` says what it is about (e.g. a trid).
    """

    kind: str
    target: str
    payload: Mapping[str, Any]
    clock: Clock
    account_id: NotRequired[int | None]
    subject: NotRequired[str | None]
    max_attempts: NotRequired[int]
    not_before: NotRequired[datetime | None]


def enqueue(session: Session, **message: Unpack[NewMessage]) -> OutboxMessage:
    """Add a message to the outbox in the caller's session; it is sent only if the caller commits.

    Inserts at once (so the id is known) but never commits.
    """
    return insert_message(session, message_values(**message))


def message_values(**message: Unpack[NewMessage]) -> dict[str, Any]:
    """The outbox row of a new message, to insert in the transaction of the change causing it."""
    kind = message["kind"]
    max_attempts = message.get("max_attempts", DEFAULT_POLICY.max_attempts)
    if not kind or len(kind) > 64:
        raise ValueError("kind must be 1 to 64 characters")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    now = message["clock"].now()
    return {
        "kind": kind,
        "target": message["target"],
        "payload": json.dumps(dict(message["payload"]), separators=(",", ":"), sort_keys=True),
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "next_attempt_at": message.get("not_before") or now,
        "account_id": message.get("account_id"),
        "subject": message.get("subject"),
        "created_at": now,
        "updated_at": now,
    }


def insert_messages(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert message_values rows on ``conn``, in the caller's transaction (a batch of creates)."""
    repository.insert_many(conn, rows)


def insert_message(session: Session, values: Mapping[str, Any]) -> OutboxMessage:
    """Insert a message_values row in the caller's session (never commits); returns it, with id.

    One Core INSERT: on every create request's path the ORM's unit of work cost several times
    the statement. The returned object is not attached to the session.
    """
    message = OutboxMessage(**values)
    insert_new(session, message)
    return message


# --- the messages MOBIP sends (their senders are registered by the delivery worker) ------------

PAYMENT_REQUEST = "payment_request"
CALLBACK = "callback"
RECEIPT = "receipt"
MESSAGE_MAX_ATTEMPTS = 8
CALLBACK_MAX_ATTEMPTS = 12
# E-mail and SMS: 8 attempts over about two hours (delays drawn up to 1, 2, 4 … 60 minutes).
MESSAGE_POLICY = RetryPolicy(
    max_attempts=MESSAGE_MAX_ATTEMPTS, base=timedelta(minutes=1), cap=timedelta(hours=1)
)


def queue_payment_request(
    session: Session,
    *,
    media: str,
    target: str,
    trid: str,
    occasion: str,
    account_id: int,
    clock: Clock,
) -> OutboxMessage:
    """The payment request (``occasion``: initial, manual or reminder) by e-mail or SMS."""
    values = payment_request_message(
        media=media, target=target, trid=trid, occasion=occasion, account_id=account_id, clock=clock
    )
    return insert_message(session, values)


def payment_request_message(
    *,
    media: str,
    target: str,
    trid: str,
    occasion: str,
    account_id: int,
    clock: Clock,
    portal_url: str | None = None,
) -> dict[str, Any]:
    """queue_payment_request's outbox row, for a caller that inserts it with other rows;
    ``portal_url``: an imported customer's invoice portal, which the message links to."""
    payload = {"trid": trid, "media": media, "occasion": occasion}
    if portal_url is not None:
        payload["portal_url"] = portal_url
    return message_values(
        kind=PAYMENT_REQUEST,
        target=target,
        payload=payload,
        clock=clock,
        account_id=account_id,
        subject=trid,
        max_attempts=MESSAGE_MAX_ATTEMPTS,
    )


def queue_receipt(
    session: Session,
    *,
    target: str,
    trid: str,
    language: str,
    account_id: int,
    clock: Clock,
    test: bool | None = None,
) -> OutboxMessage:
    """The payment receipt e-mail to the customer (``target``), in the transaction's language;
    ``test``: whether the payment was a test (the provider that took it), written with it."""
    payload: dict[str, object] = {"trid": trid, "language": language}
    if test is not None:
        payload["test"] = test
    return enqueue(
        session,
        kind=RECEIPT,
        target=target,
        payload=payload,
        clock=clock,
        account_id=account_id,
        subject=trid,
        max_attempts=MESSAGE_MAX_ATTEMPTS,
    )


def queue_callback(
    session: Session,
    *,
    url: str,
    trid: str,
    track_id: str | None,
    resp_code: str,
    account_id: int,
    clock: Clock,
    extra: Mapping[str, str] | None = None,
) -> OutboxMessage:
    """The merchant's callback: ``resp_code`` PROCESSED, CANCELLED or ERROR; ``extra`` fields
    are sent too, after those (a refund's ``event=refund``, its id and amount)."""
    payload: dict[str, Any] = {"trid": trid, "track_id": track_id or "", "resp_code": resp_code}
    if extra:
        payload["extra"] = dict(extra)
    return enqueue(
        session,
        kind=CALLBACK,
        target=url,
        payload=payload,
        clock=clock,
        account_id=account_id,
        subject=trid,
        max_attempts=CALLBACK_MAX_ATTEMPTS,
    )


# --- callback signing secrets and operator tools ------------------------------------------------

CALLBACK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_callback_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return CALLBACK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def callback_secret(
    session: Session, account_id: int, encryptor: Encryptor, now: datetime, *, rotate: bool = False
) -> str:
    """The account's callback signing secret, made on first need; ``rotate`` replaces it.

    Stored encrypted; concurrent first uses (two workers) agree on one secret.
    """
    row = repository.callback_secret(session, account_id)
    if row is None:
        secret = new_callback_secret()
        fresh = CallbackSecret(
            account_id=account_id, secret_encrypted=encryptor.encrypt(secret), created_at=now
        )
        if repository.add_callback_secret(session, fresh):
            return secret
        row = repository.callback_secret(session, account_id)
        assert row is not None
    if rotate:
        secret = new_callback_secret()
        row.secret_encrypted = encryptor.encrypt(secret)
        row.rotated_at = now
        session.flush()
        return secret
    return encryptor.decrypt(row.secret_encrypted)


class OutboxRetryRefused(Exception):
    """``mobip outbox retry`` cannot retry this message (unknown, delivered, or being sent)."""


def default_max_attempts(kind: str) -> int:
    return CALLBACK_MAX_ATTEMPTS if kind == CALLBACK else MESSAGE_MAX_ATTEMPTS


@dataclass(frozen=True)
class Retried:
    """A message ``retry_message`` made due now, and what it was before."""

    message: OutboxMessage
    previous_status: str  # "failed" or "pending"
    added_attempts: int  # attempts added to max_attempts: 0 for a pending message


def retry_message(session: Session, message_id: int, clock: Clock) -> Retried:
    """Make a failed or pending message due now (the operator's ``mobip outbox retry``).

    A failed message gets a fresh set of attempts of its kind: ``attempts`` keeps counting (the
    attempt log stays in order) and ``max_attempts`` grows by the kind's usual number. A pending
    message (waiting for its next attempt) is only made due now: its ``max_attempts`` stays.
    A delivered message, and one in a worker's hands (live lease: its outcome is still to come),
    are refused.
    """
    message = repository.get(session, message_id)
    if message is None:
        raise OutboxRetryRefused(f"no outbox message {message_id}")
    if message.status == OutboxStatus.DONE.value:
        raise OutboxRetryRefused(f"message {message_id} was already delivered")
    previous_status = message.status
    added = default_max_attempts(message.kind) if previous_status == OutboxStatus.FAILED else 0
    max_attempts = message.attempts + added if added else message.max_attempts
    if not repository.requeue(
        session, message_id, clock.now(), max_attempts, status=previous_status
    ):
        raise OutboxRetryRefused(
            f"message {message_id} is being sent by {message.lease_owner} (lease until "
            f"{message.lease_expires_at}) or its status changed meanwhile; try again later"
        )
    updated = repository.get(session, message_id)
    assert updated is not None
    return Retried(updated, previous_status, added)


def messages_about(session: Session, *, account_id: int, subject: str) -> Sequence[OutboxMessage]:
    """The messages queued for ``account_id`` about ``subject`` (a trid), oldest first."""
    return repository.messages_about(session, account_id, subject)


def list_messages(
    session: Session, *, failed_only: bool = False, limit: int = 50, kind: str | None = None
) -> list[tuple[OutboxMessage, list[OutboxAttempt]]]:
    """The newest messages (of ``kind`` if given) with their attempt logs (operator view and
    /dev/outbox's callbacks; two queries in all)."""
    messages = repository.list_messages(session, failed_only=failed_only, limit=limit, kind=kind)
    logs = repository.attempts_by_message(session, [message.id for message in messages])
    return [(message, logs[message.id]) for message in messages]
