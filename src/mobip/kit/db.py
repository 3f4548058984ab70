"""Database engine, sessions and column types shared by every domain."""

from __future__ import annotations

import json
import logging
import operator
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import ClauseElement, FromClause, Insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

from mobip.kit.errors import MobipError

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


log = logging.getLogger("mobip.db")

T = TypeVar("T")

# Database threads of a server process (see api/routing): the pool keeps one connection each, so
# connections are not closed and reopened under load.
POOL_SIZE = 8

# How long SQLite's own busy handler waits for the write lock (PRAGMA busy_timeout) before a
# statement fails with "database is locked"; a writer that began with BEGIN IMMEDIATE waits
# here, in line with every other writer of every process.
BUSY_TIMEOUT_SECONDS = 10
# How long Database.run / retry_busy keep running a unit of work again while SQLite still answers
# "database is locked"; one last attempt may add up to BUSY_TIMEOUT_SECONDS to it.
BUSY_RETRY_SECONDS = 30.0
# SQLite's primary result code SQLITE_BUSY ("database is locked"); the extended codes
# (SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_RECOVERY, ...) carry it in their low byte.
_SQLITE_BUSY = 5


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite, one function each way instead of the two chained above and SQLAlchemy's
    # DATETIME text formatting (a %-format) and parsing (a regex): the create path binds eight
    # datetimes per request. Same text as SQLAlchemy's SQLite storage format,
    # "YYYY-MM-DD HH:MM:SS.ffffff", so stored rows read and compare as before.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _utc_from_sqlite_text


def _sqlite_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _utc_from_sqlite_text(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's events below issue BEGIN themselves so that
    # SQLite's transactions start when SQLAlchemy's do (pysqlite's own handling defers them).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    # Straight to the driver: this runs once per transaction, on every request.
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, pool: bool = True) -> Engine:
    """An engine for SQLite (WAL mode) or PostgreSQL (psycopg 3)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS},
            pool_size=POOL_SIZE,
            max_overflow=POOL_SIZE,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not pool:
        return create_engine(url, poolclass=NullPool)
    return create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE, pool_pre_ping=True)


def insert_new(session: Session, obj: Any) -> int:
    """INSERT a new mapped object's set attributes with one Core statement; sets and returns its id.

    For the create path's hot rows: the ORM's unit of work costs several times the statement
    (bench/api.py). Unset attributes get their column defaults. The object is not attached to the
    session, so the caller must only read back what it set.
    """
    state = inspect(obj)
    values = {
        prop.columns[0].key: state.dict[prop.key]
        for prop in state.mapper.column_attrs
        if prop.key in state.dict
    }
    # On the session's connection: Session.execute adds the ORM's statement handling.
    statement = _insert_returning_id(state.mapper.local_table)
    new_id = session.connection().execute(statement, values).scalar_one()
    obj.id = new_id
    return int(new_id)


class DriverStatement:
    """A Core statement run with the driver's own executemany, for hot batches of rows.

    SQLAlchemy compiles it once per dialect, and each bound parameter's type converts the values
    (so rows are stored exactly as Core would store them); what is skipped is Core's per-row
    execution work, which cost as much as SQLite itself on the create path (bench/api.py). Every
    row maps each bound parameter's name to its value.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[tuple[str, str], _DriverSql] = {}

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        compiled = self._compiled(conn.dialect)
        conn.exec_driver_sql(compiled.sql, [compiled.values(row) for row in rows])

    def fetch(self, conn: Connection, row: Mapping[str, Any]) -> Sequence[Any]:
        """Run a SELECT once with ``row``'s parameters and return its rows (a hot lookup: no
        per-call statement building, cache key or result processing; the values come back as
        the driver gives them)."""
        compiled = self._compiled(conn.dialect)
        return conn.exec_driver_sql(compiled.sql, compiled.values(row)).all()

    def _compiled(self, dialect: Dialect) -> _DriverSql:
        key = (dialect.name, str(dialect.paramstyle))
        found = self._by_dialect.get(key)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            if compiled.positional:
                names = tuple(compiled.positiontup or ())
            else:
                names = tuple(compiled.params)
            processors = [
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            ]
            found = _DriverSql(
                str(compiled),
                names,
                operator.itemgetter(*names),
                tuple((i, p) for i, p in enumerate(processors) if p is not None),
                compiled.positional,
            )
            self._by_dialect[key] = found
        return found


