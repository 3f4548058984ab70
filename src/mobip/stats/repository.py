"""The queries of stats/ tables (only this package queries them).

Reads of merchant data take the account ids of the caller's scope (``accounts.service
.subtree_ids``): a query without them cannot be written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mobip.kit.db import DriverInsert, DriverStatement, among
from mobip.stats.models import StatsDaily, StatsEvent, StatsFile

_EVENTS = cast(Table, StatsEvent.__table__)
_DAILY = cast(Table, StatsDaily.__table__)
KEY = ("account_id", "day", "channel", "currency")
# The figures an upsert adds up, in the table's order.
FIGURES = tuple(c.key for c in _DAILY.columns if c.key not in KEY)

_INSERT_EVENTS = DriverInsert(_EVENTS)


def _upsert(dialect_insert: Any) -> DriverStatement:
    values = {c.key: bindparam(c.key, type_=c.type) for c in _DAILY.columns}
    statement = dialect_insert(_DAILY).values(values)
    return DriverStatement(
        statement.on_conflict_do_update(
            index_elements=list(KEY),
            set_={name: _DAILY.c[name] + statement.excluded[name] for name in FIGURES},
        )
    )


_UPSERTS = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}


def add_events(
    conn: Connection, events: Sequence[Mapping[str, Any]], daily: Sequence[Mapping[str, Any]]
) -> None:
    """File ``events`` and add ``daily`` (one row per key, every figure) to the aggregates: two
    statements, however many events (the observer groups a batch first)."""
    _INSERT_EVENTS.execute(conn, events)
    _UPSERTS[conn.dialect.name].execute(conn, daily)


# --- rebuilding (a changed MOBIP_TIMEZONE) ------------------------------------------------------


def lock_for_rebuild(session: Session) -> None:
    """PostgreSQL: no event filed nor aggregate added until the rebuild commits (the observers
    wait; SQLite's write lock, taken at BEGIN, already does that)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE stats_events, stats_daily IN SHARE ROW EXCLUSIVE MODE"))


def event_days_page(session: Session, after: int, limit: int) -> Sequence[Any]:
    """(id, at, day) of the events with id above ``after``, in id order, at most ``limit``."""
    query = select(_EVENTS.c.id, _EVENTS.c.at, _EVENTS.c.day).where(_EVENTS.c.id > after)
    return session.execute(query.order_by(_EVENTS.c.id).limit(limit)).all()


_SET_DAY = DriverStatement(
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("row_id"))
    .values(day=bindparam("new_day", type_=_EVENTS.c.day.type))
)


