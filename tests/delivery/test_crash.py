"""`mobip worker` processes killed at random moments lose no callback; SIGTERM releases or finishes.

Real processes, a real loopback receiver that verifies every signature with ``standardwebhooks``,
the real database of the test (SQLite file or PostgreSQL). Nothing sleeps: the test waits for
events (requests arriving, rows changing, processes exiting), each with a generous deadline.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import func, select

from callback_receiver import Receiver
from delivery.support import wait_until
from factories import make_account
from mobip.delivery import repository, service
from mobip.delivery.models import OutboxMessage, OutboxStatus
from mobip.kit.runtime import Runtime

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "20"))
# On SQLite each round starts a Python process that takes seconds to get going; fewer rounds keep
# the suite's time in bounds while still killing workers mid-batch on the default database.
SQLITE_ROUNDS = int(os.environ.get("CRASH_ROUNDS_SQLITE", "5"))
MESSAGES = 120


def worker_env(runtime: Runtime, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOBIP_")}
    env.update(
        MOBIP_ENV="development",
        MOBIP_DATA_DIR=str(runtime.settings.data_dir),
        MOBIP_DATABASE_URL=runtime.settings.resolved_database_url,
        MOBIP_SECRET_KEY=runtime.settings.resolved_secret_key,
        MOBIP_WORKER_LEASE_SECONDS="5",
        MOBIP_WORKER_BATCH_SIZE="8",
        MOBIP_WORKER_POLL_SECONDS="0.05",
        MOBIP_SCHEDULE_INTERVAL_SECONDS="3600",
        MOBIP_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mobip", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def queue_callbacks(runtime: Runtime, account_id: int, url: str, count: int) -> list[int]:
    with runtime.database.transaction() as session:
        return [
            service.enqueue(
                session,
                kind=service.CALLBACK,
                target=url,
                payload={"trid": f"tr_{i}", "track_id": f"t{i}", "resp_code": "PROCESSED"},
                clock=runtime.clock,
                account_id=account_id,
                subject=f"tr_{i}",
                # Killed claims count as attempts; this test is about loss, not about giving up.
                max_attempts=1000,
            ).id
            for i in range(count)
        ]


def statuses(runtime: Runtime) -> dict[str, int]:
    with runtime.database.transaction() as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    return {status: count for status, count in rows}


def test_workers_killed_at_random_moments_lose_no_callback(
    runtime: Runtime, receiver: Receiver
) -> None:
    from mobip.kit.clock import SystemClock

    rounds = min(ROUNDS, SQLITE_ROUNDS) if runtime.database.is_sqlite else ROUNDS
    runtime.clock = SystemClock()  # the worker processes run on real time
    merchant = make_account(runtime)
    with runtime.database.transaction() as session:
        receiver.secret = service.callback_secret(
            session, merchant.account.id, runtime.encryptor, runtime.clock.now()
        )
    ids = queue_callbacks(runtime, merchant.account.id, receiver.url("/cb?shop=1"), MESSAGES)
    env = worker_env(runtime)
    rng = random.Random(20261125)
    kills = 0
    for _ in range(rounds):
        seen = len(receiver.requests)
        process = start_worker(env)
        try:
            target = seen + rng.randint(1, 6)
            with receiver.changed:
                receiver.changed.wait_for(
                    lambda t=target: len(receiver.requests) >= t or process.poll() is not None,
                    60,
                )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            process.stderr.close()  # type: ignore[union-attr]
        kills += process.returncode == -signal.SIGKILL
        if statuses(runtime).get(OutboxStatus.DONE.value, 0) == MESSAGES:
            break
    assert kills >= rounds - 1
    # A last worker finishes the work, then stops cleanly on SIGTERM.
    final = start_worker(env)
    try:
        wait_until(
            lambda: statuses(runtime).get(OutboxStatus.DONE.value, 0) == MESSAGES,
            "every message delivered",
            120,
        )
    except AssertionError:
        with runtime.database.transaction() as session:
            left = session.scalars(
                select(OutboxMessage).where(OutboxMessage.status != OutboxStatus.DONE.value)
            ).all()
            detail = [
                (
                    m.id,
                    m.status,
                    m.attempts,
                    m.lease_owner,
                    m.lease_expires_at,
                    m.next_attempt_at,
                    m.last_error,
                )
                for m in left
            ]
        raise AssertionError(f"not delivered: {detail[:5]} statuses={statuses(runtime)}") from None
    finally:
        final.send_signal(signal.SIGTERM)
        _, stderr = final.communicate(timeout=60)
    assert final.returncode == 0, stderr.decode()[-2000:]
    assert statuses(runtime) == {OutboxStatus.DONE.value: MESSAGES}

    by_trid: dict[str, set[str]] = defaultdict(set)
    for request in receiver.requests:
        assert request.verified is True
        assert request.query["shop"] == ["1"]
        by_trid[request.form["trid"][0]].add(request.headers["webhook-id"])
    # Every message delivered at least once; duplicates carry one and the same webhook-id.
    assert by_trid == {f"tr_{i}": {f"msg_mobip_{mid}"} for i, mid in enumerate(ids)}
    assert len(receiver.requests) >= MESSAGES
    print(f"\n{kills} kills, {len(receiver.requests) - MESSAGES} duplicate deliveries")


@contextlib.contextmanager
def worker_holding_one_callback(
    runtime: Runtime, receiver: Receiver, **settings: str
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A worker process whose one callback the receiver holds until the block ends (the message
    stays in hand); the process and its message id. A process still running is killed."""
    from mobip.kit.clock import SystemClock

    runtime.clock = SystemClock()
    merchant = make_account(runtime)
    [message_id] = queue_callbacks(runtime, merchant.account.id, receiver.url(), 1)
    receiver.gate = threading.Event()
    process = start_worker(worker_env(runtime, **settings))
    try:
        receiver.wait_for(1, 60)
        yield process, message_id
    finally:
        receiver.gate.set()
        if process.poll() is None:
            process.kill()
            process.wait()


