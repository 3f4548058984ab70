"""Helpers shared by the delivery tests: runtimes, payment requests, worker batches, outbox reads.

The fixtures (``merchant``, ``receiver``) are in conftest.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from factories import make_transaction
from mobip.accounts.models import Account
from mobip.delivery import repository as outbox
from mobip.delivery import service as delivery
from mobip.delivery import worker
from mobip.delivery.handlers import Closer, register_all
from mobip.delivery.models import OutboxAttempt, OutboxMessage
from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule
from mobip.transactions import repository as transactions
from mobip.transactions.models import Transaction, TransactionKind, TransactionStatus
from mobip.wiring import wire

# Every field is given, so the delivery tests do not depend on make_transaction's defaults.
REQUEST: dict[str, Any] = {
    "kind": TransactionKind.PAYMENT_REQUEST,
    "item_amount": 1250,
    "tax_amount": 0,
    "item_name": "Green tea",
    "redirect_url": "https://shop.example.com/done",
    "call_back_url": None,
    "track_id": None,
    "customer_name": None,
    "customer_email": "zoe@example.com",
    "customer_phone": "+33612345678",
    "media": "EMAIL",
    "language": "EN",
    "retry_period_days": 0,
    "retry_attempts": 3,
    "ttl_days": 30,
}


def with_settings(runtime: Runtime, **changes: Any) -> Runtime:
    """The same database and clock with some settings changed."""
    return Runtime(runtime.settings.model_copy(update=changes), runtime.database, runtime.clock)


def new_request(runtime: Runtime, merchant: Account, **fields: Any) -> Transaction:
    """A pending payment request of ``merchant`` by e-mail; ``fields`` change REQUEST's values."""
    return make_transaction(runtime, merchant, **(REQUEST | fields))


def run_batch(runtime: Runtime, *closers: Closer) -> int:
    """One worker batch in a new event loop; the number of messages it claimed.

    ``closers`` run after the batch in the same loop: kept-alive connections belong to it.
    """
    runner = worker.Worker.for_runtime(runtime, "test-worker")

    async def batch() -> int:
        try:
            return await runner.run_once()
        finally:
            for close in closers:
                await close()

    return asyncio.run(batch())


def deliver(runtime: Runtime) -> int:
    """One worker batch with the real handlers; the number of messages it claimed."""
    return run_batch(runtime, register_all(wire(runtime)))


def run_schedules(runtime: Runtime) -> dict[str, int]:
    """One run of the runtime's scheduled jobs (every domain's, as the worker runs them)."""
    return runtime.state(Schedule).run_once(wire(runtime))


def transaction_of(runtime: Runtime, trid: str) -> Transaction:
    with runtime.database.session() as session:
        found = transactions.get_with_merchant_by_trid(session, trid)
        assert found is not None
        return found[0]


def pay(runtime: Runtime, transaction: Transaction) -> None:
    """Mark ``transaction`` paid by card, as the checkout does."""
    with runtime.database.transaction() as session:
        found = transactions.get_with_merchant_by_trid(session, transaction.trid)
        assert found is not None
        paid = found[0]
        assert transactions.change_status(
            session, paid, to=TransactionStatus.PAID, reason=None, now=runtime.clock.now()
        )
        paid.payment_method = "card"
        session.flush()


def messages_of(runtime: Runtime, transaction: Transaction) -> list[OutboxMessage]:
    """The transaction's outbox messages, oldest first."""
    with runtime.database.session() as session:
        return list(
            delivery.messages_about(
                session, account_id=transaction.account_id, subject=transaction.trid
            )
        )


def stored(runtime: Runtime, message_id: int) -> OutboxMessage:
    with runtime.database.session() as session:
        found = outbox.get(session, message_id)
        assert found is not None
        return found


def attempts_of(runtime: Runtime, message_id: int) -> list[OutboxAttempt]:
    """The message's logged attempts, oldest first."""
    with runtime.database.session() as session:
        return list(outbox.attempts_of(session, message_id))


def wait_until(condition: Callable[[], bool], what: str, deadline: float = 60) -> None:
    """Poll a condition that another thread or process makes true (a wait with a deadline)."""
    limit = time.monotonic() + deadline
    changed = threading.Event()
    while not condition():
        if time.monotonic() > limit:
            raise AssertionError(f"timed out waiting for {what}")
        changed.wait(0.02)
