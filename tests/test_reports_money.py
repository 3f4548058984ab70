"""Money integrity across the reports (issue 14): hypothesis draws histories (merchants in
several currencies under a partner, payments, partial and full refunds, cancellations, expiries,
hours passing across a month end, MOBIP_TIMEZONE=Europe/Paris) and checks, on SQLite and
PostgreSQL:

- the partner feed's lines sum, per currency, to what was PAID minus what was refunded; its
  fees are the fees taken, once (refund lines carry none); one PAYMENT line per payment, one
  REFUND line per refund; a line's amount is its item plus tax parts;
- get_stats' month totals (stats.service.month_totals) say the same sums: paid - refunded, fees,
  counts of payments and refunds; each month's paid amount is that of the feed's payment lines
  whose time falls in that month in Paris;
- every event (creation, payment, refund, cancellation, expiry) is in exactly one day: the
  daily figures' counts per Paris day are the history's events on that day;
- the fee invoices of billing, once every period is closed, hold exactly the feed's fees, per
  currency; every amount is an int.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from factories import make_account, make_transaction
from feed.support import refund
from mobip.accounts import service as accounts
from mobip.accounts.models import Account, Role
from mobip.accounts.service import NewCredentials
from mobip.billing import service as billing
from mobip.billing.models import Invoice
from mobip.config import Settings
from mobip.feed import service as feed
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime
from mobip.models import metadata
from mobip.stats import service as stats
from mobip.transactions import service as transactions

PARIS = ZoneInfo("Europe/Paris")
# 20:00 UTC on 31 January: Paris' February starts three hours later, UTC's seven.
START = datetime(2026, 1, 31, 20, tzinfo=UTC)
CURRENCIES = ["EUR", "USD", "JPY"]
KINDS = ["pay"] * 5 + ["refund"] * 3 + ["create", "cancel", "expire", "merchant"]
steps = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 50),  # which merchant or transaction
    st.integers(1, 100_000),  # an amount
    st.integers(0, 5_000),  # a tax
    st.booleans(),  # a refund of all that is left
    st.integers(0, 180),  # minutes before the step
)
histories = st.tuples(
    st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=3),  # the first merchants
    st.lists(steps, min_size=5, max_size=25),
)
Step = tuple[str, int, int, int, bool, int]


@dataclass
class Model:
    merchants: list[Account] = field(default_factory=list)
    pending: list[tuple[Account, str]] = field(default_factory=list)
    payments: list[tuple[Account, str, int]] = field(default_factory=list)  # trid, total
    refunded: dict[str, int] = field(default_factory=dict)
    paid: Counter[str] = field(default_factory=Counter)  # per currency
    refunds: Counter[str] = field(default_factory=Counter)
    refund_count: int = 0
    fees: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)  # per Paris day


@pytest.fixture
def paris(settings: Settings, database: Database, clock: ManualClock) -> Runtime:
    """The runtime of a server in Paris (made before any transaction: the day of an event is
    fixed when it is filed)."""
    return Runtime(settings.model_copy(update={"timezone": "Europe/Paris"}), database, clock)


def _empty(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            session.execute(delete(table))


def _day(moment: datetime) -> str:
    return moment.astimezone(PARIS).date().isoformat()


def _step(
    runtime: Runtime, clock: ManualClock, model: Model, partner: NewCredentials, step: Step
) -> None:
    kind, which, amount, tax, whole, _ = step
    shop = model.merchants[which % len(model.merchants)]
    now = clock.now()
    if kind == "merchant" and len(model.merchants) < 4:
        model.merchants.append(_merchant(runtime, partner, CURRENCIES[which % 3]))
    elif kind in ("pay", "create", "expire"):
        ttl = 1 if kind == "expire" else 30
        made = make_transaction(runtime, shop, item_amount=amount, tax_amount=tax, ttl_days=ttl)
        model.events[_day(now)] += 1
        if kind == "pay":
            _pay(runtime, clock, model, shop, made.trid, amount + tax)
        elif kind == "create":
            model.pending.append((shop, made.trid))
        else:  # a day later, the lazy expiry of a read
            clock.advance(days=1, seconds=1)
            with runtime.database.transaction() as session:
                found = transactions.get_of_account(session, _fresh(session, shop), made.trid)
                assert found is not None and transactions.expire_if_due(session, found, clock)
            model.events[_day(clock.now())] += 1
    elif kind == "cancel" and model.pending:
        owner, trid = model.pending.pop(which % len(model.pending))
        with runtime.database.transaction() as session:
            transactions.cancel(session, _fresh(session, owner), trid, clock)
        model.events[_day(now)] += 1
    elif kind == "refund" and model.payments:
        owner, trid, total = model.payments[which % len(model.payments)]
        left = total - model.refunded.get(trid, 0)
        if left > 0:
            taken = left if whole else min(amount, left)
            refund(runtime, owner, trid, None if whole else taken)
            model.refunded[trid] = model.refunded.get(trid, 0) + taken
            model.refunds[owner.currency] += taken
            model.refund_count += 1
            model.events[_day(now)] += 1


def _merchant(runtime: Runtime, partner: NewCredentials, currency: str) -> Account:
    creds = make_account(runtime, role=Role.MERCHANT, parent=partner, currency=currency)
    with runtime.database.transaction() as session:
        accounts.set_fees(
            session,
            creds.account.uid,
            percent="1.4",
            fixed=25,
            clear=False,
            now=runtime.clock.now(),
        )
    return creds.account


def _fresh(session: Session, account: Account) -> Account:
    found = session.get(Account, account.id)
    assert isinstance(found, Account)
    return found


def _pay(
    runtime: Runtime, clock: ManualClock, model: Model, shop: Account, trid: str, total: int
) -> None:
    with runtime.database.transaction() as session:
        found = transactions.get_of_account(session, _fresh(session, shop), trid)
        assert found is not None
        assert transactions.mark_paid(session, found, now=clock.now(), settings=runtime.settings)
        fee = found.fee
    assert fee == transactions.compute_fee(total, 140, 25).total
    model.payments.append((shop, trid, total))
    model.paid[shop.currency] += total
    model.fees[shop.currency] += fee
    model.events[_day(clock.now())] += 1


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories)
def test_the_feed_the_stats_and_the_fee_invoices_add_up_to_the_cent(
    paris: Runtime, clock: ManualClock, history: tuple[list[str], list[Step]]
) -> None:
    _empty(paris)
    clock.set(START)
    model = Model()
    first, later = history
    partner = make_account(paris, role=Role.PARTNER)
    for currency in first:
        model.merchants.append(_merchant(paris, partner, currency))
    for step in later:
        clock.advance(minutes=step[-1])
        _step(paris, clock, model, partner, step)
    lines = _feed(paris)
    _check_feed(model, lines)
    _check_stats(paris, model, lines)
    _check_invoices(paris, clock, model)
    event(f"refunds: {min(model.refund_count, 3)}")
    event(f"months: {len({day[:7] for day in model.events})}")


def _feed(runtime: Runtime) -> list[dict[str, str]]:
    """Every pending line, as an admin's get_mobip_transactions reads them page by page."""
    lines: list[dict[str, str]] = []
    cursor: feed.Cursor | None = feed.Cursor(after=0, left=None)
    while cursor is not None:
        with runtime.database.session() as session:
            page, cursor = feed.page(session, None, cursor)
        lines += page
    return lines


