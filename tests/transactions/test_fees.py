"""Fees (issue 13): computed once when a transaction becomes PAID, in integers, from the
schedule in force (own, nearest ancestor's, settings'), and summed by fee_totals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factories import make_account, make_transaction
from mobip.accounts import service as accounts
from mobip.accounts.models import Account, Role
from mobip.kit.clock import ManualClock
from mobip.kit.errors import InvalidField
from mobip.kit.runtime import Runtime
from mobip.transactions import service
from mobip.transactions.models import Transaction


@pytest.mark.parametrize(
    ("total", "bp", "fixed", "parts"),
    [
        (1000, 140, 25, (14, 25)),
        (50, 100, 0, (1, 0)),  # 0.5 → 1: half up
        (49, 100, 0, (0, 0)),  # 0.49 → 0
        (150, 100, 0, (2, 0)),  # 1.5 → 2 (half up, not to even)
        (250, 100, 0, (3, 0)),  # 2.5 → 3
        (1000, 0, 0, (0, 0)),  # 0 %
        (1000, 0, 30, (0, 30)),  # fixed only
        (20, 140, 25, (0, 20)),  # capped: the fixed part gives way
        (100, 5000, 80, (50, 50)),  # capped: the percentage part is kept whole
        (100, 10000, 5, (100, 0)),  # 100 %: the whole total, no fixed part left
        (0, 140, 25, (0, 0)),
    ],
)
def test_compute_fee_rounds_half_up_and_caps_at_the_total(
    total: int, bp: int, fixed: int, parts: tuple[int, int]
) -> None:
    fee = service.compute_fee(total, bp, fixed)
    assert fee.parts == parts
    assert fee.total == sum(parts) <= total


@given(st.integers(0, 10**12), st.integers(0, 10_000), st.integers(0, 10**6))
def test_compute_fee_matches_exact_rational_arithmetic(total: int, bp: int, fixed: int) -> None:
    from fractions import Fraction

    exact = Fraction(total * bp, 10_000)
    variable = int(exact) + (1 if exact - int(exact) >= Fraction(1, 2) else 0)
    fee = service.compute_fee(total, bp, fixed)
    assert fee.variable == variable
    assert fee.total == min(variable + fixed, total)


@pytest.mark.parametrize(
    ("text", "bp"), [("1.4", 140), ("0", 0), ("100", 10_000), ("0.05", 5), ("2.50", 250)]
)
def test_percent_is_parsed_exactly(text: str, bp: int) -> None:
    assert accounts.parse_fee_percent(text) == bp


@pytest.mark.parametrize("text", ["1.405", "-1", "100.01", "abc", "NaN", "inf", ""])
def test_bad_percent_names_the_field(text: str) -> None:
    with pytest.raises(InvalidField) as raised:
        accounts.parse_fee_percent(text)
    assert "percent" in str(raised.value.message)


def pay(runtime: Runtime, transaction: Transaction) -> Transaction:
    with runtime.database.transaction() as session:
        row = session.get(Transaction, transaction.id)
        assert row is not None
        assert service.mark_paid(session, row, now=runtime.clock.now(), settings=runtime.settings)
        return row


def set_fees(runtime: Runtime, account: Account, **kwargs: object) -> None:
    with runtime.database.transaction() as session:
        accounts.set_fees(
            session,
            account.uid,
            percent=kwargs.get("percent"),  # type: ignore[arg-type]
            fixed=kwargs.get("fixed"),  # type: ignore[arg-type]
            clear=bool(kwargs.get("clear")),
            now=runtime.clock.now(),
        )


def test_schedule_is_inherited_merchant_then_partner_then_settings(runtime: Runtime) -> None:
    runtime.settings.default_fee_percent = runtime.settings.default_fee_percent.__class__("2")
    runtime.settings.default_fee_fixed = 10
    partner = make_account(runtime, role=Role.PARTNER)
    shop = make_account(runtime, parent=partner).account
    total = 1500
    assert pay(runtime, make_transaction(runtime, shop)).fee == 30 + 10  # settings
    set_fees(runtime, partner.account, percent="1.4", fixed=25)
    assert pay(runtime, make_transaction(runtime, shop)).fee == 21 + 25  # the partner's
    set_fees(runtime, shop, percent="0", fixed=5)
    paid = pay(runtime, make_transaction(runtime, shop))  # its own
    assert (paid.fee, paid.fee_bp, paid.fee_fixed, paid.fee_variable) == (5, 0, 5, 0)
    assert paid.total_amount == total
    set_fees(runtime, shop, clear=True)
    assert pay(runtime, make_transaction(runtime, shop)).fee == 46  # the partner's again
    with runtime.database.session() as session:
        row = session.get(Account, shop.id)
        assert row is not None
        schedule = accounts.fee_schedule_in_force(session, row, runtime.settings)
    assert (schedule.percent, schedule.fixed, schedule.source) == ("1.40", 25, partner.account.uid)


def test_a_schedule_change_after_payment_changes_no_past_fee(
    runtime: Runtime, clock: ManualClock
) -> None:
    shop = make_account(runtime).account
    set_fees(runtime, shop, percent="1.4", fixed=25)
    first = pay(runtime, make_transaction(runtime, shop))
    set_fees(runtime, shop, percent="10", fixed=0)
    clock.advance(minutes=1)
    second = pay(runtime, make_transaction(runtime, shop))
    with runtime.database.session() as session:
        again = session.get(Transaction, first.id)
        assert again is not None
        assert (again.fee, again.fee_variable, again.fee_fixed_part) == (46, 21, 25)
        assert again.paid_at == second.paid_at - timedelta(minutes=1)
    assert second.fee == 150


def test_fee_totals_groups_paid_transactions_by_account_over_a_half_open_period(
    runtime: Runtime, clock: ManualClock
) -> None:
    a = make_account(runtime).account
    b = make_account(runtime).account
    set_fees(runtime, a, percent="1.4", fixed=25)
    start = clock.now()
    pay(runtime, make_transaction(runtime, a))
    pay(runtime, make_transaction(runtime, a, item_amount=100, tax_amount=0))
    make_transaction(runtime, b)  # PENDING: not counted
    clock.advance(hours=1)
    end = clock.now()
    pay(runtime, make_transaction(runtime, b))  # paid at ``end``: the next period's
    with runtime.database.session() as session:
        totals = service.fee_totals(session, start=start, end=end)
        later = service.fee_totals(session, start=end, end=end + timedelta(hours=1))
        only_b = service.fee_totals(session, start=start, end=end, account_ids=[b.id])
        assert service.last_paid_at(session, b.id) == end
    assert totals == [service.FeeTotal(a.id, "EUR", 2, 1600, 21 + 1, 50, 72)]
    assert [(t.account_id, t.transactions, t.fee) for t in later] == [(b.id, 1, 0)]
    assert only_b == []
