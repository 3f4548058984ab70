"""What other domains learn of a transaction's life, inside the database transaction that
changed it (docs/architecture.md, "Observers").

The domains above transactions keep their own tables in step with the transactions (stats/ its
daily aggregates, feed/ the partner feed, receivables/ the invoices a payment settles) without
transactions knowing them: each subscribes an observer here, once per process, from the
composition root (``mobip.wiring``). The service calls ``notify`` with the same connection that
wrote the change, so an observer's rows commit or roll back with it: nothing is counted twice,
nothing missed. An observer that raises makes the change fail; observers must only write their
own tables, and do little (they run on the API's hot paths).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection


class Happening(StrEnum):
    """What happened to a transaction. Each is told once, by the unit of work that did it."""

    CREATED = "created"  # a request sent, a one-use QR or a payment page started
    PAID = "paid"
    REFUNDED = "refunded"  # one succeeded refund (a transaction may have several)
    CANCELLED = "cancelled"  # by the merchant (cancel_transaction)
    EXPIRED = "expired"  # past its ttl (the worker, or lazily on a read)
    DENIED = "denied"
    ERROR = "error"


@dataclass(frozen=True)
class Change:
    """One happening of one transaction, with what the observers need to file it; more is read
    through ``transactions.service`` (e.g. ``summaries_by_trids``)."""

    happening: Happening
    trid: str
    account_id: int
    at: datetime  # when it happened (UTC): created_at, status_changed_at, or refunded_at
    kind: str  # TransactionKind's value
    media: str | None  # EMAIL or SMS for a payment request, else None
    track_id: str | None
    currency: str
    total_amount: int  # the transaction's item + tax amounts, minor units
    item_amount: int
    tax_amount: int
    fee: int  # PAID: the fee taken; otherwise 0 (a refund does not return the fee)
    refund_id: str | None = None  # REFUNDED: the refund's id
    refund_amount: int = 0  # REFUNDED: that refund's amount (positive)

    @property
    def channel(self) -> str:
        """How the payment was asked for: EMAIL, SMS, QR (one-use), REUSABLE_QR (a product
        page), PORTAL (an invoice portal's Pay) — get_stats' "by media"."""
        return _CHANNELS.get(self.kind) or (self.media or "EMAIL")


_CHANNELS = {
    "one_use_qr": "QR",
    "product_payment": "REUSABLE_QR",
    "invoice_portal": "PORTAL",
}

Observer = Callable[[Connection, Sequence[Change]], None]

_observers: list[Observer] = []


def subscribe(observer: Observer) -> None:
    """Tell ``observer`` of every change from now on, in this process (once: subscribing the
    same observer again changes nothing)."""
    if observer not in _observers:
        _observers.append(observer)


def unsubscribe(observer: Observer) -> None:
    """Stop telling ``observer`` (tests)."""
    if observer in _observers:
        _observers.remove(observer)


def subscribed() -> tuple[Observer, ...]:
    return tuple(_observers)


def notify(conn: Connection, changes: Sequence[Change]) -> None:
    """Hand ``changes`` to every observer, in subscription order, on ``conn``."""
    if changes:
        for observer in _observers:
            observer(conn, changes)
