"""checkout.tasks: the page starts the per-client limit no longer counts are deleted by the
worker, in batches; the young ones stay and still count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from delivery.support import with_settings
from mobip.checkout import service, tasks
from mobip.checkout.errors import TooManyPaymentAttempts
from mobip.checkout.models import PageStart
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime


def starts(runtime: Runtime) -> int:
    with runtime.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(PageStart)) or 0)


def start(runtime: Runtime, ip: str) -> None:
    with runtime.database.transaction() as session:
        service.count_start(session, runtime, ip)


def test_old_starts_are_deleted_in_batches_and_young_ones_still_count(
    runtime: Runtime, clock: ManualClock
) -> None:
    small = with_settings(runtime, schedule_batch_size=2, checkout_max_attempts_per_client=3)
    window = timedelta(seconds=small.settings.checkout_attempt_window_seconds)
    for n in range(5):
        start(small, f"192.0.2.{n}")  # five clients, one start each: old by the end
    clock.advance(window / 2)
    start(small, "192.0.2.9")
    start(small, "192.0.2.9")
    clock.advance(window / 2)
    assert starts(small) == 7
    assert tasks.delete_old_starts(small) == 5  # batches of 2, 2, 1
    assert starts(small) == 2
    start(small, "192.0.2.9")  # its two young starts still count: the third is its last
    with pytest.raises(TooManyPaymentAttempts) as refused:
        start(small, "192.0.2.9")
    assert refused.value.retry_after_seconds == int(window.total_seconds() / 2) + 1
    assert starts(small) == 3  # the refused start left no row
    assert tasks.delete_old_starts(small) == 0