def _check_feed(model: Model, lines: list[dict[str, str]]) -> None:
    amounts: Counter[str] = Counter()
    fees: Counter[str] = Counter()
    for line in lines:
        amount, item, tax = int(line["amount"]), int(line["item_amount"]), int(line["tax_amount"])
        assert amount == item + tax
        assert int(line["net_amount"]) == amount - int(line["fees"])
        amounts[line["currency"]] += amount
        fees[line["currency"]] += int(line["fees"])
        if line["type"] == "REFUND":
            assert int(line["fees"]) == 0 and amount < 0 and item <= 0 and tax <= 0
    expected = {c: model.paid[c] - model.refunds[c] for c in model.paid}
    assert {c: v for c, v in amounts.items() if c in model.paid} == expected
    assert set(amounts) <= set(model.paid)
    assert +fees == +model.fees
    types = Counter(line["type"] for line in lines)
    assert (types["PAYMENT"], types["REFUND"]) == (len(model.payments), model.refund_count)
    # A fully refunded transaction's lines give back its item and tax exactly.
    by_trid: dict[str, list[dict[str, str]]] = defaultdict(list)
    for line in lines:
        by_trid[line["trid"]].append(line)
    for _, trid, total in model.payments:
        if model.refunded.get(trid) == total:
            assert sum(int(line["item_amount"]) for line in by_trid[trid]) == 0
            assert sum(int(line["tax_amount"]) for line in by_trid[trid]) == 0


def _check_stats(runtime: Runtime, model: Model, lines: list[dict[str, str]]) -> None:
    ids = [shop.id for shop in model.merchants]
    months = sorted({day[:7] for day in model.events})
    paid_in: Counter[tuple[str, str]] = Counter()  # (month, currency) from the feed
    for line in lines:
        if line["type"] == "PAYMENT":
            moment = datetime.fromisoformat(line["event_datetime"].replace("Z", "+00:00"))
            paid_in[(_day(moment)[:7], line["currency"])] += int(line["amount"])
    paid: Counter[str] = Counter()
    refunded: Counter[str] = Counter()
    fees: Counter[str] = Counter()
    counts = Counter[str]()
    days: Counter[str] = Counter()
    with runtime.database.session() as session:
        for month in months:
            for currency, figures in stats.month_totals(session, ids, month).items():
                for value in vars(figures).values():
                    assert type(value) is int
                assert figures.paid_amount == paid_in[(month, currency)]
                paid[currency] += figures.paid_amount
                refunded[currency] += figures.refunded_amount
                fees[currency] += figures.fees
                counts["paid"] += figures.paid_count
                counts["refunded"] += figures.refunded_count
            first, last = f"{month}-01", f"{month}-31"
            for (day, _, _), figures in stats.daily_figures(session, ids, first, last).items():
                days[day] += sum(
                    getattr(figures, name) for name in stats.FIGURES if name.endswith("_count")
                )
    assert +paid == +model.paid and +refunded == +model.refunds and +fees == +model.fees
    assert (counts["paid"], counts["refunded"]) == (len(model.payments), model.refund_count)
    assert +days == +model.events  # each event in exactly one (Paris) day


def _check_invoices(runtime: Runtime, clock: ManualClock, model: Model) -> None:
    clock.advance(days=40)
    with runtime.database.transaction(immediate=True) as session:
        billing.close(session, runtime.settings, clock, until=clock.now() - billing.SETTLE)
    with runtime.database.session() as session:
        invoices = session.scalars(select(Invoice)).all()
    on_invoices: Counter[str] = Counter()
    for invoice in invoices:
        assert type(invoice.amount_excl_tax) is int
        on_invoices[invoice.currency] += invoice.amount_excl_tax
    assert +on_invoices == +model.fees
