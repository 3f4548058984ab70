"""The outbox worker: claims due messages with a lease, runs their kind's handler, records outcomes.

Delivery is at least once: a handler may run again for a message it already sent (a worker that
dies, or a lease that expires, before the outcome is recorded), so receivers must tolerate
duplicates. Database work is synchronous SQLAlchemy run in threads, each step in its own short
transaction; handlers run outside any transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from mobip.config import Settings
from mobip.delivery import repository
from mobip.delivery.models import AttemptOutcome, OutboxMessage
from mobip.delivery.service import DEFAULT_POLICY, RetryPolicy, backoff_delay
from mobip.kit.clock import Clock
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptDetail:
    """What a receiver answered, for the attempt log (a handler returns it, or raises with it)."""

    status_code: int | None = None
    response_excerpt: str | None = None


Handler = Callable[[OutboxMessage], Awaitable[AttemptDetail | None]]

# Part of a handler's run time the lease is kept for: the rest is a margin to record the outcome
# before another worker may claim the message again.
_HANDLER_SHARE_OF_LEASE = 0.8
_MAX_ERROR_CHARS = 2000


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help (e.g. HTTP 410): the message fails at once."""

    def __init__(self, message: str, *, detail: AttemptDetail | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class RetryLater(Exception):
    """Raised by a handler to retry after a delay it knows (e.g. Retry-After); an attempt."""

    def __init__(
        self, message: str, *, delay: timedelta, detail: AttemptDetail | None = None
    ) -> None:
        super().__init__(message)
        self.delay = max(delay, timedelta(0))
        self.detail = detail


def retry_after(header: str | None, *, cap: timedelta) -> timedelta | None:
    """A Retry-After header's delay in seconds, at most ``cap`` (a longer wait is not believed).

    None when absent or not a number of seconds (an HTTP date is not followed).
    """
    value = (header or "").strip()
    if not value.isdigit():
        return None
    return min(timedelta(seconds=int(value)), cap)


class DeliveryFailed(Exception):
    """Raised by a handler for a failed attempt worth retrying, with what the receiver said."""

    def __init__(self, message: str, *, detail: AttemptDetail | None = None) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Registration:
    handler: Handler
    policy: RetryPolicy


class Handlers:
    """The handler of each outbox kind: one registry per runtime (``runtime.state(Handlers)``),
    filled when its worker starts (``handlers.register_all``), so two runtimes never share one."""

    def __init__(self) -> None:
        self._registered: dict[str, Registration] = {}

    def register(self, kind: str, handler: Handler, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        """Make ``handler`` run the messages of ``kind``, retried per ``policy``'s backoff.

        ``policy.max_attempts`` is not read here: the limit is the row's ``max_attempts``, set by
        ``enqueue`` (callers pass the same policy's value).
        """
        if kind in self._registered:
            raise ValueError(f"a handler is already registered for outbox kind {kind!r}")
        self._registered[kind] = Registration(handler, policy)

    def unregister(self, kind: str) -> None:
        """Forget the handler of ``kind`` (a no-op when none is registered)."""
        self._registered.pop(kind, None)

    def registration(self, kind: str) -> Registration | None:
        """The handler and policy registered for ``kind``, if any."""
        return self._registered.get(kind)


def default_worker_id() -> str:
    """Unique per Worker instance, so a lease names exactly one holder."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


class Outcome(StrEnum):
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class _Result:
    outcome: Outcome
    error: str | None = None
    delay: timedelta = timedelta(0)
    detail: AttemptDetail | None = None
    started_at: datetime | None = None
    duration_ms: int = 0


_ATTEMPT_OUTCOMES = {
    Outcome.DONE: AttemptOutcome.DELIVERED,
    Outcome.RETRY: AttemptOutcome.RETRY,
    Outcome.FAILED: AttemptOutcome.FAILED,
}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return described[:_MAX_ERROR_CHARS]


async def _to_completion(step: Callable[..., None], *args: object) -> None:
    """Run a database step in a thread; if cancelled meanwhile, let it finish, then propagate.

    A bare ``asyncio.to_thread`` that is cancelled before a thread picks it up never runs: the
    outcome of a message already sent would be lost and the message sent again.
    """
    task = asyncio.ensure_future(asyncio.to_thread(step, *args))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def _gave_up(attempts: int, error: str) -> str:
    plural = "" if attempts == 1 else "s"
    return f"gave up after {attempts} attempt{plural}: {error}"[:_MAX_ERROR_CHARS]


class Worker:
    """Drains the outbox: ``run_once`` handles one batch, ``run_forever`` polls until stopped.

    A message whose kind has no registered handler is treated as a failed attempt (retried with
    the default backoff, failed after its ``max_attempts``) rather than failed at once: during a
    rolling upgrade an older worker may claim a kind only newer workers know, and the message
    should survive that. The error names the kind, so an unknown kind ends ``failed`` visibly.
    """

    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: Settings,
        worker_id: str | None = None,
        *,
        handlers: Handlers,
    ) -> None:
        self.handlers = handlers
        self.database = database
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = settings.worker_batch_size
        self.poll_seconds = settings.worker_poll_seconds
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self.handler_timeout = settings.worker_lease_seconds * _HANDLER_SHARE_OF_LEASE
        self._pending: list[tuple[OutboxMessage, _Result, asyncio.Future[None]]] = []
        self._flusher: asyncio.Future[None] | None = None

    @classmethod
    def for_runtime(cls, runtime: Runtime, worker_id: str | None = None) -> Worker:
        """A worker running the runtime's handlers (``runtime.state(Handlers)``)."""
        return cls(
            runtime.database,
            runtime.clock,
            runtime.settings,
            worker_id,
            handlers=runtime.state(Handlers),
        )

    async def run_once(self) -> int:
        """Claim one batch, run it, record each outcome; the number of messages claimed.

        Handlers run concurrently. If this is cancelled, messages whose handler had not finished
        are released (lease cleared, attempt uncounted) before the cancellation propagates.
        """
        messages = await self._claim_to_completion()
        if not messages:
            return 0
        results = await asyncio.gather(
            *(self._handle(message) for message in messages), return_exceptions=True
        )
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, Exception):
                # Recording failed (database unreachable): the lease will expire and the message
                # will be claimed again.
                logger.error(
                    "outbox %s: could not record the outcome of message %s",
                    self.worker_id,
                    message.id,
                    exc_info=result,
                )
        return len(messages)

    async def run_forever(self, stop_event: asyncio.Event) -> None:
        """Run batches until ``stop_event`` is set, finishing the batch in hand before returning.

        Polls every ``worker_poll_seconds`` when idle, at once after a full batch.
        """
        while not stop_event.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                logger.exception("outbox %s: batch failed", self.worker_id)
                handled = 0
            if handled >= self.batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), self.poll_seconds)

    async def _claim_to_completion(self) -> list[OutboxMessage]:
        """Claim a batch; if cancelled meanwhile, give back what the claim took, then propagate."""
        task = asyncio.ensure_future(asyncio.to_thread(self._claim))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is None:
                for message in task.result():
                    await asyncio.to_thread(self._release, message)
            raise

    def _claim(self) -> list[OutboxMessage]:
        with self.database.transaction(immediate=True) as session:
            return repository.claim_due(
                session, self.worker_id, self.clock.now(), self.lease, self.batch_size
            )

    async def _handle(self, message: OutboxMessage) -> None:
        started_at = self.clock.now()
        started = time.perf_counter()
        try:
            result = await self._run(message)
        except asyncio.CancelledError:
            await _to_completion(self._release, message)
            raise
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        result = replace(result, started_at=started_at, duration_ms=elapsed_ms)
        await self._recorded(message, result)

    async def _recorded(self, message: OutboxMessage, result: _Result) -> None:
        """Record an outcome together with others that finished meanwhile (one transaction).

        Like ``_to_completion``: once handed over, the outcome is written even if the caller is
        cancelled, so a message already sent is not sent again needlessly.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((message, result, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            await asyncio.wait([done])
            raise

    async def _flush(self) -> None:
        while self._pending:
            items, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._record_many, [(m, r) for m, r, _ in items])
            except Exception as exc:
                for _, _, done in items:
                    done.set_exception(exc)
                continue
            for _, _, done in items:
                done.set_result(None)

    async def _run(self, message: OutboxMessage) -> _Result:
        if message.attempts > message.max_attempts:
            # The worker of the last allowed attempt died or lost its lease before recording.
            return _Result(
                Outcome.FAILED,
                _gave_up(
                    message.max_attempts,
                    "the last attempt did not record an outcome before its lease expired",
                ),
            )
        found = self.handlers.registration(message.kind)
        if found is None:
            error = f"no handler registered for outbox kind {message.kind!r}"
            return self._failed_attempt(message, DEFAULT_POLICY, error)
        try:
            async with asyncio.timeout(self.handler_timeout) as deadline:
                detail = await found.handler(message)
        except PermanentFailure as exc:
            return _Result(Outcome.FAILED, _describe(exc), detail=exc.detail)
        except RetryLater as exc:
            return self._failed_attempt(
                message, found.policy, _describe(exc), exc.delay, detail=exc.detail
            )
        except TimeoutError as exc:
            error = (
                f"handler timed out after {self.handler_timeout:g}s"
                if deadline.expired()
                else _describe(exc)
            )
            return self._failed_attempt(message, found.policy, error)
        except Exception as exc:
            found_detail = exc.detail if isinstance(exc, DeliveryFailed) else None
            return self._failed_attempt(message, found.policy, _describe(exc), detail=found_detail)
        return _Result(Outcome.DONE, detail=detail)

    def _failed_attempt(
        self,
        message: OutboxMessage,
        policy: RetryPolicy,
        error: str,
        delay: timedelta | None = None,
        *,
        detail: AttemptDetail | None = None,
    ) -> _Result:
        if message.attempts >= message.max_attempts:
            return _Result(Outcome.FAILED, _gave_up(message.attempts, error), detail=detail)
        if delay is None:
            delay = backoff_delay(policy, message.attempts)
        return _Result(Outcome.RETRY, error, delay, detail=detail)

    # Outcomes take SQLite's write lock at BEGIN too: a deferred transaction that must upgrade to
    # a writer can fail at once instead of waiting when another worker is writing.
    def _record_many(self, items: list[tuple[OutboxMessage, _Result]]) -> None:
        """Outcomes and attempt logs of several messages in one transaction (deliveries in one
        UPDATE, attempt rows in one executemany)."""
        with self.database.transaction(immediate=True) as session:
            now = self.clock.now()
            delivered = repository.mark_done_many(
                session,
                [m.id for m, r in items if r.outcome is Outcome.DONE],
                self.worker_id,
                now,
            )
            recorded = [
                m.id in delivered
                if r.outcome is Outcome.DONE
                else self._record_one(session, m, r, now)
                for m, r in items
            ]
            repository.add_attempts(
                session,
                [
                    self._attempt(m, r, now)
                    for (m, r), ok in zip(items, recorded, strict=True)
                    if ok
                ],
            )
        for (message, result), was_recorded in zip(items, recorded, strict=True):
            self._after_record(message, result, was_recorded)

    def _record_one(
        self, session: Session, message: OutboxMessage, result: _Result, now: datetime
    ) -> bool:
        if result.outcome is Outcome.RETRY:
            recorded = repository.schedule_retry(
                session,
                message.id,
                self.worker_id,
                now,
                now + result.delay,
                result.error or "",
            )
        else:
            recorded = repository.mark_failed(
                session, message.id, self.worker_id, now, result.error or ""
            )
        return recorded

    def _after_record(self, message: OutboxMessage, result: _Result, recorded: bool) -> None:
        self._log(message, result, recorded)
        if not recorded:
            logger.warning(
                "outbox %s: lease on message %s passed to another worker; outcome %s dropped",
                self.worker_id,
                message.id,
                result.outcome,
            )

    def _attempt(self, message: OutboxMessage, result: _Result, now: datetime) -> dict[str, Any]:
        """The attempt log row (``OutboxAttempt`` columns)."""
        detail = result.detail or AttemptDetail()
        return {
            "message_id": message.id,
            "number": message.attempts,
            "worker_id": self.worker_id,
            "started_at": result.started_at or now,
            "duration_ms": result.duration_ms,
            "outcome": _ATTEMPT_OUTCOMES[result.outcome].value,
            "status_code": detail.status_code,
            "response_excerpt": (detail.response_excerpt or "")[:256] or None,
            "error": result.error,
        }

    def _log(self, message: OutboxMessage, result: _Result, recorded: bool) -> None:
        detail = result.detail or AttemptDetail()
        logger.info(
            "outbox attempt message=%s kind=%s attempt=%s/%s outcome=%s status=%s "
            "duration_ms=%s excerpt=%r error=%r recorded=%s",
            message.id,
            message.kind,
            message.attempts,
            message.max_attempts,
            result.outcome.value,
            detail.status_code,
            result.duration_ms,
            (detail.response_excerpt or "")[:80],
            result.error,
            recorded,
        )

    def _release(self, message: OutboxMessage) -> None:
        with self.database.transaction(immediate=True) as session:
            repository.release(session, message.id, self.worker_id, self.clock.now())
