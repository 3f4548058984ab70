"""The task schedule: jobs run in the order added, each run says what each did, the loop
survives a failed run and logs the counts."""

from __future__ import annotations

import asyncio

import pytest

from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule


def test_jobs_run_in_the_order_added_and_report_their_counts(runtime: Runtime) -> None:
    order: list[str] = []
    schedule = Schedule()

    def job(name: str, count: int) -> None:
        def run(given: Runtime) -> int:
            assert given is runtime
            order.append(name)
            return count

        schedule.add(name, run)

    job("expired", 2)
    job("reminders queued", 0)
    job("tokens purged", 1)
    assert schedule.run_once(runtime) == {"expired": 2, "reminders queued": 0, "tokens purged": 1}
    assert order == ["expired", "reminders queued", "tokens purged"]
    assert schedule.names == order


def test_a_name_is_scheduled_once(runtime: Runtime) -> None:
    schedule = Schedule()
    schedule.add("tokens purged", lambda _: 0)
    with pytest.raises(ValueError, match="tokens purged"):
        schedule.add("tokens purged", lambda _: 1)


def test_a_run_that_did_something_is_logged_with_its_counts(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    schedule = Schedule()
    schedule.add("expired", lambda _: 0)
    schedule.add("reminders queued", lambda _: 0)
    caplog.set_level("INFO")
    schedule.run_once(runtime)
    assert "schedules:" not in caplog.text  # nothing done, nothing said
    schedule.add("tokens purged", lambda _: 3)
    schedule.run_once(runtime)
    assert "schedules: 0 expired, 0 reminders queued, 3 tokens purged" in caplog.text


def test_a_failed_run_is_logged_and_the_loop_goes_on(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    fast = Runtime(
        runtime.settings.model_copy(update={"schedule_interval_seconds": 0.001}),
        runtime.database,
        runtime.clock,
    )
    stop = asyncio.Event()
    calls: list[int] = []

    def flaky(_: Runtime) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database unreachable")
        stop.set()
        return 0

    schedule = Schedule()
    schedule.add("flaky", flaky)
    asyncio.run(asyncio.wait_for(schedule.run_forever(fast, stop), 30))
    assert len(calls) == 2
    assert "schedules: run failed" in caplog.text
