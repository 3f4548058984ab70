"""The transactions' scheduled work, run by the worker every ``MOBIP_SCHEDULE_INTERVAL_SECONDS``.

- Expiry: a PENDING transaction past ``transaction_ttl`` days becomes CANCELLED with reason
  EXPIRED, and its ``resp_code=CANCELLED`` callback is queued (``service.expire_if_due``).
- Automatic resend: a PENDING payment request is sent again (occasion ``reminder``) when
  ``retry_period`` days have passed since the last request sent for it (initial, manual or
  reminder), at most ``retry_attempts`` times (``transactions.automatic_resends`` counts them).

Several workers may run these at once: expiry goes through the status guard
(``repository.change_status``), and a resend is queued only by the run whose conditional UPDATE
of ``automatic_resends`` matched. Each batch is one database transaction, so a reminder's count
and its outbox row commit together.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule, in_batches
from mobip.transactions import repository, service

# The jobs' names: a schedules run logs "N expired, N reminders queued".
EXPIRED = "expired"
REMINDERS = "reminders queued"


def expire_due(runtime: Runtime) -> int:
    """Cancel (reason EXPIRED) the PENDING transactions past their expiry; how many changed."""
    clock = runtime.clock

    def step(session: Session, batch: int) -> tuple[int, int]:
        due = repository.due_for_expiry(session, clock.now(), batch)
        return len(due), sum(service.expire_if_due(session, t, clock) for t in due)

    return in_batches(runtime, step)


def send_reminders(runtime: Runtime) -> int:
    """Queue the automatic resends that are due; how many were queued by this run."""
    clock = runtime.clock

    def step(session: Session, batch: int) -> tuple[int, int]:
        now = clock.now()
        due = repository.due_for_reminder(session, now, batch)
        queued = 0
        for transaction in due:
            if not repository.count_automatic_resend(session, transaction, now):
                continue  # another worker counted it (and queued the reminder) first
            # The same queueing as the initial request: media, target and outbox kind.
            service.queue_request(session, transaction, "reminder", clock)
            queued += 1
        return len(due), queued

    return in_batches(runtime, step)


def register(schedule: Schedule) -> None:
    """Expiry first, so a transaction that has just expired gets no reminder."""
    schedule.add(EXPIRED, expire_due)
    schedule.add(REMINDERS, send_reminders)