class DriverInsert:
    """INSERTs into ``table`` of the columns its rows have, as DriverStatements (one per set of
    columns; every row of one call has the same keys). A column left out gets its server default
    or NULL: Core's Python-side defaults do not run here, so a column that has one must be given.
    """

    def __init__(self, table: Table) -> None:
        self.table = table
        self._by_columns: dict[tuple[str, ...], DriverStatement] = {}

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns = tuple(rows[0])
        statement = self._by_columns.get(columns)
        if statement is None:
            statement = self._by_columns[columns] = self._statement(columns)
        statement.execute(conn, rows)

    def _statement(self, columns: tuple[str, ...]) -> DriverStatement:
        table = self.table
        skipped = [c.key for c in table.columns if c.key not in columns and c.default is not None]
        if skipped:
            raise ValueError(f"columns with a Python-side default must be given: {skipped}")
        values = {name: bindparam(name, type_=table.c[name].type) for name in columns}
        return DriverStatement(insert(table).values(values))


@dataclass(frozen=True)
class _DriverSql:
    sql: str
    names: tuple[str, ...]
    getter: Callable[[Mapping[str, Any]], Any]
    # (position, bind processor) of the columns whose type converts values (datetimes, booleans).
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]
    positional: bool

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """One row's parameters, in the driver's paramstyle (a tuple or a dict)."""
        found = self.getter(row)
        values = list(found) if len(self.names) > 1 else [found]
        for position, process in self.conversions:
            values[position] = process(values[position])
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))


def upsert_statement(session: Session, model: type[Base]) -> PgInsert | SqliteInsert:
    """An INSERT into ``model`` that takes ON CONFLICT clauses, in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


# Up to this many values, SQLite gets a plain IN list (one parameter each; its planner knows the
# list); above, one JSON parameter. A statement takes at most 65,535 parameters on PostgreSQL's
# protocol and 32,766 on SQLite as built by default (Debian's allows 250,000): a partner's subtree
# of 70,000 merchants failed as an IN list.
_SQLITE_IN_LIST_MAX = 500


def among(
    bind: Session | Connection,
    column: ColumnElement[Any] | QueryableAttribute[Any],
    values: Sequence[Any],
) -> ColumnElement[bool]:
    """``column IN (values)`` in one bound parameter, however many values: on PostgreSQL
    ``column = ANY(:array)`` (also cheaper to bind and plan than a long IN list); on SQLite
    ``column IN (SELECT value FROM json_each(:json))`` above a few hundred values."""
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    if isinstance(column, QueryableAttribute):
        column = column.expression
    if dialect.name == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    if len(values) <= _SQLITE_IN_LIST_MAX:
        return column.in_(values)
    listed = func.json_each(literal(json.dumps(list(values)))).table_valued("value")
    return column.in_(select(listed.c.value))


def insert_unless_present(
    session: Session, model: type[Base], unique: Sequence[str], **values: Any
) -> bool:
    """INSERT one row unless a row with the same ``unique`` columns exists; True when inserted.

    ON CONFLICT DO NOTHING on both databases: of two concurrent inserts of one key, one wins.
    """
    statement = (
        upsert_statement(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(unique))
        .returning(*inspect(model).primary_key)
    )
    return session.execute(statement).first() is not None


@cache
def _insert_returning_id(table: FromClause) -> Insert:
    # Built once per table: a new statement per call costs its cache key on every execution.
    return insert(table).returning(table.c.id)  # type: ignore[arg-type]


def is_busy(error: BaseException) -> bool:
    """True for SQLite's "database is locked" (SQLITE_BUSY), raw or wrapped by SQLAlchemy."""
    found = error.orig if isinstance(error, DBAPIError) else error
    if not isinstance(found, sqlite3.OperationalError):
        return False
    code = getattr(found, "sqlite_errorcode", None)
    if code is None:  # set by Python's sqlite3 when SQLite gave a code; the message otherwise
        return "database is locked" in str(found)
    return bool((code & 0xFF) == _SQLITE_BUSY)


def _commit_or_rollback(session: Session) -> Iterator[Session]:
    try:
        yield session
        session.commit()
    except MobipError as error:
        # The work behind an error is kept only when the error says so (a counted failure).
        if error.keep_changes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise


class Database:
    """The engine and the session factory of one process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time; its busy handler sleeps and retries, which is unfair
        # under load (seconds of p99). Writers of this process queue here instead.
        self._sqlite_writer = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @cached_property
    def loop_reader(self) -> sqlite3.Connection:
        """SQLite only: a raw connection for short reads made on the event loop's own thread.

        In WAL mode a reader never waits for a writer, so a read there cannot block the loop;
        it saves the hop to a worker thread (see api/routing's fast reads). Autocommit: each
        statement is its own read transaction.
        """
        if not self.is_sqlite:
            raise RuntimeError("loop_reader is for SQLite")
        # A connection of the engine (same pragmas), detached: it stays with the loop for good.
        proxied = self.engine.raw_connection()
        dbapi = proxied.driver_connection
        assert isinstance(dbapi, sqlite3.Connection)
        proxied.detach()
        return dbapi

    @contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        """A session the caller commits. ``immediate`` takes SQLite's write lock at BEGIN.

        A write transaction that starts as a reader can fail at once on SQLite when another
        writer commits first; taking the lock at BEGIN makes it wait (busy_timeout) instead.
        On PostgreSQL ``immediate`` changes nothing.
        """
        if not (immediate and self.is_sqlite):
            with self.sessions() as session:
                yield session
            return
        with (
            self.connection(immediate=True) as conn,
            Session(bind=conn, expire_on_commit=False) as session,
        ):
            yield session

    @contextmanager
    def connection(self, *, immediate: bool = False) -> Iterator[Connection]:
        """A Core connection; ``immediate`` as in ``session`` (SQLite: this process's writer)."""
        if not (immediate and self.is_sqlite):
            with self.engine.connect() as conn:
                yield conn
            return
        with self._sqlite_writer, self.engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            yield conn

    @contextmanager
    def transaction(self, *, immediate: bool = False) -> Iterator[Session]:
        """A session committed on success and rolled back on error: the edge of a unit of work.

        A MobipError whose ``keep_changes`` is true commits what was done before it (get_token's
        failed attempt, counted for throttling) and still propagates.
        """
        with self.session(immediate=immediate) as session:
            yield from _commit_or_rollback(session)

    def retry_busy(self, attempt: Callable[[], T], *, within: float = BUSY_RETRY_SECONDS) -> T:
        """``attempt()``, run again while SQLite answers "database is locked", for ``within`` s.

        ``attempt`` must be a whole unit of work that rolls back when it fails (a
        ``transaction``, or a session the caller commits), so running it again is safe. The
        busy handler does not cover every case: a transaction that began as a reader and then
        writes fails at once (SQLITE_BUSY_SNAPSHOT) when another connection committed in
        between, and a writer that waited BUSY_TIMEOUT_SECONDS gives up. Backoff with jitter,
        5 ms doubling to 250 ms, so that processes retrying together do not collide again.
        On PostgreSQL, one attempt.
        """
        if not self.is_sqlite:
            return attempt()
        deadline = time.monotonic() + within
        pause = 0.005
        tries = 1
        while True:
            try:
                return attempt()
            except DBAPIError as error:
                remaining = deadline - time.monotonic()
                if not is_busy(error) or remaining <= 0:
                    raise
                log.debug("database is locked (try %d); running the unit of work again", tries)
            time.sleep(min(remaining, random.uniform(pause / 2, pause)))
            pause = min(pause * 2, 0.25)
            tries += 1

    def run(
        self,
        work: Callable[[Session], T],
        *,
        immediate: bool = True,
        within: float = BUSY_RETRY_SECONDS,
    ) -> T:
        """``work(session)`` in a transaction committed on success, retried while SQLite is busy.

        The one unit of work of the API (api/routing), the hosted pages and the CLI:
        ``immediate`` (the default) takes SQLite's write lock at BEGIN, so that the transaction
        waits its turn instead of failing when it first writes; ``retry_busy`` covers the rest.
        A MobipError or any other error rolls back (unless it keeps its changes, see
        ``transaction``) and propagates at once. ``work`` may run more than once:
        it must not act outside the database (send, print) before it returns.
        """

        def attempt() -> T:
            with self.transaction(immediate=immediate) as session:
                return work(session)

        return self.retry_busy(attempt, within=within)

    def dispose(self) -> None:
        self.engine.dispose()
        if "loop_reader" in self.__dict__:
            self.loop_reader.close()
