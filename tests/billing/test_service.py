"""Issuing fee invoices: periods without gap or overlap, monthly issuing and its catch-up, early
closes, the zero-fee rule, the time zone, VAT, and gap-free numbers under concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError

from billing.support import close, invoices, merchant, monthly, pay
from factories import make_account
from mobip.accounts.errors import AccountNotFound
from mobip.accounts.models import Account, Role
from mobip.billing import service
from mobip.billing.errors import InvalidInvoiceClose
from mobip.config import Settings
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
APR = datetime(2026, 4, 1, tzinfo=UTC)
LATER = service.SETTLE * 2


def at(month: datetime, day: int, hour: int = 12) -> datetime:
    return month.replace(day=day, hour=hour)


def test_vat_is_rounded_half_up_once_in_integers() -> None:
    assert service.vat_of(0, 2000) == 0
    assert service.vat_of(25, 2000) == 5
    assert service.vat_of(3, 5000) == 2  # 1.5 → 2
    assert service.vat_of(1, 5000) == 1  # 0.5 → 1
    assert service.vat_of(100, 550) == 6  # 5.5 → 6
    assert service.vat_of(101, 550) == 6  # 5.555 → 6
    assert service.vat_of(109, 550) == 6  # 5.995 → 6
    assert service.vat_of(118, 550) == 6  # 6.49 → 6
    with pytest.raises(ValueError, match="negative"):
        service.vat_of(-1, 2000)
    assert service.number_of(2026, 1) == "MOBIP-2026-000001"


def test_monthly_issuing_makes_consecutive_invoices_once(runtime: Runtime) -> None:
    shop = merchant(runtime, external_id="shop-42").account  # created 2026-01-01 12:00 UTC
    pay(runtime, shop, 10_000, at(JAN, 5))  # 1.4 % = 140, + 25
    pay(runtime, shop, 2_050, at(JAN, 31, 23))  # 28.7 → 29, + 25
    pay(runtime, shop, 1_000, FEB)  # the first moment of February: February's
    assert monthly(runtime, FEB + service.SETTLE / 2) == []  # not settled yet
    assert monthly(runtime, FEB + LATER) == ["MOBIP-2026-000001"]
    assert monthly(runtime, FEB + LATER * 2) == []  # idempotent
    [january] = invoices(runtime, shop)
    assert (january.period_start, january.period_end) == (JAN, FEB)
    assert (january.transactions_count, january.transactions_amount) == (2, 12_050)
    assert (january.fee_variable, january.fee_fixed) == (169, 50)
    assert january.amount_excl_tax == 219
    assert (january.vat_rate_bp, january.vat_amount, january.amount) == (2000, 44, 263)
    assert january.invoice_date == "2026-02-01"
    assert (january.buyer_name, january.buyer_external_id) == ("Bakery Dupont", "shop-42")
    assert january.seller_name == "MOBIP"
    assert monthly(runtime, MAR + LATER) == ["MOBIP-2026-000002"]
    january_again, february = invoices(runtime, shop)
    assert january_again.amount == january.amount  # issued invoices never change
    assert (february.period_start, february.period_end) == (FEB, MAR)
    assert february.transactions_count == 1


def test_missed_months_are_caught_up_and_an_empty_month_joins_the_next(runtime: Runtime) -> None:
    shop = merchant(runtime).account
    other = merchant(runtime, name="Other").account
    pay(runtime, shop, 5_000, at(JAN, 10))
    pay(runtime, other, 7_000, at(FEB, 10))  # other has nothing in January
    pay(runtime, shop, 5_000, at(MAR, 10))
    # No worker ran in February nor March: at April's start, three months at once, month by month.
    numbers = monthly(runtime, APR + LATER)
    assert len(numbers) == 3
    periods = {
        (i.account_id, i.period_start, i.period_end): i.number
        for i in invoices(runtime, shop, other)
    }
    assert set(periods) == {(shop.id, JAN, FEB), (other.id, JAN, MAR), (shop.id, FEB, APR)}
    # Numbered month by month, then by account.
    assert periods[(shop.id, JAN, FEB)] == "MOBIP-2026-000001"
    assert periods[(other.id, JAN, MAR)] == "MOBIP-2026-000002"
    assert periods[(shop.id, FEB, APR)] == "MOBIP-2026-000003"


def test_an_early_close_then_the_month_end_leave_no_gap(runtime: Runtime) -> None:
    leaving = merchant(runtime).account
    staying = merchant(runtime, name="Staying").account
    pay(runtime, leaving, 1_000, at(JAN, 3))
    pay(runtime, staying, 1_000, at(JAN, 3))
    middle = at(JAN, 15)
    pay(runtime, leaving, 2_000, middle)  # at the close's end: the next invoice's
    assert close(runtime, at(JAN, 16), until=middle, account_uid=leaving.uid) == [
        "MOBIP-2026-000001"
    ]
    pay(runtime, leaving, 3_000, at(JAN, 20))
    assert len(monthly(runtime, FEB + LATER)) == 2
    first, second = invoices(runtime, leaving)
    assert (first.period_start, first.period_end, first.transactions_count) == (JAN, middle, 1)
    assert (second.period_start, second.period_end, second.transactions_count) == (middle, FEB, 2)
    [whole] = invoices(runtime, staying)
    assert (whole.period_start, whole.period_end) == (JAN, FEB)


def test_the_operators_close_defaults_to_the_month_start_and_checks_its_end(
    runtime: Runtime,
) -> None:
    shop = merchant(runtime).account
    pay(runtime, shop, 1_000, at(JAN, 3))
    with pytest.raises(InvalidInvoiceClose, match="5 minutes in the past"):
        close(runtime, at(JAN, 20), until=at(JAN, 20))
    with pytest.raises(InvalidInvoiceClose, match="time zone"):
        close(runtime, at(JAN, 20), until=datetime(2026, 1, 10))
    partner = make_account(runtime, role=Role.PARTNER).account
    with pytest.raises(InvalidInvoiceClose, match="only merchants"):
        close(runtime, at(JAN, 20), until=at(JAN, 10), account_uid=partner.uid)
    with pytest.raises(AccountNotFound):
        close(runtime, at(JAN, 20), until=at(JAN, 10), account_uid="acc_nobody")
    assert invoices(runtime, shop) == []
    assert close(runtime, FEB + LATER) == ["MOBIP-2026-000001"]
    [january] = invoices(runtime, shop)
    assert (january.period_start, january.period_end) == (JAN, FEB)


def test_a_period_without_fees_issues_nothing(runtime: Runtime) -> None:
    free = merchant(runtime, percent="0", fixed=0).account
    pay(runtime, free, 1_000, at(JAN, 3))  # PAID, fee 0
    assert monthly(runtime, FEB + LATER) == []
    assert invoices(runtime, free) == []


def test_months_are_those_of_mobip_timezone(settings: Settings, database: Database) -> None:
    clock = ManualClock(datetime(2025, 12, 20, tzinfo=UTC))
    paris = Runtime(settings.model_copy(update={"timezone": "Europe/Paris"}), database, clock)
    shop = merchant(paris).account
    pay(paris, shop, 1_000, datetime(2026, 1, 31, 22, 59, tzinfo=UTC))  # 23:59 in Paris
    pay(paris, shop, 1_000, datetime(2026, 1, 31, 23, 0, tzinfo=UTC))  # 1 February in Paris
    monthly(paris, datetime(2026, 1, 31, 23, 0, tzinfo=UTC) + LATER)
    [december_january] = invoices(paris, shop)
    # Created in December (Paris): its first invoice starts then; January ends at 23:00 UTC.
    assert december_january.period_start == datetime(2025, 11, 30, 23, 0, tzinfo=UTC)
    assert december_january.period_end == datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    assert december_january.transactions_count == 1
    assert december_january.invoice_date == "2026-02-01"


def _many(runtime: Runtime, count: int) -> list[Account]:
    shops = []
    for n in range(count):
        shop = merchant(runtime, name=f"Shop {n}").account
        pay(runtime, shop, 1_000, at(JAN, 3))
        shops.append(shop)
    return shops


def test_two_issuers_at_once_never_skip_nor_repeat_a_number(runtime: Runtime) -> None:
    shops = _many(runtime, 16)
    uids = [shop.uid for shop in shops]
    runtime.clock.set(at(JAN, 20))  # type: ignore[attr-defined]
    given: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def issuer(mine: list[str]) -> None:
        start.wait()
        for uid in mine:
            try:
                numbers = runtime.database.run(
                    lambda session, uid=uid: (
                        service.close(
                            session,
                            runtime.settings,
                            runtime.clock,
                            until=at(JAN, 10),
                            account_uid=uid,
                        ).numbers
                    )
                )
            except (OperationalError, AssertionError) as error:
                errors.append(error)
                return
            given.extend(numbers)

    threads = [threading.Thread(target=issuer, args=(uids[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(given) == [service.number_of(2026, n) for n in range(1, 17)]
    # And two monthly runs at once: the second finds the month done.
    for shop in shops:
        pay(runtime, shop, 1_000, at(JAN, 15))
    runtime.clock.set(FEB + LATER)  # type: ignore[attr-defined]
    results: list[list[str]] = []
    both = threading.Barrier(2)

    def worker() -> None:
        both.wait()
        results.append(monthly_from_thread(runtime))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(len(r) for r in results) == [0, 16]
    assert sorted(n for r in results for n in r) == [
        service.number_of(2026, n) for n in range(17, 33)
    ]


def monthly_from_thread(runtime: Runtime) -> list[str]:
    # The clock is shared: both threads see February's start, settled.
    return runtime.database.run(
        lambda session: service.issue_due_months(session, runtime.settings, runtime.clock).numbers
    )
