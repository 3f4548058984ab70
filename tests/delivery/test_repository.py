"""The claim leases due messages safely; outcomes are written only by the lease holder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from mobip.delivery import repository
from mobip.delivery.models import OutboxMessage, OutboxStatus
from mobip.delivery.service import enqueue
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database

LEASE = timedelta(seconds=60)


def add_messages(database: Database, clock: ManualClock, count: int, **kwargs: object) -> list[int]:
    with database.transaction() as session:
        return [
            enqueue(
                session,
                kind="test.kind",
                target=f"t{i}",
                payload={"i": i},
                clock=clock,
                **kwargs,  # type: ignore[arg-type]
            ).id
            for i in range(count)
        ]


def claim(
    database: Database, clock: ManualClock, worker_id: str, limit: int = 10
) -> list[OutboxMessage]:
    with database.transaction(immediate=True) as session:
        return repository.claim_due(session, worker_id, clock.now(), LEASE, limit)


def load(database: Database, message_id: int) -> OutboxMessage:
    with database.transaction() as session:
        message = repository.get(session, message_id)
        assert message is not None
        return message


def test_claim_leases_and_counts_the_attempt(database: Database, clock: ManualClock) -> None:
    [message_id] = add_messages(database, clock, 1)
    clock.advance(seconds=1)
    [claimed] = claim(database, clock, "w1")
    assert claimed.id == message_id
    assert claimed.load_payload() == {"i": 0}
    stored = load(database, message_id)
    assert stored.lease_owner == "w1"
    assert stored.lease_expires_at == clock.now() + LEASE
    assert stored.attempts == 1
    assert stored.updated_at == clock.now()
    assert stored.status == OutboxStatus.PENDING


def test_a_leased_message_is_claimable_again_only_when_the_lease_expires(
    database: Database, clock: ManualClock
) -> None:
    [message_id] = add_messages(database, clock, 1)
    assert [m.id for m in claim(database, clock, "w1")] == [message_id]
    assert claim(database, clock, "w2") == []
    clock.advance(LEASE - timedelta(microseconds=1))
    assert claim(database, clock, "w2") == []
    clock.advance(microseconds=1)
    [again] = claim(database, clock, "w2")
    assert again.id == message_id
    assert again.lease_owner == "w2"
    assert again.attempts == 2


def test_claim_takes_due_messages_oldest_first_up_to_the_limit(
    database: Database, clock: ManualClock
) -> None:
    first = add_messages(database, clock, 3)
    clock.advance(seconds=1)
    second = add_messages(database, clock, 3)
    future = add_messages(database, clock, 1, not_before=clock.now() + timedelta(seconds=30))
    assert [m.id for m in claim(database, clock, "w1", limit=4)] == [*first, second[0]]
    assert [m.id for m in claim(database, clock, "w2", limit=10)] == second[1:]
    assert claim(database, clock, "w3", limit=10) == []
    clock.advance(seconds=30)  # the future message is due; the others' leases still run
    assert [m.id for m in claim(database, clock, "w3", limit=10)] == future


def test_done_and_failed_messages_are_never_claimed(database: Database, clock: ManualClock) -> None:
    done_id, failed_id = add_messages(database, clock, 2)
    claim(database, clock, "w1")
    with database.transaction() as session:
        assert repository.mark_done(session, done_id, "w1", clock.now())
        assert repository.mark_failed(session, failed_id, "w1", clock.now(), "boom")
    clock.advance(days=365)
    assert claim(database, clock, "w2") == []


def test_mark_done_records_the_delivery_and_clears_the_lease(
    database: Database, clock: ManualClock
) -> None:
    [message_id] = add_messages(database, clock, 1)
    claim(database, clock, "w1")
    clock.advance(seconds=3)
    with database.transaction() as session:
        assert repository.mark_done(session, message_id, "w1", clock.now())
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.DONE
    assert stored.delivered_at == stored.updated_at == clock.now()
    assert stored.lease_owner is None
    assert stored.lease_expires_at is None
    assert stored.attempts == 1


def test_schedule_retry_waits_until_the_next_attempt_time(
    database: Database, clock: ManualClock
) -> None:
    [message_id] = add_messages(database, clock, 1)
    claim(database, clock, "w1")
    retry_at = clock.now() + timedelta(minutes=2)
    with database.transaction() as session:
        assert repository.schedule_retry(
            session, message_id, "w1", clock.now(), retry_at, "RuntimeError: boom"
        )
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.PENDING
    assert stored.next_attempt_at == retry_at
    assert stored.last_error == "RuntimeError: boom"
    assert stored.lease_owner is None
    assert stored.lease_expires_at is None
    clock.advance(minutes=2, microseconds=-1)
    assert claim(database, clock, "w2") == []
    clock.advance(microseconds=1)
    [again] = claim(database, clock, "w2")
    assert again.attempts == 2


def test_mark_failed_is_final(database: Database, clock: ManualClock) -> None:
    [message_id] = add_messages(database, clock, 1)
    claim(database, clock, "w1")
    with database.transaction() as session:
        assert repository.mark_failed(session, message_id, "w1", clock.now(), "gone")
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.FAILED
    assert stored.last_error == "gone"
    assert stored.delivered_at is None
    assert stored.lease_owner is None


def test_release_gives_the_message_back_without_counting_the_attempt(
    database: Database, clock: ManualClock
) -> None:
    [message_id] = add_messages(database, clock, 1)
    claim(database, clock, "w1")
    with database.transaction() as session:
        assert repository.release(session, message_id, "w1", clock.now())
    stored = load(database, message_id)
    assert stored.attempts == 0
    assert stored.lease_owner is None
    assert stored.lease_expires_at is None
    assert [m.id for m in claim(database, clock, "w2")] == [message_id]


def test_only_the_current_lease_holder_can_finish_a_message(
    database: Database, clock: ManualClock
) -> None:
    [message_id] = add_messages(database, clock, 1)
    claim(database, clock, "w1")
    clock.advance(LEASE)
    claim(database, clock, "w2")  # w1's lease expired and w2 took the message over
    now = clock.now()
    with database.transaction() as session:
        assert not repository.mark_done(session, message_id, "w1", now)
        assert not repository.mark_failed(session, message_id, "w1", now, "late")
        assert not repository.schedule_retry(session, message_id, "w1", now, now, "late")
        assert not repository.release(session, message_id, "w1", now)
    stored = load(database, message_id)
    assert stored.lease_owner == "w2"
    assert stored.status == OutboxStatus.PENDING
    assert stored.last_error is None
    assert stored.attempts == 2
    with database.transaction() as session:
        assert repository.mark_done(session, message_id, "w2", now)
        # Finished: nobody, not even the last holder, can write an outcome again.
        assert not repository.mark_failed(session, message_id, "w2", now, "again")
    assert load(database, message_id).status == OutboxStatus.DONE


def test_a_worker_whose_lease_expired_unclaimed_may_still_finish(
    database: Database, clock: ManualClock
) -> None:
    [message_id] = add_messages(database, clock, 1)
    claim(database, clock, "w1")
    clock.advance(LEASE * 2)
    with database.transaction() as session:
        assert repository.mark_done(session, message_id, "w1", clock.now())
    assert load(database, message_id).status == OutboxStatus.DONE


def test_concurrent_claims_skip_each_others_locked_rows(
    database: Database, clock: ManualClock
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite serialises claims with BEGIN IMMEDIATE; no row locks to skip")
    ids = add_messages(database, clock, 6)
    with database.transaction() as first:
        held = repository.claim_due(first, "w1", clock.now(), LEASE, 3)
        # w1 has not committed: its rows are locked, not yet visibly leased.
        with database.transaction() as second:
            second.execute(text("SET LOCAL lock_timeout = '5s'"))  # fail, not hang, if it waits
            other = repository.claim_due(second, "w2", clock.now(), LEASE, 10)
    assert [m.id for m in held] == ids[:3]
    assert [m.id for m in other] == ids[3:]
    assert claim(database, clock, "w3") == []
