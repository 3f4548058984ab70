"""stats.tasks: the worker's clean-up of the .gz files' folder. Expired files go with their rows
(tests/stats/test_endpoints.py); here, the files a crash left without a row: a ``.part`` being
written, or a written file whose row was never stored. They go once older than a file's
lifetime; a younger one (perhaps being recorded now) and a file with its row stay."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from factories import make_account
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.stats import service, tasks


def _aged(path: Path, clock: ManualClock, age: timedelta) -> Path:
    path.write_bytes(b"x")
    moment = (clock.now() - age).timestamp()
    os.utime(path, (moment, moment))
    return path


def test_files_left_by_a_crash_go_once_older_than_a_files_lifetime(
    runtime: Runtime, clock: ManualClock
) -> None:
    shop = make_account(runtime)
    written = service.write_file(
        runtime.database, runtime.settings, [shop.account.id], "2026-01-01"
    )
    with runtime.database.transaction() as session:
        service.record_file(session, shop.account, written, runtime.settings, clock.now())
    folder = service.files_folder(runtime.settings)
    recorded = folder / written.name
    day_and_a_minute = service.FILE_LIFETIME + timedelta(minutes=1)
    _aged(recorded, clock, timedelta(hours=1))
    part = _aged(folder / ".tmp123.part", clock, day_and_a_minute)
    orphan = _aged(folder / "sf_orphan00000.csv.gz", clock, day_and_a_minute)
    young = _aged(folder / "sf_young000000.csv.gz", clock, timedelta(hours=23))
    assert tasks.delete_expired(runtime) == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted([recorded.name, young.name])
    assert not part.exists() and not orphan.exists()
    # A day later the recorded one has expired (file and row) and the young orphan is old.
    clock.advance(hours=25)
    assert tasks.delete_expired(runtime) == 2  # the expired row (with its file), the orphan
    assert list(folder.iterdir()) == []
