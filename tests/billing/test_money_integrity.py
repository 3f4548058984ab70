"""Money integrity (issue 13): hypothesis draws histories (merchants, fee schedules changed
mid-month, payments, partial and full refunds, early closes, month ends with the worker's
issuing) and checks, on SQLite and PostgreSQL:

- each merchant's invoices form a chain from its first period start, without gap or overlap;
- every PAID transaction's fee is on exactly one invoice (the one whose period holds its
  paid_at), and after a last close none with a fee is left out;
- each invoice's amount_excl_tax, percentage and fixed parts, count and total are the sums of
  its transactions'; VAT is vat_of(amount_excl_tax) once; amount = excl. tax + VAT;
- numbers run 1, 2, 3… per year without a gap; every amount is an int (no float anywhere).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from billing.support import merchant, pay, set_fees
from mobip.accounts.models import Account
from mobip.billing import service
from mobip.billing.models import Invoice
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.models import metadata
from mobip.transactions import service as transactions
from mobip.transactions.models import Transaction

START = datetime(2026, 1, 1, 12, tzinfo=UTC)

schedules = st.tuples(st.integers(0, 1_000), st.integers(0, 100))  # basis points, fixed
# A step: its kind (payments the most frequent), then values each kind takes what it needs from:
# which merchant or payment, an amount, a schedule, whether the amount is all that is left (a
# refund) or the close is everyone's, and how many hours before now a close ends.
KINDS = ["pay"] * 5 + ["refund"] * 2 + ["merchant", "schedule", "close", "month_end"]
steps = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 50),
    st.integers(1, 200_000),
    schedules,
    st.booleans(),
    st.integers(0, 72),
)
# The merchants there from the start (their schedules), then the steps, each after some hours.
histories = st.tuples(
    st.lists(schedules, min_size=1, max_size=3),
    st.lists(st.tuples(steps, st.integers(0, 240)), min_size=8, max_size=40),
)


Step = tuple[str, int, int, tuple[int, int], bool, int]


@dataclass
class Model:
    merchants: list[Account] = field(default_factory=list)
    schedule: dict[int, tuple[int, int]] = field(default_factory=dict)
    payments: list[tuple[Account, str, int]] = field(default_factory=list)  # trid, total
    refunded: dict[str, int] = field(default_factory=dict)
    expected_fee: dict[str, int] = field(default_factory=dict)


def _percent(basis_points: int) -> str:
    return f"{basis_points // 100}.{basis_points % 100:02d}"


def _empty(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            session.execute(delete(table))


def _issue(runtime: Runtime, work: object) -> None:
    runtime.database.run(work)  # type: ignore[arg-type]


def _step(runtime: Runtime, clock: ManualClock, model: Model, step: Step) -> None:
    kind, which, amount, schedule, whole, hours = step
    shop = model.merchants[which % len(model.merchants)] if model.merchants else None
    if kind == "merchant" and len(model.merchants) < 3:
        bp, fixed = schedule
        new = merchant(runtime, percent=_percent(bp), fixed=fixed, name="M").account
        model.merchants.append(new)
        model.schedule[new.id] = schedule
    elif kind == "schedule" and shop is not None:
        set_fees(runtime, shop.uid, _percent(schedule[0]), schedule[1])
        model.schedule[shop.id] = schedule
    elif kind == "pay" and shop is not None:
        trid = pay(runtime, shop, amount, clock.now())
        model.payments.append((shop, trid, amount))
        model.expected_fee[trid] = transactions.compute_fee(amount, *model.schedule[shop.id]).total
    elif kind == "refund" and model.payments:
        owner, trid, total = model.payments[which % len(model.payments)]
        left = total - model.refunded.get(trid, 0)
        if left > 0:
            _refund(runtime, clock, owner, trid, None if whole else min(amount, left))
            model.refunded[trid] = model.refunded.get(trid, 0) + (
                left if whole else min(amount, left)
            )
    elif kind == "close":
        uid = None if whole or shop is None else shop.uid
        until = clock.now() - service.SETTLE - timedelta(hours=hours)
        _issue(
            runtime,
            lambda session: service.close(
                session, runtime.settings, clock, until=until, account_uid=uid
            ),
        )
    elif kind == "month_end":
        clock.set(service.next_month_start(clock.now(), runtime.settings.zone) + service.SETTLE * 2)
        _issue(runtime, lambda session: service.issue_due_months(session, runtime.settings, clock))


def _refund(
    runtime: Runtime, clock: ManualClock, shop: Account, trid: str, amount: int | None
) -> None:
    """A refund through transactions' service, as refund_transaction makes one (reserved, then
    completed once the provider took it)."""
    with runtime.database.transaction() as session:
        owner = session.get(Account, shop.id)
        assert owner is not None
        reserved = transactions.reserve_refund(
            session, owner, trid, amount, provider="sandbox", clock=clock
        )
    with runtime.database.transaction() as session:
        transactions.complete_refund(session, reserved, f"sandbox_{reserved.refund_id}", clock)


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories)
def test_every_fee_is_on_exactly_one_invoice(
    runtime: Runtime,
    clock: ManualClock,
    history: tuple[list[tuple[int, int]], list[tuple[Step, int]]],
) -> None:
    _empty(runtime)
    clock.set(START)
    model = Model()
    first, later = history
    for schedule in first:
        _step(runtime, clock, model, ("merchant", 0, 1, schedule, False, 0))
    for step, hours in later:
        clock.advance(hours=hours)
        _step(runtime, clock, model, step)
    # A last close of everyone: afterwards no fee may be left out.
    clock.advance(days=1)
    last = clock.now() - service.SETTLE
    _issue(
        runtime,
        lambda session: service.close(session, runtime.settings, clock, until=last),
    )
    _check(runtime, model, last)


def _check(runtime: Runtime, model: Model, last: datetime) -> None:
    zone = runtime.settings.zone
    with runtime.database.session() as session:
        invoices = session.execute(select(Invoice).order_by(Invoice.period_start)).scalars().all()
        paid = session.execute(select(Transaction)).scalars().all()
    by_account: dict[int, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        by_account[invoice.account_id].append(invoice)
    for shop in model.merchants:
        chain = by_account.get(shop.id, [])
        if chain:
            assert chain[0].period_start == service.first_start(shop, zone)
        for before, after in pairwise(chain):
            assert before.period_end == after.period_start  # no gap, no overlap
    on: dict[int, list[Transaction]] = defaultdict(list)
    for transaction in paid:
        assert transaction.fee == model.expected_fee[transaction.trid]  # the schedule then
        assert transaction.refunded_amount == model.refunded.get(transaction.trid, 0)
        holders = [
            i
            for i in by_account.get(transaction.account_id, [])
            if i.period_start <= transaction.paid_at < i.period_end  # type: ignore[operator]
        ]
        assert len(holders) <= 1
        if holders:
            on[holders[0].id].append(transaction)
        else:
            assert transaction.fee == 0 or transaction.paid_at >= last  # nothing left out
    event("invoices: 5 or more" if len(invoices) >= 5 else f"invoices: {len(invoices)}")
    event(f"refunds: {bool(model.refunded)}")
    event(f"payments: {min(len(model.payments), 5)}")
    numbers: dict[str, list[int]] = defaultdict(list)
    for invoice in invoices:
        mine = on[invoice.id]
        for value in (
            invoice.amount_excl_tax, invoice.vat_amount, invoice.amount, invoice.fee_variable,
            invoice.fee_fixed, invoice.transactions_amount, invoice.transactions_count,
        ):  # fmt: skip
            assert type(value) is int
        assert invoice.transactions_count == len(mine)
        assert invoice.transactions_amount == sum(t.total_amount for t in mine)
        assert invoice.fee_variable == sum(t.fee_variable or 0 for t in mine)
        assert invoice.fee_fixed == sum(t.fee_fixed_part or 0 for t in mine)
        assert invoice.amount_excl_tax == sum(t.fee or 0 for t in mine) > 0
        assert invoice.vat_amount == service.vat_of(invoice.amount_excl_tax, invoice.vat_rate_bp)
        assert invoice.amount == invoice.amount_excl_tax + invoice.vat_amount
        _, year, sequence = invoice.number.split("-")
        numbers[year].append(int(sequence))
    for sequences in numbers.values():
        assert sorted(sequences) == list(range(1, len(sequences) + 1))
