"""stats.service: the daily aggregates are exact. Hypothesis draws histories (merchants in two
currencies, requests by e-mail and SMS and one-use QR codes, payments, partial and full refunds,
cancellations, expiries, denials, errors, hours passing across a month end, under Europe/Paris)
and checks, on SQLite and PostgreSQL, that the aggregates equal a recount from the event log and
a recount from the transactions and refunds themselves, and that each event is in exactly one
day. Also: a group commit's batch is filed in two statements."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy import event as sa_event

from factories import TRANSACTION, make_account
from mobip.accounts.models import Account, Role
from mobip.accounts.service import NewCredentials
from mobip.config import Settings
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime
from mobip.models import metadata
from mobip.stats import service
from mobip.stats.models import StatsDaily
from mobip.stats.service import Figures
from mobip.transactions import service as transactions
from mobip.transactions.models import Refund, RefundStatus, Transaction, TransactionKind
from stats.support import History

PARIS = "Europe/Paris"
# Late on 29 November (UTC): the histories cross into December in Paris.
START = datetime(2026, 11, 29, 18, tzinfo=UTC)

KINDS = ["create"] * 4 + ["pay"] * 4 + ["refund"] * 3 + ["cancel", "expire", "deny", "fail"]
steps = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 50),  # which merchant or transaction
    st.integers(1, 90_000),  # an amount
    st.sampled_from(["EMAIL", "SMS", "QR"]),
    st.booleans(),  # a refund: all that is left
    st.integers(0, 20),  # hours before the step
)
histories = st.lists(steps, min_size=15, max_size=50)


def _paris(settings_: Settings, database: Database, clock: ManualClock) -> Runtime:
    return Runtime(settings_.model_copy(update={"timezone": PARIS}), database, clock)


def _empty(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            session.execute(delete(table))


def _shops(runtime: Runtime) -> tuple[NewCredentials, list[Account]]:
    """A partner with two merchants (EUR), and a merchant of its own in USD."""
    partner = make_account(runtime, role=Role.PARTNER)
    return partner, [
        make_account(runtime, parent=partner).account,
        make_account(runtime, parent=partner).account,
        make_account(runtime, currency="USD").account,
    ]


def _step(history: History, merchants: list[Account], step: Any, now: datetime) -> None:
    kind, which, amount, channel, whole, _ = step
    runtime = history.runtime
    with runtime.database.session() as session:
        rows = session.scalars(select(Transaction).order_by(Transaction.id)).all()
    pending = [t for t in rows if t.status == "PENDING"]
    paid = [t for t in rows if t.status == "PAID" and t.refunded_amount < t.total_amount]
    if kind == "create" or not rows:
        merchant = merchants[which % len(merchants)]
        extra: dict[str, Any] = {"item_amount": amount, "tax_amount": amount // 5, "ttl_days": 1}
        if channel == "SMS":
            extra |= {"media": "SMS", "customer_phone": "+33612345678"}
        elif channel == "QR":
            extra |= {"kind": TransactionKind.ONE_USE_QR, "media": None}
        history.create(merchant, now, **extra)
    elif kind in ("pay", "cancel", "deny", "fail") and pending:
        target = pending[which % len(pending)]
        # Past its expiry, it expires first (as a read or the worker would make it).
        done = history.expire if now >= target.expires_at else getattr(history, kind)
        done(target.trid, now)
    elif kind == "expire" and pending:
        target = pending[which % len(pending)]
        history.expire(target.trid, max(now, target.expires_at))
    elif kind == "refund" and paid:
        target = paid[which % len(paid)]
        left = target.total_amount - target.refunded_amount
        history.refund(target.trid, None if whole else min(amount, left), now)


def _from_transactions(session: Any, ids: list[int], zone: Any) -> dict[Any, Figures]:
    """The figures recounted from the transactions and refunds (not from stats' tables)."""
    counted: dict[tuple[str, str, str], Figures] = {}

    def add(moment: datetime, row: Transaction, figures: Figures) -> None:
        key = (service.local_day(moment, zone), _channel(row), row.currency)
        counted.setdefault(key, Figures()).add(figures)

    rows = session.scalars(select(Transaction).where(Transaction.account_id.in_(ids))).all()
    by_id = {row.id: row for row in rows}
    for row in rows:
        add(row.created_at, row, Figures(created_count=1, created_amount=row.total_amount))
        if row.status == "PAID":
            assert row.paid_at is not None and row.fee is not None
            add(row.paid_at, row, Figures(paid_count=1, paid_amount=row.total_amount, fees=row.fee))
        elif row.status == "CANCELLED":
            name = "expired_count" if row.reason == "EXPIRED" else "cancelled_count"
            add(row.status_changed_at, row, Figures(**{name: 1}))
        elif row.status == "DENIED":
            add(row.status_changed_at, row, Figures(denied_count=1))
        elif row.status == "ERROR":
            add(row.status_changed_at, row, Figures(error_count=1))
    refunds = session.scalars(select(Refund).where(Refund.status == RefundStatus.SUCCEEDED)).all()
    for refund in refunds:
        owner = by_id[refund.transaction_id]
        assert refund.refunded_at is not None
        add(refund.refunded_at, owner, Figures(refunded_count=1, refunded_amount=refund.amount))
    return counted


def _channel(row: Transaction) -> str:
    return "QR" if row.kind == TransactionKind.ONE_USE_QR else (row.media or "EMAIL")


def _count(figures: Figures) -> int:
    return sum(getattr(figures, name) for name in service.FIGURES if name.endswith("_count"))


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories)
def test_the_aggregates_equal_recounts_from_the_events_and_the_transactions(
    settings: Settings, database: Database, clock: ManualClock, history: list[Any]
) -> None:
    runtime = _paris(settings, database, clock)
    runtime.settings.default_fee_fixed = 25
    _empty(runtime)
    partner, merchants = _shops(runtime)
    ids = [m.id for m in merchants]
    maker = History(runtime)
    now = START
    for step in history:
        now += timedelta(hours=step[-1])
        _step(maker, merchants, step, now)
    first, last = "2026-11-01", "2026-12-31"
    zone = runtime.settings.zone
    with database.session() as session:
        aggregates = service.daily_figures(session, ids, first, last)
        from_events = service.recount(session, ids, first, last)
        from_transactions = _from_transactions(session, ids, zone)
        events = service.events_of(session, ids)
        months = {m: service.month_totals(session, ids, m) for m in ("2026-11", "2026-12")}
        # The partner's rows count its subtree: its two merchants'.
        above = service.daily_figures(session, [partner.account.id], first, last)
        below = service.daily_figures(session, ids[:2], first, last)
    assert aggregates == from_events
    assert above == below
    assert aggregates == from_transactions
    # Each event in exactly one day: the days' counts add up to the events, and each event's
    # day is its moment's in Paris.
    assert sum(_count(f) for f in aggregates.values()) == len(events)
    for filed in events:
        assert filed["day"] == service.local_day(filed["at"], zone)
    per_currency: dict[str, Figures] = {}
    for (_, _, currency), figures in aggregates.items():
        per_currency.setdefault(currency, Figures()).add(figures)
    for currency, total in per_currency.items():
        month_sum = Figures()
        for month in months.values():
            month_sum.add(month.get(currency, Figures()))
        assert month_sum == total
    event(f"events: {min(len(events) // 10 * 10, 40)}+")
    event(f"days: {len({day for day, _, _ in aggregates})}")
    event(f"refunds: {Counter(e['happening'] for e in events)['refunded'] > 0}")


