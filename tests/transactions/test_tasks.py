"""The transactions' scheduled tasks on the injectable clock (no sleeping): automatic resends,
expiry with its callback, and no double resend or double expiry when several workers run them at
once; the worker runs them (moved from tests/delivery/test_schedules.py, issue 10)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select

from delivery.support import new_request, pay, run_schedules, transaction_of, with_settings
from factories import make_account
from mobip.accounts.models import Account
from mobip.delivery.models import OutboxMessage
from mobip.delivery.runner import InProcessWorker
from mobip.delivery.service import CALLBACK, PAYMENT_REQUEST
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import repository as transactions
from mobip.transactions import service as transactions_service
from mobip.transactions import tasks
from mobip.transactions.models import Transaction, TransactionKind, TransactionStatus
from mobip.wiring import wire


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    return make_account(runtime, name="Maison Dupré").account


# French requests with reminders every two days and a callback (expiry calls the merchant back).
create = partial(
    new_request,
    call_back_url="https://shop.example.com/cb?order=7",
    track_id="order-7",
    language="FR",
    retry_period_days=2,
)


def requests_of(runtime: Runtime, trid: str) -> list[tuple[str, str, str]]:
    """(media, occasion, target) of each payment request queued for the transaction."""
    with runtime.database.session() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.subject == trid, OutboxMessage.kind == PAYMENT_REQUEST)
            .order_by(OutboxMessage.id)
        ).all()
        return [
            (row.load_payload()["media"], row.load_payload()["occasion"], row.target)
            for row in rows
        ]


def callbacks_of(runtime: Runtime, trid: str) -> list[dict[str, Any]]:
    with runtime.database.session() as session:
        rows = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.subject == trid, OutboxMessage.kind == CALLBACK
            )
        ).all()
        return [{"target": row.target, **row.load_payload()} for row in rows]


# --- automatic resend ----------------------------------------------------------------------------


def test_reminders_every_period_up_to_the_attempts(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, retry_period_days=2, retry_attempts=3)
    start = clock.now()
    sent_at = []
    for hours in range(0, 24 * 10 + 1, 6):
        clock.set(start + timedelta(hours=hours))
        if run_schedules(runtime)[tasks.REMINDERS]:
            sent_at.append(hours)
    # Day 2, 4 and 6: each a full period after the previous request; none after the third.
    assert sent_at == [48, 96, 144]
    assert transaction_of(runtime, transaction.trid).automatic_resends == 3
    assert requests_of(runtime, transaction.trid) == [
        ("EMAIL", "initial", "zoe@example.com"),
        ("EMAIL", "reminder", "zoe@example.com"),
        ("EMAIL", "reminder", "zoe@example.com"),
        ("EMAIL", "reminder", "zoe@example.com"),
    ]


def test_not_due_a_moment_before_the_period(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, retry_period_days=1)
    clock.advance(timedelta(days=1) - timedelta(milliseconds=1))
    assert run_schedules(runtime)[tasks.REMINDERS] == 0
    clock.advance(milliseconds=1)
    assert run_schedules(runtime)[tasks.REMINDERS] == 1
    assert transaction_of(runtime, transaction.trid).automatic_resends == 1


def test_an_sms_request_is_reminded_by_sms(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, retry_period_days=1, media="SMS")
    clock.advance(days=1)
    run_schedules(runtime)
    assert requests_of(runtime, transaction.trid)[-1] == ("SMS", "reminder", "+33612345678")


@pytest.mark.parametrize(("period", "attempts"), [(0, 3), (2, 0)])
def test_no_reminder_without_a_period_or_attempts(
    runtime: Runtime, merchant: Account, clock: ManualClock, period: int, attempts: int
) -> None:
    transaction = create(runtime, merchant, retry_period_days=period, retry_attempts=attempts)
    for _ in range(10):
        clock.advance(days=1)
        assert run_schedules(runtime)[tasks.REMINDERS] == 0
    assert len(requests_of(runtime, transaction.trid)) == 1


def test_a_manual_resend_restarts_the_period(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, retry_period_days=2)
    clock.advance(days=1)
    with runtime.database.transaction() as session:
        transactions_service.resend(
            session, merchant, transaction.trid, "SMS", runtime.settings, clock
        )
    clock.advance(days=1)  # two days after creation, one after the manual resend
    assert run_schedules(runtime)[tasks.REMINDERS] == 0
    clock.advance(days=1)
    assert run_schedules(runtime)[tasks.REMINDERS] == 1
    assert [occasion for _, occasion, _ in requests_of(runtime, transaction.trid)] == [
        "initial",
        "manual",
        "reminder",
    ]


def test_a_worker_back_after_a_long_stop_sends_one_reminder_not_a_burst(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, retry_period_days=1, retry_attempts=3)
    clock.advance(days=5)
    assert run_schedules(runtime)[tasks.REMINDERS] == 1
    assert run_schedules(runtime)[tasks.REMINDERS] == 0
    clock.advance(days=1)
    assert run_schedules(runtime)[tasks.REMINDERS] == 1
    assert transaction_of(runtime, transaction.trid).automatic_resends == 2


def test_no_reminder_for_a_final_transaction_a_one_use_qr_or_an_expired_one(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    cancelled = create(runtime, merchant, retry_period_days=1)
    with runtime.database.transaction() as session:
        transactions_service.cancel(session, merchant, cancelled.trid, clock)
    qr = create(runtime, merchant, retry_period_days=1, kind=TransactionKind.ONE_USE_QR, media=None)
    expiring = create(runtime, merchant, retry_period_days=1, ttl_days=1)
    clock.advance(days=1)
    report = run_schedules(runtime)
    assert report[tasks.REMINDERS] == 0
    assert report[tasks.EXPIRED] == 1
    assert len(requests_of(runtime, cancelled.trid)) == 1
    assert requests_of(runtime, qr.trid) == []
    assert len(requests_of(runtime, expiring.trid)) == 1
    assert transaction_of(runtime, expiring.trid).reason == "EXPIRED"


# --- expiry -------------------------------------------------------------------------------------


def test_expiry_cancels_and_queues_the_callback(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, retry_period_days=0, ttl_days=3)
    silent = create(runtime, merchant, retry_period_days=0, ttl_days=3, call_back_url=None)
    later = create(runtime, merchant, retry_period_days=0, ttl_days=4)
    clock.advance(timedelta(days=3) - timedelta(seconds=1))
    assert run_schedules(runtime)[tasks.EXPIRED] == 0
    clock.advance(seconds=1)
    assert run_schedules(runtime)[tasks.EXPIRED] == 2
    expired = transaction_of(runtime, transaction.trid)
    assert expired.status == TransactionStatus.CANCELLED
    assert expired.reason == "EXPIRED"
    assert expired.status_changed_at == clock.now()
    assert callbacks_of(runtime, transaction.trid) == [
        {
            "target": "https://shop.example.com/cb?order=7",
            "trid": transaction.trid,
            "track_id": "order-7",
            "resp_code": "CANCELLED",
        }
    ]
    assert transaction_of(runtime, silent.trid).reason == "EXPIRED"
    assert callbacks_of(runtime, silent.trid) == []
    assert transaction_of(runtime, later.trid).status == TransactionStatus.PENDING
    # Once only.
    assert run_schedules(runtime)[tasks.EXPIRED] == 0
    assert len(callbacks_of(runtime, transaction.trid)) == 1


def test_a_paid_transaction_never_expires(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, ttl_days=1)
    pay(runtime, transaction)
    clock.advance(days=2)
    assert run_schedules(runtime)[tasks.EXPIRED] == 0
    assert transaction_of(runtime, transaction.trid).status == TransactionStatus.PAID
    assert callbacks_of(runtime, transaction.trid) == []


def test_a_backlog_is_worked_through_in_batches(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    small = with_settings(runtime, schedule_batch_size=3)
    made = [
        create(small, merchant, retry_period_days=1, ttl_days=1 + (i % 2) * 5) for i in range(8)
    ]
    clock.advance(days=1)
    report = run_schedules(small)
    assert report[tasks.EXPIRED] == 4
    assert report[tasks.REMINDERS] == 4
    assert {transaction_of(small, t.trid).status for t in made[0::2]} == {
        TransactionStatus.CANCELLED
    }
    assert {transaction_of(small, t.trid).automatic_resends for t in made[1::2]} == {1}


class OutboxDown(Exception):
    """Stands for any failure while writing the outbox row."""


def refuse(*args: Any, **kwargs: Any) -> Any:
    raise OutboxDown()


def test_expiry_and_its_callback_commit_together_or_not_at_all(
    runtime: Runtime, merchant: Account, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mobip.delivery import service as delivery

    transaction = create(runtime, merchant, retry_period_days=0, ttl_days=1)
    clock.advance(days=1)
    monkeypatch.setattr(delivery, "queue_callback", refuse)
    with pytest.raises(OutboxDown):
        tasks.expire_due(runtime)
    assert transaction_of(runtime, transaction.trid).status == TransactionStatus.PENDING
    monkeypatch.undo()
    assert tasks.expire_due(runtime) == 1
    assert transaction_of(runtime, transaction.trid).reason == "EXPIRED"
    assert len(callbacks_of(runtime, transaction.trid)) == 1


def test_a_reminder_is_counted_only_with_its_outbox_row(
    runtime: Runtime, merchant: Account, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mobip.delivery import service as delivery

    transaction = create(runtime, merchant, retry_period_days=1)
    clock.advance(days=1)
    monkeypatch.setattr(delivery, "queue_payment_request", refuse)
    with pytest.raises(OutboxDown):
        tasks.send_reminders(runtime)
    assert transaction_of(runtime, transaction.trid).automatic_resends == 0
    monkeypatch.undo()
    assert tasks.send_reminders(runtime) == 1
    assert transaction_of(runtime, transaction.trid).automatic_resends == 1
    assert [o for _, o, _ in requests_of(runtime, transaction.trid)] == ["initial", "reminder"]


# --- several workers at once ----------------------------------------------------------------------


def race(runtime: Runtime, job: Callable[[Runtime], int], runners: int = 2) -> list[int]:
    """Run ``job`` in ``runners`` threads released together; each one's result."""
    barrier = threading.Barrier(runners)
    results: list[int] = [0] * runners
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = job(runtime)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_two_concurrent_runs_never_send_a_reminder_twice(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    made = [create(runtime, merchant, retry_period_days=1) for _ in range(40)]
    clock.advance(days=1)
    results = race(runtime, tasks.send_reminders)
    assert sum(results) == 40
    for transaction in made:
        assert transaction_of(runtime, transaction.trid).automatic_resends == 1
        assert [o for _, o, _ in requests_of(runtime, transaction.trid)] == ["initial", "reminder"]


def test_two_concurrent_runs_never_expire_twice(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    made = [create(runtime, merchant, retry_period_days=0, ttl_days=1) for _ in range(40)]
    clock.advance(days=1)
    results = race(runtime, tasks.expire_due)
    assert sum(results) == 40
    for transaction in made:
        assert len(callbacks_of(runtime, transaction.trid)) == 1
        with runtime.database.session() as session:
            history = transactions.events(session, transaction_of(runtime, transaction.trid))
            assert [(e.status, e.reason) for e in history] == [
                ("PENDING", None),
                ("CANCELLED", "EXPIRED"),
            ]


def test_the_resend_guard_refuses_a_count_made_from_a_stale_read(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    """The interleaving the guard exists for, made deterministic: worker A reads the due
    transaction, worker B counts and queues its reminder, then A tries to count it too."""
    transaction = create(runtime, merchant, retry_period_days=1)
    clock.advance(days=1)
    with runtime.database.session() as session:
        [stale] = transactions.due_for_reminder(session, clock.now(), 10)
    assert tasks.send_reminders(runtime) == 1  # worker B
    with runtime.database.transaction(immediate=True) as session:
        seen = session.merge(stale, load=False)
        assert seen.automatic_resends == 0
        assert not transactions.count_automatic_resend(session, seen, clock.now())
    assert transaction_of(runtime, transaction.trid).automatic_resends == 1
    assert len(requests_of(runtime, transaction.trid)) == 2


# --- in the worker -------------------------------------------------------------------------------


def test_the_in_process_worker_runs_the_schedules(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, retry_period_days=1)
    clock.advance(days=1)

    async def main() -> None:
        running = InProcessWorker(wire(runtime))
        await asyncio.sleep(0)  # let both tasks start their first round
        await running.stop()  # finishes the round in hand

    asyncio.run(main())
    assert transaction_of(runtime, transaction.trid).automatic_resends == 1


def test_counting_a_resend_needs_a_pending_transaction(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    transaction = create(runtime, merchant, retry_period_days=1)
    with runtime.database.transaction() as session:
        transactions_service.cancel(session, merchant, transaction.trid, clock)
    with runtime.database.transaction() as session:
        found = transactions.get_with_merchant_by_trid(session, transaction.trid)
        assert found is not None
        assert not transactions.count_automatic_resend(session, found[0], clock.now())
        total = session.scalar(select(func.sum(Transaction.automatic_resends)))
        assert total == 0
