"""Group commit: the create endpoints' rows, from many requests, written in one transaction.

A request prepares its rows on the event loop (validation, ids, the reply) and awaits
``GroupCommit.write``; one thread takes everything queued since its last commit, writes it in
one database transaction and commits once. A commit costs the same for one row or fifty, and
the requests skip the hop to a worker thread each, which under load costs more than the work
(bench/api.py). The reply is sent only after the commit, as on the ordinary path.

A batch that fails is rolled back and its items are written again one per transaction, so a bad
item fails alone and every other request of the batch still gets its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from mobip.kit.db import Database

log = logging.getLogger("mobip.batch")

# Writes a list of items (of one kind) on a connection inside a transaction; never commits.
Writer = Callable[[Connection, Sequence[Any]], None]

MAX_BATCH = 128
# Seconds a batch waits for more writes when the last batch had at least BUSY_BATCH items.
DELAY = 0.004
BUSY_BATCH = 8


class _Job:
    __slots__ = ("future", "item", "loop", "writer")

    def __init__(
        self,
        writer: Writer,
        item: Any,
        future: asyncio.Future[None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.writer = writer
        self.item = item
        self.future = future
        self.loop = loop


class GroupCommit:
    """One writer thread per process committing queued writes in batches (see module doc)."""

    def __init__(
        self,
        database: Database,
        max_batch: int = MAX_BATCH,
        delay: float = DELAY,
        busy_batch: int = BUSY_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if delay < 0:
            raise ValueError("delay must be 0 or more")
        self._database = database
        self._max_batch = max_batch
        self._delay = delay
        self._busy_batch = max(busy_batch, 2)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Committed transactions and the items they held (read by tests and benchmarks).
        self.batches = 0
        self.written = 0

    async def write(self, writer: Writer, item: Any) -> None:
        """Queue ``item`` for ``writer`` and wait until it is committed (or raise its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._submit(_Job(writer, item, future, loop))
        await future

    def _submit(self, job: _Job) -> None:
        with self._lock:  # held while queueing, so nothing can follow close()'s stop mark
            if self._closed:
                raise RuntimeError("GroupCommit is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mobip-group-commit", daemon=True
                )
                self._thread.start()
            self._queue.put(job)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        previous = 0
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            # Under load (the last batch was big), wait a little for more, as PostgreSQL's
            # commit_delay does when commit_siblings are active: one commit, and one round of
            # thread hand-offs, then serve many more requests. A lone request never waits.
            wait = self._delay if previous >= self._busy_batch else 0.0
            stopping = self._collect(jobs, time.monotonic() + wait)
            previous = len(jobs)
            self._commit(jobs)
            if stopping:
                return

    def _collect(self, jobs: list[_Job], deadline: float) -> bool:
        """Add queued jobs, waiting until ``deadline`` for more; True when told to stop."""
        while len(jobs) < self._max_batch:
            remaining = deadline - time.monotonic()
            try:
                job = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                return False
            if job is None:
                return True
            jobs.append(job)
        return False

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            # A batch that outwaited SQLite's busy timeout is written again whole, not one by one.
            self._database.retry_busy(lambda: self._write(jobs))
        except Exception as error:
            if len(jobs) > 1:
                log.warning("group commit: a batch of %d failed; writing one by one", len(jobs))
                for job in jobs:
                    self._commit([job])
                return
            log.exception("group commit: a write failed")
            _settle(jobs, error)
            return
        self.batches += 1
        self.written += len(jobs)
        _settle(jobs, None)

    def _write(self, jobs: list[_Job]) -> None:
        groups: dict[Writer, list[Any]] = {}
        for job in jobs:
            groups.setdefault(job.writer, []).append(job.item)
        with self._database.connection(immediate=True) as conn, conn.begin():
            for writer, items in groups.items():
                writer(conn, items)


def _settle(jobs: list[_Job], error: BaseException | None) -> None:
    """Wake every waiting request: one call into each event loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job.future)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, futures, error)


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # the request was cancelled (client gone); its rows are committed
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
