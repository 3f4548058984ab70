"""enqueue joins the caller's transaction; backoff delays stay inside their jitter bounds."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from mobip.accounts.models import Account
from mobip.delivery.models import OutboxMessage, OutboxStatus
from mobip.delivery.service import (
    DEFAULT_POLICY,
    Jitter,
    OutboxRetryRefused,
    RetryPolicy,
    backoff_bounds,
    backoff_delay,
    enqueue,
    retry_message,
)
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database


def make_account(database: Database, clock: ManualClock) -> int:
    with database.transaction() as session:
        account = Account(
            uid="acc_outbox",
            api_account_id="api_outbox",
            secret_hash="0" * 64,
            name="Outbox Merchant",
            role="merchant",
            path="/acc_outbox/",
            currency="EUR",
            language="EN",
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(account)
        session.flush()
        return account.id


def count_messages(database: Database) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


class Rollback(Exception):
    pass


def test_enqueue_is_rolled_back_with_the_callers_transaction(
    database: Database, clock: ManualClock
) -> None:
    def failing_unit_of_work() -> None:
        with database.transaction() as session:
            message = enqueue(
                session, kind="test.kind", target="a@example.com", payload={}, clock=clock
            )
            assert message.id is not None  # flushed: visible to the rest of the transaction
            raise Rollback

    with pytest.raises(Rollback):
        failing_unit_of_work()
    assert count_messages(database) == 0


def test_enqueue_is_committed_with_the_callers_transaction(
    database: Database, clock: ManualClock
) -> None:
    with database.transaction() as session:
        message_id = enqueue(
            session,
            kind="test.kind",
            target="https://merchant.example/callback",
            payload={"trid": "tr_1", "amount": 1250, "nested": {"ok": True}},
            clock=clock,
            max_attempts=12,
        ).id
        # Not committed yet: another connection does not see it.
        assert count_messages(database) == 0
    with database.transaction() as session:
        stored = session.get(OutboxMessage, message_id)
        assert stored is not None
        assert stored.kind == "test.kind"
        assert stored.target == "https://merchant.example/callback"
        assert stored.load_payload() == {"trid": "tr_1", "amount": 1250, "nested": {"ok": True}}
        assert stored.status == OutboxStatus.PENDING
        assert stored.attempts == 0
        assert stored.max_attempts == 12
        assert stored.next_attempt_at == clock.now()
        assert stored.created_at == stored.updated_at == clock.now()
        assert stored.lease_owner is None
        assert stored.lease_expires_at is None
        assert stored.last_error is None
        assert stored.delivered_at is None
        assert stored.account_id is None


def test_enqueue_defaults_and_not_before(database: Database, clock: ManualClock) -> None:
    later = clock.now() + timedelta(minutes=5)
    with database.transaction() as session:
        message = enqueue(
            session, kind="test.kind", target="x", payload={}, clock=clock, not_before=later
        )
    assert message.max_attempts == DEFAULT_POLICY.max_attempts
    assert message.next_attempt_at == later


@pytest.mark.parametrize(("kind", "max_attempts"), [("", 3), ("k" * 65, 3), ("test.kind", 0)])
def test_enqueue_rejects_bad_arguments(
    database: Database, clock: ManualClock, kind: str, max_attempts: int
) -> None:
    with database.transaction() as session, pytest.raises(ValueError, match=r"kind|max_attempts"):
        enqueue(session, kind=kind, target="x", payload={}, clock=clock, max_attempts=max_attempts)


def test_deleting_the_account_keeps_its_messages(database: Database, clock: ManualClock) -> None:
    account_id = make_account(database, clock)
    with database.transaction() as session:
        message_id = enqueue(
            session, kind="test.kind", target="x", payload={}, clock=clock, account_id=account_id
        ).id
    with database.transaction() as session:
        session.execute(delete(Account).where(Account.id == account_id))
    with database.transaction() as session:
        stored = session.get(OutboxMessage, message_id)
        assert stored is not None
        assert stored.account_id is None


POLICY = RetryPolicy(max_attempts=10, base=timedelta(seconds=10), cap=timedelta(minutes=10))


@pytest.mark.parametrize(
    ("failures", "high"),
    [(1, 10), (2, 20), (3, 40), (6, 320), (7, 600), (8, 600), (10_000, 600)],
)
def test_full_jitter_is_between_zero_and_the_capped_exponential(failures: int, high: int) -> None:
    assert backoff_bounds(POLICY, failures) == (timedelta(0), timedelta(seconds=high))
    rng = random.Random(failures)
    delays = [backoff_delay(POLICY, failures, rng) for _ in range(500)]
    assert all(timedelta(0) <= d <= timedelta(seconds=high) for d in delays)
    assert max(delays) - min(delays) > timedelta(seconds=high / 2)  # actually jittered


@pytest.mark.parametrize(
    ("failures", "high"), [(1, 30), (2, 30), (3, 60), (5, 240), (6, 480), (7, 600), (50, 600)]
)
def test_decorrelated_jitter_is_between_base_and_three_times_the_previous_delay(
    failures: int, high: int
) -> None:
    policy = RetryPolicy(
        max_attempts=10,
        base=timedelta(seconds=10),
        cap=timedelta(minutes=10),
        jitter=Jitter.DECORRELATED,
    )
    low = timedelta(seconds=10)
    assert backoff_bounds(policy, failures) == (low, timedelta(seconds=high))
    rng = random.Random(failures)
    delays = [backoff_delay(policy, failures, rng) for _ in range(500)]
    assert all(low <= d <= timedelta(seconds=high) for d in delays)
    assert len(set(delays)) > 400


def test_backoff_without_an_rng_uses_the_module_random() -> None:
    low, high = backoff_bounds(DEFAULT_POLICY, 3)
    assert low <= backoff_delay(DEFAULT_POLICY, 3) <= high


def test_backoff_rejects_a_failure_count_below_one() -> None:
    with pytest.raises(ValueError, match="failures"):
        backoff_bounds(POLICY, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base": timedelta(0)},
        {"base": timedelta(seconds=10), "cap": timedelta(seconds=5)},
    ],
)
def test_retry_policy_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"max_attempts|base"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_refuses_a_message_in_a_workers_hands_until_its_lease_ends(
    database: Database, clock: ManualClock
) -> None:
    with database.transaction() as session:
        message_id = enqueue(session, kind="test.kind", target="x", payload={}, clock=clock).id
    lease_end = clock.now() + timedelta(seconds=60)
    with database.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(lease_owner="worker-a", lease_expires_at=lease_end)
        )

    with database.transaction() as session, pytest.raises(OutboxRetryRefused, match="worker-a"):
        retry_message(session, message_id, clock)
    with database.transaction() as session:
        held = session.get(OutboxMessage, message_id)
        assert held is not None
        assert (held.lease_owner, held.lease_expires_at) == ("worker-a", lease_end)

    clock.set(lease_end)  # the worker died: its lease has run out
    with database.transaction() as session:
        retried = retry_message(session, message_id, clock).message
    assert retried.lease_owner is None and retried.status == OutboxStatus.PENDING
    assert retried.next_attempt_at == lease_end


def test_retry_refuses_an_unknown_or_delivered_message(
    database: Database, clock: ManualClock
) -> None:
    with database.transaction() as session, pytest.raises(OutboxRetryRefused, match="no outbox"):
        retry_message(session, 999999, clock)
    with database.transaction() as session:
        message_id = enqueue(session, kind="test.kind", target="x", payload={}, clock=clock).id
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status=OutboxStatus.DONE.value)
        )
    with database.transaction() as session, pytest.raises(OutboxRetryRefused, match="delivered"):
        retry_message(session, message_id, clock)
