"""The worker runs each due message's handler and records done, retry or failed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mobip.config import Settings
from mobip.delivery import repository
from mobip.delivery.models import OutboxMessage, OutboxStatus
from mobip.delivery.service import DEFAULT_POLICY, RetryPolicy, backoff_bounds, enqueue
from mobip.delivery.worker import Handlers, PermanentFailure, RetryLater, Worker, retry_after
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database

KIND = "test.kind"
POLICY = RetryPolicy(max_attempts=5, base=timedelta(seconds=10), cap=timedelta(minutes=5))


class Calls:
    """A test handler whose behaviour each test sets, recording what it was given."""

    def __init__(self) -> None:
        self.seen: list[OutboxMessage] = []
        self.behaviour: Callable[[OutboxMessage], Awaitable[None]] | None = None

    async def __call__(self, message: OutboxMessage) -> None:
        self.seen.append(message)
        if self.behaviour is not None:
            await self.behaviour(message)


@pytest.fixture
def handlers() -> Handlers:
    """The registry the tests' workers run (a runtime's ``runtime.state(Handlers)``)."""
    return Handlers()


@pytest.fixture
def handler(handlers: Handlers) -> Calls:
    calls = Calls()
    handlers.register(KIND, calls, POLICY)
    return calls


def make_worker(
    handlers: Handlers,
    database: Database,
    clock: ManualClock,
    settings: Settings,
    worker_id: str = "w1",
) -> Worker:
    return Worker(database, clock, settings, worker_id, handlers=handlers)


def add(database: Database, clock: ManualClock, *, kind: str = KIND, max_attempts: int = 5) -> int:
    with database.transaction() as session:
        return enqueue(
            session,
            kind=kind,
            target="receiver",
            payload={"hello": "world"},
            clock=clock,
            max_attempts=max_attempts,
        ).id


def load(database: Database, message_id: int) -> OutboxMessage:
    with database.transaction() as session:
        message = repository.get(session, message_id)
        assert message is not None
        return message


async def boom(message: OutboxMessage) -> None:
    raise RuntimeError("receiver said 500")


def test_register_refuses_a_second_handler_for_a_kind(handlers: Handlers, handler: Calls) -> None:
    with pytest.raises(ValueError, match=KIND):
        handlers.register(KIND, handler)
    found = handlers.registration(KIND)
    assert found is not None
    assert found.policy == POLICY


def test_a_worker_id_is_unique_per_instance(
    database: Database, clock: ManualClock, settings: Settings
) -> None:
    first = Worker(database, clock, settings, handlers=Handlers())
    second = Worker(database, clock, settings, handlers=Handlers())
    assert first.worker_id != second.worker_id
    assert len(first.worker_id) <= 128


def test_success_marks_the_message_done(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    message_id = add(database, clock)
    assert asyncio.run(make_worker(handlers, database, clock, settings).run_once()) == 1
    [given] = handler.seen
    assert given.id == message_id
    assert given.target == "receiver"
    assert given.load_payload() == {"hello": "world"}
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.DONE
    assert stored.delivered_at == clock.now()
    assert stored.attempts == 1
    assert stored.lease_owner is None
    assert asyncio.run(make_worker(handlers, database, clock, settings).run_once()) == 0


def test_an_empty_outbox_claims_nothing(
    database: Database, clock: ManualClock, settings: Settings, handlers: Handlers
) -> None:
    assert asyncio.run(make_worker(handlers, database, clock, settings).run_once()) == 0


def test_a_failure_is_retried_after_a_jittered_backoff(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    handler.behaviour = boom
    message_id = add(database, clock)
    runner = make_worker(handlers, database, clock, settings)
    for failures in (1, 2, 3):
        assert asyncio.run(runner.run_once()) == 1
        stored = load(database, message_id)
        assert stored.status == OutboxStatus.PENDING
        assert stored.attempts == failures
        assert stored.last_error == "RuntimeError: receiver said 500"
        assert stored.lease_owner is None
        low, high = backoff_bounds(POLICY, failures)
        assert clock.now() + low <= stored.next_attempt_at <= clock.now() + high
        # Not due before its time, due at it.
        clock.set(stored.next_attempt_at - timedelta(microseconds=1))
        assert asyncio.run(runner.run_once()) == 0
        clock.set(stored.next_attempt_at)
    assert len(handler.seen) == 3


def test_a_message_fails_for_good_after_max_attempts(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    handler.behaviour = boom
    message_id = add(database, clock, max_attempts=3)
    runner = make_worker(handlers, database, clock, settings)
    for _ in range(3):
        assert asyncio.run(runner.run_once()) == 1
        clock.advance(POLICY.cap)
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.FAILED
    assert stored.attempts == 3
    assert stored.last_error == "gave up after 3 attempts: RuntimeError: receiver said 500"
    assert stored.delivered_at is None
    clock.advance(days=30)
    assert asyncio.run(runner.run_once()) == 0
    assert len(handler.seen) == 3


def test_permanent_failure_fails_at_once(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    async def gone(message: OutboxMessage) -> None:
        raise PermanentFailure("HTTP 410 Gone")

    handler.behaviour = gone
    message_id = add(database, clock)
    assert asyncio.run(make_worker(handlers, database, clock, settings).run_once()) == 1
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.FAILED
    assert stored.attempts == 1
    assert stored.last_error == "PermanentFailure: HTTP 410 Gone"


def test_retry_later_uses_the_handlers_delay(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    async def throttled(message: OutboxMessage) -> None:
        raise RetryLater("HTTP 429", delay=timedelta(minutes=7))

    handler.behaviour = throttled
    message_id = add(database, clock)
    assert asyncio.run(make_worker(handlers, database, clock, settings).run_once()) == 1
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.PENDING
    assert stored.next_attempt_at == clock.now() + timedelta(minutes=7)
    assert stored.last_error == "RetryLater: HTTP 429"


def test_an_unknown_kind_is_retried_then_failed_with_a_clear_error(
    database: Database, clock: ManualClock, settings: Settings, handlers: Handlers
) -> None:
    message_id = add(database, clock, kind="test.nobody-handles-this", max_attempts=2)
    runner = make_worker(handlers, database, clock, settings)
    assert asyncio.run(runner.run_once()) == 1
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.PENDING
    assert stored.last_error == "no handler registered for outbox kind 'test.nobody-handles-this'"
    low, high = backoff_bounds(DEFAULT_POLICY, 1)
    assert clock.now() + low <= stored.next_attempt_at <= clock.now() + high
    clock.set(stored.next_attempt_at)
    assert asyncio.run(runner.run_once()) == 1
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.FAILED
    assert stored.last_error == (
        "gave up after 2 attempts: no handler registered for outbox kind 'test.nobody-handles-this'"
    )


def test_a_handler_slower_than_the_lease_allows_is_timed_out(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    async def hang(message: OutboxMessage) -> None:
        await asyncio.Event().wait()

    handler.behaviour = hang
    message_id = add(database, clock)
    runner = make_worker(handlers, database, clock, settings)
    runner.handler_timeout = 0.01
    assert asyncio.run(runner.run_once()) == 1
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.PENDING
    assert stored.last_error == "handler timed out after 0.01s"


def test_an_outcome_is_dropped_when_the_lease_passed_to_another_worker(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    async def overtaken(message: OutboxMessage) -> None:
        # While this handler runs, its lease expires and another worker claims the message.
        clock.advance(timedelta(seconds=settings.worker_lease_seconds))
        with database.transaction(immediate=True) as session:
            [taken] = repository.claim_due(session, "w2", clock.now(), timedelta(minutes=1), 10)
        assert taken.id == message.id

    handler.behaviour = overtaken
    message_id = add(database, clock)
    assert asyncio.run(make_worker(handlers, database, clock, settings, "w1").run_once()) == 1
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.PENDING
    assert stored.lease_owner == "w2"
    assert stored.attempts == 2
    assert stored.delivered_at is None


def test_a_last_attempt_that_lost_its_lease_fails_without_running_again(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    message_id = add(database, clock, max_attempts=1)
    with database.transaction(immediate=True) as session:
        repository.claim_due(session, "dead-worker", clock.now(), timedelta(minutes=1), 10)
    clock.advance(minutes=1)
    assert asyncio.run(make_worker(handlers, database, clock, settings).run_once()) == 1
    assert handler.seen == []
    stored = load(database, message_id)
    assert stored.status == OutboxStatus.FAILED
    assert stored.last_error == (
        "gave up after 1 attempt: "
        "the last attempt did not record an outcome before its lease expired"
    )


def test_cancelling_a_batch_releases_the_unfinished_messages(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    quick_id = add(database, clock)
    slow_id = add(database, clock)

    async def scenario() -> None:
        started = asyncio.Event()

        async def behaviour(message: OutboxMessage) -> None:
            if message.id == slow_id:
                started.set()
                await asyncio.Event().wait()

        handler.behaviour = behaviour
        task = asyncio.create_task(make_worker(handlers, database, clock, settings).run_once())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert load(database, quick_id).status == OutboxStatus.DONE
    released = load(database, slow_id)
    assert released.status == OutboxStatus.PENDING
    assert released.attempts == 0
    assert released.lease_owner is None
    assert released.lease_expires_at is None


def test_run_forever_drains_the_outbox_until_stopped(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    ids = [add(database, clock) for _ in range(5)]
    settings = settings.model_copy(update={"worker_batch_size": 2, "worker_poll_seconds": 0.01})
    runner = make_worker(handlers, database, clock, settings)
    failing_claims = 1
    real_claim = runner._claim

    def flaky_claim() -> list[OutboxMessage]:
        nonlocal failing_claims
        if failing_claims:
            failing_claims -= 1
            raise ConnectionError("database restarting")
        return real_claim()

    runner._claim = flaky_claim  # type: ignore[method-assign]

    async def scenario() -> None:
        stop = asyncio.Event()

        async def behaviour(message: OutboxMessage) -> None:
            if len(handler.seen) == len(ids):
                stop.set()

        handler.behaviour = behaviour
        await asyncio.wait_for(runner.run_forever(stop), timeout=30)

    asyncio.run(scenario())
    assert sorted(m.id for m in handler.seen) == ids
    assert all(load(database, i).status == OutboxStatus.DONE for i in ids)


def test_two_workers_never_run_the_same_message(
    db_url: str,
    database: Database,
    clock: ManualClock,
    settings: Settings,
    handler: Calls,
    handlers: Handlers,
) -> None:
    with database.transaction() as session:
        for i in range(200):
            enqueue(session, kind=KIND, target=f"t{i}", payload={"i": i}, clock=clock)
    settings = settings.model_copy(update={"worker_batch_size": 10})
    runs: list[tuple[int, str]] = []
    workers_seen: set[str] = set()
    both_running = threading.Event()
    lock = threading.Lock()

    def drain(worker_id: str) -> None:
        own = Database(db_url)
        runner = Worker(own, clock, settings, worker_id, handlers=handlers)
        first = True

        async def behaviour(message: OutboxMessage) -> None:
            nonlocal first
            with lock:
                runs.append((message.id, worker_id))
                workers_seen.add(worker_id)
                if len(workers_seen) == 2:
                    both_running.set()
            if first:
                # Hold this worker's first batch until the other worker has run a message too,
                # so both hold leases at the same time.
                first = False
                await asyncio.to_thread(both_running.wait, 30)

        async def loop() -> None:
            while await runner.run_once():
                pass

        behaviours[worker_id] = behaviour
        try:
            asyncio.run(loop())
        finally:
            own.dispose()

    behaviours: dict[str, Callable[[OutboxMessage], Awaitable[None]]] = {}

    async def by_worker(message: OutboxMessage) -> None:
        # Each message is run by exactly one worker; find which from the lease.
        assert message.lease_owner is not None
        await behaviours[message.lease_owner](message)

    handler.behaviour = by_worker
    threads = [threading.Thread(target=drain, args=(w,)) for w in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()

    assert both_running.is_set()
    ids = [message_id for message_id, _ in runs]
    assert len(ids) == len(set(ids)) == 200
    assert {w for _, w in runs} == {"w1", "w2"}
    with database.transaction() as session:
        statuses = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
        assert dict(statuses) == {OutboxStatus.DONE.value: 200}
        assert session.scalar(select(func.max(OutboxMessage.attempts))) == 1


def test_outcomes_of_a_batch_are_logged_and_a_lost_lease_logs_nothing(
    database: Database, clock: ManualClock, settings: Settings, handler: Calls, handlers: Handlers
) -> None:
    first, stolen, third = (add(database, clock) for _ in range(3))

    async def steal_one(message: OutboxMessage) -> None:
        if message.id == stolen:
            # Meanwhile the lease passed to another worker (this one was presumed dead).
            with database.transaction() as session:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == stolen)
                    .values(lease_owner="w-other")
                )
        elif message.id == third:
            raise RuntimeError("receiver said 500")

    handler.behaviour = steal_one
    assert asyncio.run(make_worker(handlers, database, clock, settings).run_once()) == 3
    with database.transaction() as session:
        logs = {m: list(repository.attempts_of(session, m)) for m in (first, stolen, third)}
    assert [(a.number, a.outcome, a.worker_id) for a in logs[first]] == [(1, "delivered", "w1")]
    assert logs[stolen] == []
    assert [(a.outcome, a.error) for a in logs[third]] == [
        ("retry", "RuntimeError: receiver said 500")
    ]
    assert logs[first][0].started_at == clock.now()
    assert logs[first][0].duration_ms >= 0
    assert load(database, first).status == OutboxStatus.DONE
    assert load(database, stolen).lease_owner == "w-other"
    assert load(database, stolen).status == OutboxStatus.PENDING


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 30 ", timedelta(seconds=30)),
        ("99999999999", timedelta(hours=1)),  # capped: a longer wait is not believed
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # HTTP dates are not followed
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_up_to_the_cap(
    header: str | None, expected: timedelta | None
) -> None:
    assert retry_after(header, cap=timedelta(hours=1)) == expected


def test_an_outcome_that_cannot_be_recorded_is_logged_and_the_lease_left_to_expire(
    database: Database,
    clock: ManualClock,
    settings: Settings,
    handler: Calls,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    handlers: Handlers,
) -> None:
    first, second = add(database, clock), add(database, clock)
    runner = make_worker(handlers, database, clock, settings)

    def unreachable(items: object) -> None:
        raise OSError("database unreachable")

    monkeypatch.setattr(runner, "_record_many", unreachable)
    assert asyncio.run(runner.run_once()) == 2  # the batch ends; no exception escapes it
    assert len(handler.seen) == 2
    logged = [r for r in caplog.records if "could not record the outcome" in r.getMessage()]
    assert sorted(r.getMessage().rsplit(" ", 1)[1] for r in logged) == sorted(
        [str(first), str(second)]
    )
    assert all(r.exc_info is not None and isinstance(r.exc_info[1], OSError) for r in logged)
    for message_id in (first, second):
        stored = load(database, message_id)
        assert stored.status == OutboxStatus.PENDING
        assert stored.lease_owner == "w1"  # another worker takes it once the lease expires
        assert stored.attempts == 1