def test_a_batch_is_filed_in_two_statements(runtime: Runtime) -> None:
    """A group commit's N creates (transactions.service.write_created with a batch): one insert
    of the events and one upsert of the aggregates, however many transactions and keys."""
    shop = make_account(runtime)
    prepared = [
        transactions.prepare_create(
            shop.account,
            replace(
                TRANSACTION,
                item_amount=100 + i,
                media="SMS" if i % 2 else "EMAIL",
                customer_phone="+33612345678",
            ),
            runtime.settings,
            runtime.clock,
        )
        for i in range(6)
    ]
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = runtime.database.engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        with runtime.database.transaction() as session:
            transactions.write_created(session.connection(), prepared)
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    ours = [statement for statement in seen if "stats_" in statement]
    assert len(ours) == 2, ours
    assert "stats_events" in ours[0] and "stats_daily" in ours[1]
    with runtime.database.session() as session:
        figures = service.daily_figures(session, [shop.account.id], "2000-01-01", "2999-12-31")
        assert len(service.events_of(session, [shop.account.id])) == 6
    by_channel = {channel: f for (_, channel, _), f in figures.items()}
    assert by_channel["EMAIL"].created_count == 3
    assert by_channel["SMS"].created_amount == 101 + 103 + 105 + 3 * 250


def _daily_rows(database: Database) -> list[tuple[Any, ...]]:
    with database.session() as session:
        return [tuple(row) for row in session.execute(select(StatsDaily.__table__)).all()]


def test_a_rebuild_files_the_history_again_in_a_new_zone(
    settings: Settings, database: Database, clock: ManualClock
) -> None:
    """A history filed in UTC (events around midnight, across the month end), rebuilt in Paris:
    every event on its Paris day, the aggregates equal to a recount from the transactions in
    Paris, the partner's rows its merchants' sums. Rebuilt in UTC again: the rows it had."""
    runtime = Runtime(settings.model_copy(update={"timezone": "UTC"}), database, clock)
    runtime.settings.default_fee_fixed = 25
    partner, merchants = _shops(runtime)
    ids = [m.id for m in merchants]
    maker = History(runtime)
    draw = random.Random(7)
    now = START
    for _ in range(60):
        step = (
            draw.choice(KINDS),
            draw.randrange(50),
            draw.randrange(1, 90_000),
            draw.choice(["EMAIL", "SMS", "QR"]),
            draw.random() < 0.5,
            draw.randrange(0, 5),
        )
        now += timedelta(hours=step[-1], minutes=draw.randrange(60))
        _step(maker, merchants, step, now)
    filed_in_utc = _daily_rows(database)
    paris = ZoneInfo(PARIS)
    with database.transaction() as session:
        rebuilt = service.rebuild(session, paris)
    first, last = "2026-11-01", "2026-12-31"
    with database.session() as session:
        events = service.events_of(session, ids)
        aggregates = service.daily_figures(session, ids, first, last)
        from_transactions = _from_transactions(session, ids, paris)
        above = service.daily_figures(session, [partner.account.id], first, last)
        below = service.daily_figures(session, ids[:2], first, last)
    assert rebuilt.events == len(events)
    assert 0 < rebuilt.moved < len(events)  # the evening ones moved to the next day
    assert all(e["day"] == service.local_day(e["at"], paris) for e in events)
    assert aggregates == from_transactions
    assert above == below
    assert sorted(_daily_rows(database)) != sorted(filed_in_utc)
    with database.transaction() as session:
        back = service.rebuild(session, ZoneInfo("UTC"))
    assert back.moved == rebuilt.moved
    assert sorted(_daily_rows(database)) == sorted(filed_in_utc)
