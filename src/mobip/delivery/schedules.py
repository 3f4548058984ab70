"""Time-driven work the worker does every ``MOBIP_SCHEDULE_INTERVAL_SECONDS``.

- Expiry: a PENDING transaction past ``transaction_ttl`` days becomes CANCELLED with reason
  EXPIRED, and its ``resp_code=CANCELLED`` callback is queued (``transactions.service``).
- Automatic resend: a PENDING payment request is sent again (occasion ``reminder``) when
  ``retry_period`` days have passed since the last request sent for it (initial, manual or
  reminder), at most ``retry_attempts`` times (``transactions.automatic_resends`` counts them).
- Purge: access tokens past their lifetime or inactivity limit are deleted.

Several workers may run these at once: expiry goes through the status guard
(``repository.change_status``), a resend is queued only by the run whose conditional UPDATE of
``automatic_resends`` matched, and deleting a row twice deletes it once. Each batch is one
database transaction, so a reminder's count and its outbox row commit together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from mobip.auth import repository as auth_repository
from mobip.kit.runtime import Runtime
from mobip.transactions import repository as transactions
from mobip.transactions import service as transactions_service

logger = logging.getLogger(__name__)

# Batches per job and run: a backlog is worked through over several runs, not in one long one.
MAX_BATCHES = 20


@dataclass(frozen=True)
class Report:
    expired: int = 0
    reminders: int = 0
    tokens_purged: int = 0
    throttles_purged: int = 0


def _in_batches(runtime: Runtime, step: Callable[[Session, int], tuple[int, int]]) -> int:
    """``step(session, batch_size)`` in one transaction per batch, until a batch comes back short
    (or MAX_BATCHES); ``step`` returns (rows seen, rows changed). The total changed."""
    batch = runtime.settings.schedule_batch_size
    changed = 0
    for _ in range(MAX_BATCHES):
        with runtime.database.transaction(immediate=True) as session:
            seen, done = step(session, batch)
        changed += done
        if seen < batch:
            break
    return changed


def expire_due(runtime: Runtime) -> int:
    """Cancel (reason EXPIRED) the PENDING transactions past their expiry; how many changed."""
    clock = runtime.clock

    def step(session: Session, batch: int) -> tuple[int, int]:
        due = transactions.due_for_expiry(session, clock.now(), batch)
        return len(due), sum(transactions_service.expire_if_due(session, t, clock) for t in due)

    return _in_batches(runtime, step)


def send_reminders(runtime: Runtime) -> int:
    """Queue the automatic resends that are due; how many were queued by this run."""
    clock = runtime.clock

    def step(session: Session, batch: int) -> tuple[int, int]:
        now = clock.now()
        due = transactions.due_for_reminder(session, now, batch)
        queued = 0
        for transaction in due:
            if not transactions.count_automatic_resend(session, transaction, now):
                continue  # another worker counted it (and queued the reminder) first
            # The same queueing as the initial request: media, target and outbox kind.
            transactions_service.queue_request(session, transaction, "reminder", clock)
            queued += 1
        return len(due), queued

    return _in_batches(runtime, step)


def purge_tokens(runtime: Runtime) -> int:
    """Delete expired access tokens; how many were deleted."""
    inactivity = timedelta(seconds=runtime.settings.token_inactivity_seconds)
    with runtime.database.transaction(immediate=True) as session:
        return auth_repository.delete_expired_tokens(session, runtime.clock.now(), inactivity)


def purge_login_throttles(runtime: Runtime) -> int:
    """Delete get_token failure counters whose window has closed; how many were deleted.

    Counters are kept per address and per (address, api_account_id): without a purge, a client
    cycling through account ids would leave one row per id behind for good.
    """
    window = timedelta(seconds=runtime.settings.login_window_seconds)
    with runtime.database.transaction(immediate=True) as session:
        return auth_repository.delete_closed_windows(session, runtime.clock.now(), window)


def run_once(runtime: Runtime) -> Report:
    """Every job once (synchronous: call it in a thread from async code).

    Expiry runs first, so a transaction that has just expired gets no reminder.
    """
    report = Report(
        expired=expire_due(runtime),
        reminders=send_reminders(runtime),
        tokens_purged=purge_tokens(runtime),
        throttles_purged=purge_login_throttles(runtime),
    )
    if report != Report():
        logger.info(
            "schedules: %d expired, %d reminders queued, %d tokens purged, "
            "%d login throttle counters purged",
            report.expired,
            report.reminders,
            report.tokens_purged,
            report.throttles_purged,
        )
    return report


async def run_forever(runtime: Runtime, stop_event: asyncio.Event) -> None:
    """``run_once`` now and every ``schedule_interval_seconds`` until ``stop_event`` is set."""
    interval = runtime.settings.schedule_interval_seconds
    while not stop_event.is_set():
        try:
            await asyncio.to_thread(run_once, runtime)
        except Exception:
            logger.exception("schedules: run failed; trying again in %gs", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), interval)