def read_until(process: subprocess.Popen[bytes], text: bytes) -> None:
    """Read the worker's log until a line holding ``text``."""
    assert process.stderr is not None
    for line in process.stderr:
        if text in line:
            return


def stored(runtime: Runtime, message_id: int) -> OutboxMessage:
    with runtime.database.transaction() as session:
        message = repository.get(session, message_id)
        assert message is not None
        return message


def assert_released(runtime: Runtime, message_id: int) -> None:
    """Given back unfinished: pending, no lease, and the unfinished attempt not counted."""
    message = stored(runtime, message_id)
    assert message.status == OutboxStatus.PENDING
    assert message.lease_owner is None
    assert message.attempts == 0


def test_sigterm_releases_the_message_in_hand_after_the_grace_period(
    runtime: Runtime, receiver: Receiver
) -> None:
    settings = {"MOBIP_WORKER_SHUTDOWN_GRACE_SECONDS": "0.2"}
    with worker_holding_one_callback(runtime, receiver, **settings) as (process, message_id):
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert_released(runtime, message_id)


def test_sigterm_finishes_a_message_that_completes_within_the_grace_period(
    runtime: Runtime, receiver: Receiver
) -> None:
    settings = {"MOBIP_WORKER_SHUTDOWN_GRACE_SECONDS": "60", "MOBIP_LOG_LEVEL": "INFO"}
    with worker_holding_one_callback(runtime, receiver, **settings) as (process, message_id):
        process.send_signal(signal.SIGTERM)
        read_until(process, b"finishing the batch in hand")  # the worker received the signal
        # The worker is now stopping with the message in hand; let the receiver answer.
        assert receiver.gate is not None
        receiver.gate.set()
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    message = stored(runtime, message_id)
    assert message.status == OutboxStatus.DONE
    assert message.attempts == 1


def test_a_second_sigterm_releases_the_message_in_hand_at_once(
    runtime: Runtime, receiver: Receiver
) -> None:
    # A grace period longer than the wait below: only the second signal can end it in time.
    settings = {"MOBIP_WORKER_SHUTDOWN_GRACE_SECONDS": "600", "MOBIP_LOG_LEVEL": "INFO"}
    with worker_holding_one_callback(runtime, receiver, **settings) as (process, message_id):
        process.send_signal(signal.SIGTERM)
        read_until(process, b"finishing the batch in hand")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"releasing the messages in hand" in stderr
    assert b"finishing the batch in hand" not in stderr  # logged once, for the first signal
    assert_released(runtime, message_id)
