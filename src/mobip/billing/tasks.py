"""The fee invoices' scheduled work: after each calendar month ends (in MOBIP_TIMEZONE, SETTLE
later), the invoice of every merchant with fees in it; months missed while no worker ran are
issued in turn. Several workers may run it at once: each takes the year's counter row first
(service.issue_due_months), so the second finds the work done."""

from __future__ import annotations

from mobip.billing import service
from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule

ISSUED = "fee invoices issued"


def issue_monthly(runtime: Runtime) -> int:
    """Issue the invoices of the months that have ended; how many were issued."""
    with runtime.database.transaction(immediate=True) as session:
        issued = service.issue_due_months(session, runtime.settings, runtime.clock)
    return len(issued.numbers)


def register(schedule: Schedule) -> None:
    schedule.add(ISSUED, issue_monthly)
