"""kit/db: UTCDateTime (SQLAlchemy's SQLite DATETIME text, UTC both ways); driver-level INSERTs;
units of work that take SQLite's write lock up front and run again on "database is locked"."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from factories import own_tables
from mobip.kit.db import (
    Database,
    DriverInsert,
    DriverStatement,
    UTCDateTime,
    among,
    is_busy,
)
from mobip.kit.errors import MobipError

SQLITE = sqlite_dialect()
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)

metadata = MetaData()
moments = Table(
    "test_db_moments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime()),
)
# A table of every kind of column DriverStatement converts, and one filled by INSERT … SELECT.
rows_table = Table(
    "test_db_rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False),
    Column("amount", BigInteger),
    Column("done", Boolean, nullable=False, default=False),
    Column("at", UTCDateTime()),
)
copies = Table(
    "test_db_copies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("row_id", Integer),
    Column("at", UTCDateTime()),
)


@given(
    moment=st.datetimes(
        timezones=ZONES, min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)
    )
)
def test_sqlite_text_is_sqlalchemys_own_datetime_text(moment: datetime) -> None:
    ours = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    theirs = DATETIME().bind_processor(SQLITE)
    assert ours is not None and theirs is not None
    stored = ours(moment)
    assert stored == theirs(moment.astimezone(UTC).replace(tzinfo=None))
    read = UTCDateTime().dialect_impl(SQLITE).result_processor(SQLITE, None)
    assert read is not None
    back = read(stored)
    assert back == moment and back.tzinfo is UTC


def test_sqlite_refuses_a_naive_datetime_and_passes_none() -> None:
    bind = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    read = UTCDateTime().dialect_impl(SQLITE).result_processor(SQLITE, None)
    assert bind is not None and read is not None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 1, 1, 12, 0))
    assert bind(None) is None and read(None) is None
    # Text without microseconds (written by hand or by another tool) still reads.
    assert read("2026-01-01 12:00:00") == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    with own_tables(database, metadata) as made:
        yield made


def test_round_trip_and_comparison_on_the_database(db: Database) -> None:
    paris = timezone(timedelta(hours=1))
    earlier = datetime(2026, 3, 1, 9, 30, 0, tzinfo=paris)
    later = datetime(2026, 3, 1, 9, 30, 0, 1, tzinfo=UTC)
    with db.engine.begin() as conn:
        conn.execute(insert(moments), [{"at": earlier}, {"at": later}])
    with db.engine.connect() as conn:
        stored = list(conn.scalars(select(moments.c.at).order_by(moments.c.id)))
        after = list(conn.scalars(select(moments.c.id).where(moments.c.at > earlier)))
        if db.is_sqlite:
            raw = conn.execute(text("SELECT at FROM test_db_moments ORDER BY id")).scalars().all()
            assert raw == ["2026-03-01 08:30:00.000000", "2026-03-01 09:30:00.000001"]
    assert stored == [earlier, later]
    assert all(moment.tzinfo is UTC for moment in stored)
    assert after == [2]


def test_driver_statement_stores_what_core_stores(db: Database) -> None:
    at = datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=timezone(timedelta(hours=2)))
    rows = [
        {"name": "a", "amount": 10**15, "done": True, "at": at},
        {"name": "b", "amount": None, "done": False, "at": None},
    ]
    driver = DriverInsert(rows_table)
    with db.engine.begin() as conn:
        driver.execute(conn, rows)
        conn.execute(insert(rows_table), rows)  # the same rows through Core
        driver.execute(conn, [])  # nothing to do
    with db.engine.connect() as conn:
        stored = conn.execute(select(rows_table).order_by(rows_table.c.id)).all()
        raw = conn.execute(
            text("SELECT name, amount, done, at FROM test_db_rows ORDER BY id")
        ).all()
    by_driver, by_core = [r[1:] for r in stored[:2]], [r[1:] for r in stored[2:]]
    assert by_driver == by_core
    assert by_driver[0] == ("a", 10**15, True, at)
    assert raw[:2] == raw[2:]  # byte for byte the same in the database


def test_driver_statement_runs_any_core_statement(db: Database) -> None:
    """An INSERT … SELECT by a bound name: the create path's first status events."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    copy = DriverStatement(
        insert(copies).from_select(
            ["row_id", "at"],
            select(rows_table.c.id, rows_table.c.at).where(rows_table.c.name == bindparam("name")),
        )
    )
    with db.engine.begin() as conn:
        conn.execute(insert(rows_table), [{"name": n, "at": at} for n in ("x", "y", "z")])
        copy.execute(conn, [{"name": "z"}, {"name": "x"}])
    with db.engine.connect() as conn:
        ids = dict(conn.execute(select(rows_table.c.name, rows_table.c.id)).all())
        copied = conn.execute(select(copies.c.row_id, copies.c.at).order_by(copies.c.id)).all()
    assert copied == [(ids["z"], at), (ids["x"], at)]


