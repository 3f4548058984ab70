from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from factories import make_account, make_transaction
from mobip.accounts.models import Role
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database
from mobip.kit.migrate import alembic_config, is_current, upgrade
from mobip.kit.runtime import TIMEZONE_OPTION, Runtime
from mobip.models import metadata
from mobip.transactions import service
from mobip.transactions.models import Transaction, TransactionKind
from stats.support import History


def test_migrations_from_empty_reach_head_and_match_the_models(database: Database) -> None:
    # db_url is a database migrated from empty by the fixtures.
    assert is_current(database.engine)
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_last_request_at_is_filled_from_the_outbox(runtime: Runtime, clock: ManualClock) -> None:
    """20261130_0006 sets each transaction's last_request_at to its newest payment request's
    outbox time (initial, manual or reminder; other kinds do not count)."""
    merchant = make_account(runtime).account
    resent = make_transaction(runtime, merchant)
    cancelled = make_transaction(runtime, merchant)
    qr = make_transaction(runtime, merchant, kind=TransactionKind.ONE_USE_QR, media=None)
    created_at = clock.now()
    clock.advance(days=1)
    with runtime.database.transaction() as session:
        service.resend(session, merchant, resent.trid, "EMAIL", runtime.settings, clock)
        service.cancel(session, merchant, cancelled.trid, clock)  # queues a callback
    expected = {resent.trid: clock.now(), cancelled.trid: created_at, qr.trid: None}
    url = runtime.settings.resolved_database_url
    runtime.database.engine.dispose()
    try:
        command.downgrade(alembic_config(url), "20261125_0005")
    finally:
        upgrade(url)
    with runtime.database.session() as session:
        rows = session.execute(select(Transaction.trid, Transaction.last_request_at)).all()
    assert dict(rows) == expected


def test_account_branding_goes_down_and_up_with_its_revision(runtime: Runtime) -> None:
    """20261130_0007 creates account_branding; going down drops it, going up brings it back."""
    url = runtime.settings.resolved_database_url
    runtime.database.engine.dispose()
    try:
        command.downgrade(alembic_config(url), "20261130_0006")
        with runtime.database.engine.connect() as conn:
            assert "account_branding" not in inspect(conn).get_table_names()
            assert "transactions" in inspect(conn).get_table_names()
    finally:
        upgrade(url)
    with runtime.database.engine.connect() as conn:
        assert "account_branding" in inspect(conn).get_table_names()
    assert is_current(runtime.database.engine)


def _reports(database: Database) -> tuple[list[Any], list[Any], list[Any]]:
    """stats_events (without ids, sorted), stats_daily (sorted) and feed_lines (without
    id_flux, in id order)."""
    events = sa.table("stats_events", *(sa.column(n) for n in _EVENT_COLUMNS), sa.column("id"))
    lines = sa.table("feed_lines", *(sa.column(n) for n in _LINE_COLUMNS), sa.column("id"))
    with database.engine.connect() as conn:
        found_events = sorted(
            (tuple(row) for row in conn.execute(sa.select(*(events.c[n] for n in _EVENT_COLUMNS)))),
            key=repr,
        )
        daily = sorted(
            (tuple(row) for row in conn.execute(sa.text("SELECT * FROM stats_daily"))), key=repr
        )
        found_lines = [
            tuple(row)
            for row in conn.execute(
                sa.select(*(lines.c[n] for n in _LINE_COLUMNS)).order_by(lines.c.id)
            )
        ]
    return found_events, daily, found_lines


_EVENT_COLUMNS = (
    "account_id",
    "trid",
    "refund_id",
    "happening",
    "at",
    "day",
    "channel",
    "currency",
    "amount",
    "fee",
    "net",
)
_LINE_COLUMNS = (
    "account_id",
    "trid",
    "type",
    "refund_id",
    "amount",
    "item_amount",
    "tax_amount",
    "fee",
    "net",
    "currency",
    "event_at",
    "acked_at",
)


def _history(runtime: Runtime) -> None:
    """Two merchants under a partner (EUR, XOF): payments, partial and full refunds, a
    cancellation, an expiry, a denial, an error, a one-use QR; an event at 23:30 UTC (the next
    day in Paris)."""
    history = History(runtime)
    partner = make_account(runtime, role=Role.PARTNER)
    eur = make_account(runtime, parent=partner).account
    xof = make_account(runtime, parent=partner, currency="XOF").account
    day = datetime(2026, 3, 10, 9, tzinfo=UTC)

    def at(hours: float) -> datetime:
        return day + timedelta(hours=hours)

    paid = history.create(eur, at(0), item_amount=1_001, tax_amount=199)
    qr = history.create(eur, at(1), kind=TransactionKind.ONE_USE_QR, media=None)
    history.pay(qr, at(2))
    history.cancel(history.create(eur, at(3)), at(4))
    expired = history.create(xof, at(5), ttl_days=1)
    history.deny(history.create(xof, at(6)), at(7))
    history.fail(history.create(xof, at(8)), at(9))
    sold = history.create(xof, at(10), item_amount=5_000, tax_amount=0)
    history.pay(sold, at(11))
    history.pay(paid, at(14.5))  # 23:30 UTC: the 11th in Paris
    history.refund(paid, 333, at(24))
    history.refund(paid, 333, at(25))
    history.refund(paid, None, at(48))
    history.expire(expired, at(72))
    history.refund(sold, 1_000, at(96))
    history.create(xof, at(120))  # still pending


def test_the_reports_are_filled_from_the_history(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20261130_0015 fills stats_events, stats_daily and feed_lines from the transactions and
    refunds exactly as the observers filed them (MOBIP_TIMEZONE's days, each ancestor's
    aggregates, the refunds' item/tax split, the feed in event order)."""
    monkeypatch.setenv("MOBIP_TIMEZONE", "Europe/Paris")
    runtime.database.engine.update_execution_options(**{TIMEZONE_OPTION: "Europe/Paris"})
    _history(runtime)
    filed = _reports(runtime.database)
    events, daily, lines = filed
    assert len(events) == 19 and len(lines) == 7
    assert {row[5] for row in events if row[3] == "paid" and row[7] == "EUR"} == {
        "2026-03-10",
        "2026-03-11",
    }
    assert len({row[0] for row in daily}) == 4  # both merchants, their partner, its admin
    url = runtime.settings.resolved_database_url
    runtime.database.engine.dispose()
    try:
        command.downgrade(alembic_config(url), "20261130_0011")
    finally:
        upgrade(url)
    assert _reports(runtime.database) == filed
    command.downgrade(alembic_config(url), "20261130_0014")
    upgrade(url)  # the tables are not empty: nothing is added
    assert _reports(runtime.database) == filed


def test_the_reports_are_not_filled_twice(runtime: Runtime) -> None:
    """A non-empty table is left as it is: stats_daily alone emptied gets nothing, nor does a
    feed that still has lines."""
    _history(runtime)
    events, _, lines = _reports(runtime.database)
    with runtime.database.transaction() as session:
        session.execute(sa.text("DELETE FROM stats_daily"))
    url = runtime.settings.resolved_database_url
    runtime.database.engine.dispose()
    command.downgrade(alembic_config(url), "20261130_0014")
    upgrade(url)
    assert _reports(runtime.database) == (events, [], lines)
