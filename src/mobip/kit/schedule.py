"""Time-driven work: the jobs each domain registers (its ``tasks.py``), run every
``MOBIP_SCHEDULE_INTERVAL_SECONDS`` by the worker, which knows no domain.

A job takes the runtime and returns how many things it did (rows expired, messages queued, rows
purged); it opens its own transactions. Several workers may run the same jobs at once: each job
must make that safe itself (a guarded UPDATE, a delete that deletes once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from mobip.kit.runtime import Runtime

logger = logging.getLogger(__name__)

Job = Callable[[Runtime], int]

# Batches per job and run: a backlog is worked through over several runs, not in one long one.
MAX_BATCHES = 20


def in_batches(runtime: Runtime, step: Callable[[Session, int], tuple[int, int]]) -> int:
    """``step(session, batch_size)`` in one transaction per batch, until a batch comes back short
    (or MAX_BATCHES); ``step`` returns (rows seen, rows changed). The total changed.

    One transaction per batch: all a step writes (a status change and the messages it queues)
    commits together or not at all.
    """
    batch = runtime.settings.schedule_batch_size
    changed = 0
    for _ in range(MAX_BATCHES):
        with runtime.database.transaction(immediate=True) as session:
            seen, done = step(session, batch)
        changed += done
        if seen < batch:
            break
    return changed


class Schedule:
    """The jobs of one runtime (``runtime.state(Schedule)``), run in the order they were added."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def add(self, name: str, job: Job) -> None:
        """Run ``job`` on every run; ``name`` says what its count is ("3 reminders queued").

        A second job of the same name is refused: two domains would be counting as one.
        """
        if name in self._jobs:
            raise ValueError(f"a job named {name!r} is already scheduled")
        self._jobs[name] = job

    @property
    def names(self) -> list[str]:
        """The jobs' names, in the order they run."""
        return list(self._jobs)

    def run_once(self, runtime: Runtime) -> dict[str, int]:
        """Every job once, in order (synchronous: call it in a thread from async code); what
        each did, by name. A job that raises ends the run (the later ones wait for the next)."""
        report = {name: job(runtime) for name, job in self._jobs.items()}
        if any(report.values()):
            logger.info(
                "schedules: %s", ", ".join(f"{count} {name}" for name, count in report.items())
            )
        return report

    async def run_forever(self, runtime: Runtime, stop_event: asyncio.Event) -> None:
        """``run_once`` now and every ``schedule_interval_seconds`` until ``stop_event`` is set."""
        interval = runtime.settings.schedule_interval_seconds
        while not stop_event.is_set():
            try:
                await asyncio.to_thread(self.run_once, runtime)
            except Exception:
                logger.exception("schedules: run failed; trying again in %gs", interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), interval)
