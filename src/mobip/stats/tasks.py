"""The stats files' scheduled work: the .gz files whose 24 hours are past are deleted, with
their rows (several workers at once: a row deleted twice is deleted once, a file missing is
fine), and so are the files a crash left without a row once they are as old."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule, in_batches
from mobip.stats import service

DELETED = "stats files deleted"


def delete_expired(runtime: Runtime) -> int:
    """Delete the expired stats files and their rows, and the files a crash left; how many."""

    def step(session: Session, batch: int) -> tuple[int, int]:
        now = runtime.clock.now()
        done = service.delete_expired_files(session, runtime.settings, now, batch)
        done += service.delete_left_files(session, runtime.settings, now, batch - done)
        return done, done

    return in_batches(runtime, step)


def register(schedule: Schedule) -> None:
    schedule.add(DELETED, delete_expired)
