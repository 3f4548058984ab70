"""The worker's schedule issues the month's invoices (wired like every domain's jobs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billing.support import invoices, merchant, pay
from mobip.billing.tasks import ISSUED
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule
from mobip.wiring import wire


def test_the_schedule_issues_each_month_once(runtime: Runtime, clock: ManualClock) -> None:
    shop = merchant(runtime).account
    pay(runtime, shop, 10_000, datetime(2026, 1, 9, tzinfo=UTC))
    schedule = wire(runtime).state(Schedule)
    clock.set(datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    assert schedule.run_once(runtime)[ISSUED] == 0
    clock.set(datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=6))
    assert schedule.run_once(runtime)[ISSUED] == 1
    assert schedule.run_once(runtime)[ISSUED] == 0
    [invoice] = invoices(runtime, shop)
    assert invoice.number == "MOBIP-2026-000001"