@pytest.mark.parametrize("count", [0, 1, 500, 501, 70_000])
def test_among_takes_any_number_of_values(db: Database, count: int) -> None:
    """70,000 values: over the 65,535 parameters of a PostgreSQL statement (and SQLite's default
    build's 32,766), where a partner's subtree as an IN list failed. Integers and strings, the
    same rows found whichever form the dialect gets (SQLite: a list up to 500, JSON above)."""
    with db.engine.begin() as conn:
        conn.execute(insert(rows_table), [{"name": f"n{i}", "amount": i} for i in range(1, 31)])
    wanted = [*range(-count, 0), 3, 7, 30][-count:] if count else []
    names = [f"n{n}" for n in wanted]
    with db.engine.connect() as conn:
        by_amount = conn.scalars(
            select(rows_table.c.amount).where(among(conn, rows_table.c.amount, wanted))
        ).all()
        by_name = conn.scalars(
            select(rows_table.c.name).where(among(conn, rows_table.c.name, names))
        ).all()
    expected = sorted(n for n in wanted if 1 <= n <= 30)
    assert sorted(by_amount) == expected
    assert sorted(by_name) == sorted(f"n{n}" for n in expected)


def test_among_with_a_session(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(insert(rows_table), [{"name": "a"}, {"name": "b"}])
    with db.transaction() as session:
        found = session.scalars(
            select(rows_table.c.name).where(among(session, rows_table.c.name, ["b", "c"] * 400))
        ).all()
    assert found == ["b"]


def test_driver_insert_refuses_to_skip_a_python_default(db: Database) -> None:
    """Core would fill ``done`` from its default; at the driver's level nobody would."""
    with db.engine.begin() as conn, pytest.raises(ValueError, match="done"):
        DriverInsert(rows_table).execute(conn, [{"name": "a", "amount": 1, "at": None}])
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rows_table)).scalar() == 0


# --- writers under contention (issue 9, finding 4) ------------------------------------------


def names_in(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return sorted(conn.scalars(select(rows_table.c.name)))


def overtaken_write(db: Database, session: Session, overtake: bool) -> None:
    """Read, let another connection commit a write (when ``overtake``), then write."""
    session.execute(select(func.count()).select_from(rows_table)).scalar_one()
    if overtake:
        with db.engine.begin() as other:
            other.execute(insert(rows_table), {"name": "other"})
    session.execute(insert(rows_table), {"name": "mine"})


def test_a_reader_overtaken_by_another_writer_is_run_again(db: Database) -> None:
    """The CLI's failure: a transaction that reads, then writes after another commit."""
    if db.is_sqlite:
        # SQLite refuses the upgrade at once (SQLITE_BUSY_SNAPSHOT): no busy handler helps.
        with pytest.raises(OperationalError) as caught, db.transaction() as session:
            overtaken_write(db, session, overtake=True)
        assert is_busy(caught.value)
        assert names_in(db) == ["other"]  # nothing of ours was kept
        with db.engine.begin() as conn:
            conn.execute(rows_table.delete())
    attempts: list[int] = []

    def work(session: Session) -> int:
        attempts.append(1)
        overtaken_write(db, session, overtake=len(attempts) == 1)
        return len(attempts)

    assert db.run(work, immediate=False) == (2 if db.is_sqlite else 1)
    assert names_in(db) == ["mine", "other"]


def test_run_takes_the_write_lock_before_its_first_read(db: Database) -> None:
    """``run``'s default: no other writer can commit between the work's read and its write."""
    probed: list[bool] = []

    def work(session: Session) -> str:
        session.execute(select(func.count()).select_from(rows_table)).scalar_one()
        if db.is_sqlite:
            other = sqlite3.connect(str(db.engine.url.database), timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError) as caught:
                    other.execute("BEGIN IMMEDIATE")
                probed.append(is_busy(caught.value))
            finally:
                other.close()
        session.execute(insert(rows_table), {"name": "mine"})
        return "done"

    assert db.run(work) == "done"
    assert probed == ([True] if db.is_sqlite else [])
    assert names_in(db) == ["mine"]


def test_run_rolls_back_and_does_not_repeat_other_errors(db: Database) -> None:
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        session.execute(insert(rows_table), {"name": "first"})
        session.execute(insert(rows_table), {"id": 1, "name": "again"})  # the same id

    with db.engine.begin() as conn:
        conn.execute(insert(rows_table), {"id": 1, "name": "kept"})
    with pytest.raises(IntegrityError) as caught:
        db.run(work)
    assert not is_busy(caught.value)
    assert attempts == [1]
    assert names_in(db) == ["kept"]


class _Counted(MobipError):
    keep_changes = True


@pytest.mark.parametrize(("error", "kept"), [(_Counted, ["counted"]), (MobipError, [])])
def test_run_keeps_the_work_behind_an_error_only_when_it_says_so(
    db: Database, error: type[MobipError], kept: list[str]
) -> None:
    """get_token's failed attempt is counted (kept) though the request fails; others roll back."""
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        session.execute(insert(rows_table), {"name": "counted"})
        raise error()

    with pytest.raises(error):
        db.run(work)
    assert attempts == [1]  # a MobipError is not run again
    assert names_in(db) == kept


def test_retry_busy_gives_up_after_its_bound(db: Database) -> None:
    """Always overtaken: it stops trying once ``within`` has passed and raises the error."""
    if not db.is_sqlite:
        pytest.skip("SQLITE_BUSY is SQLite's own")
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        overtaken_write(db, session, overtake=True)

    with pytest.raises(OperationalError) as caught:
        db.run(work, immediate=False, within=0.05)
    assert is_busy(caught.value)
    assert len(attempts) >= 2
    assert names_in(db) == ["other"] * len(attempts)


def test_is_busy_knows_sqlites_locked_database_only() -> None:
    assert is_busy(sqlite3.OperationalError("database is locked"))
    assert not is_busy(sqlite3.OperationalError("no such table: t"))
    assert not is_busy(sqlite3.IntegrityError("database is locked"))
    assert not is_busy(ValueError("database is locked"))