def set_event_days(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of ``row_id`` and ``new_day`` (executemany by primary key)."""
    _SET_DAY.execute(session.connection(), rows)


def clear_daily(session: Session) -> None:
    session.execute(delete(_DAILY))


def event_sums_by_account(session: Session) -> Sequence[Any]:
    """(account_id, day, channel, currency, happening, count, sum(amount), sum(fee)) of the
    whole event log."""
    e = _EVENTS.c
    keys = (e.account_id, e.day, e.channel, e.currency, e.happening)
    query = select(*keys, func.count(), func.sum(e.amount), func.sum(e.fee)).group_by(*keys)
    return session.execute(query).all()


# --- reading the aggregates ---------------------------------------------------------------------


def _sums() -> list[Any]:
    return [func.sum(_DAILY.c[name]).label(name) for name in FIGURES]


def daily_sums(
    session: Session, account_ids: Sequence[int], first_day: str, last_day: str
) -> Sequence[Any]:
    """(day, channel, currency, *FIGURES) summed over ``account_ids``, for the days from
    ``first_day`` to ``last_day`` (both included): one grouped query."""
    query = (
        select(_DAILY.c.day, _DAILY.c.channel, _DAILY.c.currency, *_sums())
        .where(
            among(session, _DAILY.c.account_id, account_ids),
            _DAILY.c.day >= first_day,
            _DAILY.c.day <= last_day,
        )
        .group_by(_DAILY.c.day, _DAILY.c.channel, _DAILY.c.currency)
    )
    return session.execute(query).all() if account_ids else []


def accounts_with_events(session: Session, account_ids: Sequence[int], day: str) -> list[int]:
    """The accounts of ``account_ids`` that have any event on ``day``, ascending."""
    if not account_ids:
        return []
    query = (
        select(_DAILY.c.account_id)
        .where(among(session, _DAILY.c.account_id, account_ids), _DAILY.c.day == day)
        .group_by(_DAILY.c.account_id)
        .order_by(_DAILY.c.account_id)
    )
    return [int(account_id) for account_id in session.scalars(query)]


EVENT_COLUMNS = (
    "id",
    "trid",
    "happening",
    "at",
    "day",
    "currency",
    "amount",
    "fee",
    "net",
    "refund_id",
    "channel",
)


def events_page(
    session: Session, account_id: int, day: str, after_id: int, limit: int
) -> Sequence[Any]:
    """Up to ``limit`` events of one account on ``day`` after the event ``after_id``, in order,
    as rows of EVENT_COLUMNS (keyset pagination on the (account_id, day, id) index; Core rows,
    not ORM objects: a day's file reads them by the hundred thousand)."""
    query = (
        select(*(_EVENTS.c[name] for name in EVENT_COLUMNS))
        .where(
            _EVENTS.c.account_id == account_id,
            _EVENTS.c.day == day,
            _EVENTS.c.id > after_id,
        )
        .order_by(_EVENTS.c.id)
        .limit(limit)
    )
    return session.execute(query).all()


# --- recounts (tests, the money-integrity checks) ----------------------------------------------


def event_sums(
    session: Session, account_ids: Sequence[int], first_day: str, last_day: str
) -> Sequence[Any]:
    """(day, channel, currency, happening, count, sum(amount), sum(fee)) of the event log."""
    if not account_ids:
        return []
    query = (
        select(
            StatsEvent.day,
            StatsEvent.channel,
            StatsEvent.currency,
            StatsEvent.happening,
            func.count(),
            func.sum(StatsEvent.amount),
            func.sum(StatsEvent.fee),
        )
        .where(
            among(session, StatsEvent.account_id, account_ids),
            StatsEvent.day >= first_day,
            StatsEvent.day <= last_day,
        )
        .group_by(StatsEvent.day, StatsEvent.channel, StatsEvent.currency, StatsEvent.happening)
    )
    return session.execute(query).all()


def events_of(session: Session, account_ids: Sequence[int]) -> Sequence[StatsEvent]:
    """Every event of these accounts, in order (tests)."""
    if not account_ids:
        return []
    query = select(StatsEvent).where(among(session, StatsEvent.account_id, account_ids))
    return session.scalars(query.order_by(StatsEvent.id)).all()


# --- files -------------------------------------------------------------------------------------


def add_file(session: Session, values: Mapping[str, Any]) -> None:
    session.execute(insert(StatsFile), [dict(values)])


def get_file(session: Session, file_id: str) -> StatsFile | None:
    return session.scalars(select(StatsFile).where(StatsFile.file_id == file_id)).first()


def expired_files(session: Session, now: datetime, limit: int) -> Sequence[StatsFile]:
    query = select(StatsFile).where(StatsFile.expires_at <= now).order_by(StatsFile.id)
    return session.scalars(query.limit(limit)).all()


def known_file_ids(session: Session, file_ids: Sequence[str]) -> set[str]:
    """The ids of ``file_ids`` that have a row."""
    if not file_ids:
        return set()
    query = select(StatsFile.file_id).where(among(session, StatsFile.file_id, file_ids))
    return set(session.scalars(query).all())


def delete_files(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(delete(StatsFile).where(StatsFile.id.in_(ids)))
