"""api/batch's group commit, on SQLite and PostgreSQL: batches, failures, order, shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, insert, select

from factories import own_tables
from mobip.api.batch import GroupCommit
from mobip.kit.db import Database

metadata = MetaData()
# A table of this test's own, made and dropped here (the shared schema stays untouched).
notes = Table(
    "test_batch_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(40), unique=True, nullable=False),
)


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    with own_tables(database, metadata) as made:
        yield made


class Recorder:
    """A writer that inserts notes and records each batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.hold = threading.Event()
        self.hold.set()

    def __call__(self, conn: Connection, items: Sequence[Any]) -> None:
        self.hold.wait(10)
        self.batches.append(list(items))
        conn.execute(insert(notes), [{"text": text} for text in items])


def queue_behind_the_first(group: GroupCommit, writer: Recorder, texts: list[str]) -> None:
    """Write ``texts`` at once while the first one's batch waits, so the others queue up."""
    writer.hold.clear()

    async def main() -> None:
        first = asyncio.ensure_future(group.write(writer, texts[0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(group.write(writer, text)) for text in texts[1:]]
        writer.hold.set()
        await asyncio.gather(first, *rest)

    try:
        asyncio.run(main())
    finally:
        group.close()


def stored(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.scalars(select(notes.c.text).order_by(notes.c.id)))


def test_queued_writes_share_one_transaction_and_keep_their_order(db: Database) -> None:
    group = GroupCommit(db)
    writer = Recorder()
    queue_behind_the_first(group, writer, [f"n{i}" for i in range(50)])
    assert writer.batches == [["n0"], [f"n{i}" for i in range(1, 50)]]
    assert stored(db) == [f"n{i}" for i in range(50)]
    assert group.written == 50
    assert group.batches == 2


def test_a_bad_item_fails_alone(db: Database) -> None:
    """A unique violation fails its own request; the rest of its batch is still committed."""
    group = GroupCommit(db)
    writer = Recorder()

    async def main() -> list[Any]:
        await group.write(writer, "taken")
        writer.hold.clear()
        first = asyncio.ensure_future(group.write(writer, "a"))
        await asyncio.sleep(0.05)
        batch = [group.write(writer, text) for text in ("b", "taken", "c")]
        writer.hold.set()
        await first
        return await asyncio.gather(*batch, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        group.close()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Exception)
    assert "unique" in str(results[1]).lower()
    assert sorted(stored(db)) == ["a", "b", "c", "taken"]
    # The batch of three failed as a whole, then went again one item per transaction.
    assert writer.batches[-4:] == [["b", "taken", "c"], ["b"], ["taken"], ["c"]]


def test_a_write_is_committed_when_it_returns(db: Database) -> None:
    """Another connection sees the row as soon as the awaiting request resumes."""
    group = GroupCommit(db)
    seen: list[list[str]] = []

    async def main() -> None:
        for text in ("x", "y"):
            await group.write(Recorder(), text)
            seen.append(stored(db))

    try:
        asyncio.run(main())
    finally:
        group.close()
    assert seen == [["x"], ["x", "y"]]


def test_a_cancelled_request_still_gets_its_row_and_others_are_unaffected(db: Database) -> None:
    group = GroupCommit(db)
    writer = Recorder()

    async def main() -> None:
        writer.hold.clear()
        gone = asyncio.ensure_future(group.write(writer, "gone"))
        stays = asyncio.ensure_future(group.write(writer, "stays"))
        await asyncio.sleep(0.05)
        gone.cancel()
        writer.hold.set()
        await stays
        with pytest.raises(asyncio.CancelledError):
            await gone

    try:
        asyncio.run(main())
    finally:
        group.close()
    assert sorted(stored(db)) == ["gone", "stays"]


def test_close_writes_what_is_queued_then_refuses(db: Database) -> None:
    group = GroupCommit(db)
    writer = Recorder()

    async def main() -> None:
        writer.hold.clear()
        pending = [asyncio.ensure_future(group.write(writer, f"q{i}")) for i in range(5)]
        await asyncio.sleep(0.05)
        closer = asyncio.get_running_loop().run_in_executor(None, group.close)
        await asyncio.sleep(0.05)
        writer.hold.set()
        await closer
        await asyncio.gather(*pending)
        with pytest.raises(RuntimeError, match="closed"):
            await group.write(writer, "late")

    asyncio.run(main())
    assert sorted(stored(db)) == [f"q{i}" for i in range(5)]


def test_max_batch_bounds_a_transaction(db: Database) -> None:
    group = GroupCommit(db, max_batch=4)
    writer = Recorder()
    queue_behind_the_first(group, writer, [f"m{i}" for i in range(10)])
    assert [len(batch) for batch in writer.batches] == [1, 4, 4, 1]
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(db, max_batch=0)


def test_under_load_a_batch_waits_for_more(db: Database) -> None:
    """After a batch of at least busy_batch items, the next one gathers what comes in its delay."""
    group = GroupCommit(db, delay=0.5, busy_batch=3)
    writer = Recorder()

    async def main() -> None:
        await group.write(writer, "b0")
        writer.hold.clear()
        first = asyncio.ensure_future(group.write(writer, "h0"))
        await asyncio.sleep(0.05)
        busy = [asyncio.ensure_future(group.write(writer, f"h{i}")) for i in range(1, 4)]
        writer.hold.set()
        await asyncio.gather(first, *busy)  # batches [h0] then [h1, h2, h3]: busy from now on
        late = asyncio.ensure_future(group.write(writer, "x"))
        await asyncio.sleep(0.05)
        later = asyncio.ensure_future(group.write(writer, "y"))
        await asyncio.gather(late, later)

    try:
        asyncio.run(main())
    finally:
        group.close()
    assert writer.batches == [["b0"], ["h0"], ["h1", "h2", "h3"], ["x", "y"]]


def test_a_lone_write_never_waits_for_company(db: Database) -> None:
    """With a delay far beyond the test's timeout, writes one at a time still go straight in."""
    group = GroupCommit(db, delay=600, busy_batch=2)
    writer = Recorder()

    async def main() -> None:
        for text in ("one", "two", "three"):
            await asyncio.wait_for(group.write(writer, text), timeout=20)

    try:
        asyncio.run(main())
    finally:
        group.close()
    assert writer.batches == [["one"], ["two"], ["three"]]


def test_close_during_the_wait_still_writes_the_batch(db: Database) -> None:
    writer = Recorder()

    async def main() -> None:
        fresh = GroupCommit(db, delay=600, busy_batch=2)
        writer.hold.clear()
        first = asyncio.ensure_future(fresh.write(writer, "f0"))
        await asyncio.sleep(0.05)
        pair = [asyncio.ensure_future(fresh.write(writer, f"f{i}")) for i in (1, 2)]
        writer.hold.set()
        await asyncio.gather(first, *pair)
        waiting = asyncio.ensure_future(fresh.write(writer, "last"))  # waits up to 600 s
        await asyncio.sleep(0.05)
        await asyncio.get_running_loop().run_in_executor(None, fresh.close)
        await asyncio.wait_for(waiting, timeout=20)

    asyncio.run(main())
    assert "last" in stored(db)
    assert writer.batches[-1] == ["last"]


def test_a_negative_delay_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="delay"):
        GroupCommit(db, delay=-1)
