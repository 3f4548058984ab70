"""The checkout's scheduled work, run by the worker every ``MOBIP_SCHEDULE_INTERVAL_SECONDS``:
refunds a stopped process left half done, and the page starts the per-client limit no longer
counts (older than the attempt window: deleted in batches).

A refund is reserved (PENDING) in one unit of work, its provider called with no transaction
open, and its outcome recorded in a second (``refunds.py``). A process that stops between the
two leaves the reservation PENDING: its amount stays counted against what is left, and neither
the merchant nor its callback learns the outcome. Stripe's webhook completes such a refund when
Stripe made it; this job does it for every provider: a reservation PENDING for ``STALE_AFTER``
is sent to its provider again with the same idempotency key (Stripe refunds once per key; the
sandbox moves no money), then recorded or released exactly as the request would have done it.
Two workers retrying the same one at once are harmless: the provider call is idempotent and
``transactions.complete_refund`` counts a refund once.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from mobip.checkout import refunds, service
from mobip.checkout.errors import RefundFailed
from mobip.checkout.providers.base import ProviderError, Refund
from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule, in_batches
from mobip.transactions import service as transactions

log = logging.getLogger(__name__)

# Far longer than any request: a provider call times out in seconds.
STALE_AFTER = timedelta(minutes=10)
BATCH = 50
# The job's name: a schedules run logs "N stale refunds settled".
SETTLED = "stale refunds settled"
STARTS_DELETED = "page starts deleted"


def settle_stale_refunds(runtime: Runtime) -> int:
    """Send the stale PENDING refunds to their provider again and record or release each; how
    many were settled."""
    before = runtime.clock.now() - STALE_AFTER

    def plan(session: Session) -> list[refunds.PlannedRefund]:
        stale = transactions.stale_reservations(session, before, BATCH)
        return [p for r in stale if (p := refunds.replan(session, r, runtime)) is not None]

    settled = 0
    for planned in runtime.database.run(plan, immediate=False):
        outcome = planned.call()  # no transaction open
        # Released (committed) on a refusal: nothing refunded, the amount is free again.
        with contextlib.suppress(RefundFailed):
            runtime.database.run(partial(_finish, planned, outcome, runtime), immediate=True)
        settled += 1
        reserved = planned.reserved
        log.info(
            "stale refund settled",
            extra={"fields": {"trid": reserved.trid, "refund_id": reserved.refund_id}},
        )
    return settled


def _finish(
    planned: refunds.PlannedRefund,
    outcome: Refund | ProviderError,
    runtime: Runtime,
    session: Session,
) -> dict[str, Any]:
    return refunds.finish_refund(session, planned, outcome, runtime)


def delete_old_starts(runtime: Runtime) -> int:
    """Delete the page starts older than the attempt window; how many."""

    def step(session: Session, batch: int) -> tuple[int, int]:
        done = service.delete_old_starts(session, runtime, batch)
        return done, done

    return in_batches(runtime, step)


def register(schedule: Schedule) -> None:
    schedule.add(SETTLED, settle_stale_refunds)
    schedule.add(STARTS_DELETED, delete_old_starts)
