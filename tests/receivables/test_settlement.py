"""receivables.settlement: a transaction whose track_id lists invoices is linked at creation; its
payment settles them oldest due date first (full, partial, the excess as credit); a refund
reverses the last allocated first; unknown or ambiguous ids leave it unlinked."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from factories import make_account, make_transaction
from mobip.accounts.models import Account
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.receivables import repository, settlement
from mobip.receivables.models import ExternalCustomer, PaymentLink
from mobip.transactions import observers
from receivables.support import customer, import_lists, invoice, map_statuses, pay, read, refund

MARCH = datetime(2023, 3, 15, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def subscribed() -> None:
    observers.subscribe(settlement.observe)  # as mobip.wiring does (again: nothing changes)


@pytest.fixture
def merchant(runtime: Runtime, clock: ManualClock) -> Account:
    clock.set(MARCH)
    shop = make_account(runtime, name="Bakery Dupont").account
    import_lists(
        runtime,
        shop,
        [
            customer(
                "c1",
                invoice("inv_a", 1000, due="2023-02-01"),
                invoice("inv_b", 3000, due="2023-01-01"),
                invoice("inv_c", 500, due="2023-03-01"),
                CustomerEmail="c1@example.com",
            ),
        ],
    )
    map_statuses(runtime, shop)
    return shop


def request(runtime: Runtime, merchant: Account, track_id: str | None, amount: int) -> str:
    return make_transaction(
        runtime, merchant, track_id=track_id, item_amount=amount, tax_amount=0
    ).trid


def links(runtime: Runtime) -> list[str]:
    with runtime.database.session() as session:
        return list(session.execute(select(PaymentLink.trid)).scalars())


def credit(runtime: Runtime) -> int:
    with runtime.database.session() as session:
        return session.execute(select(ExternalCustomer.credit)).scalar_one()


def state(runtime: Runtime, merchant: Account) -> dict[str, tuple[str, str, str]]:
    return {
        k: (v["mobip_status"], v["paid_amount_in_cents"], v["InvStatus"])
        for k, v in read(runtime, merchant).items()
    }


def test_a_payment_settles_oldest_due_first_full_then_partial(
    runtime: Runtime, merchant: Account
) -> None:
    trid = request(runtime, merchant, "inv_a|inv_b", 3500)
    assert state(runtime, merchant)["inv_b"] == ("due", "0", "")  # linked, not yet paid
    pay(runtime, trid)
    # inv_b (due in January) first: 3000 in full; inv_a gets the 500 left.
    assert state(runtime, merchant) == {
        "inv_a": ("partially_paid", "500", "status_3"),
        "inv_b": ("fully_paid", "3000", "status_2"),  # the first code mapped to fully_paid
        "inv_c": ("due", "0", ""),
    }
    invoices = read(runtime, merchant)
    assert invoices["inv_b"]["paid_by"] == trid
    assert invoices["inv_b"]["paid_at"] == "2023-03-15T12:00:00Z"
    assert invoices["inv_a"]["paid_at"] == ""
    assert invoices["inv_a"]["remaining_amount_in_cents"] == "500"
    assert credit(runtime) == 0


def test_an_overpayment_is_the_customers_credit_and_a_refund_takes_it_back_first(
    runtime: Runtime, merchant: Account
) -> None:
    trid = request(runtime, merchant, "inv_c", 800)
    pay(runtime, trid)
    assert state(runtime, merchant)["inv_c"][:2] == ("fully_paid", "500")
    assert credit(runtime) == 300
    # get_external_invoices shows it on each of the customer's invoices, for the merchant's books.
    assert {v["customer_credit_in_cents"] for v in read(runtime, merchant).values()} == {"300"}
    refund(runtime, merchant, trid, 200)  # the credit, allocated last, goes back first
    assert credit(runtime) == 100
    assert read(runtime, merchant)["inv_a"]["customer_credit_in_cents"] == "100"
    assert state(runtime, merchant)["inv_c"][:2] == ("fully_paid", "500")
    refund(runtime, merchant, trid, 300)
    assert credit(runtime) == 0
    assert state(runtime, merchant)["inv_c"][:2] == ("partially_paid", "300")
    refund(runtime, merchant, trid, 300)
    assert state(runtime, merchant)["inv_c"] == ("due", "0", "")
    assert read(runtime, merchant)["inv_c"]["paid_by"] == ""


def test_a_refund_reverses_the_last_allocated_invoice_first(
    runtime: Runtime, merchant: Account
) -> None:
    trid = request(runtime, merchant, "inv_a|inv_b", 4000)
    pay(runtime, trid)
    assert state(runtime, merchant)["inv_a"][:2] == ("fully_paid", "1000")
    refund(runtime, merchant, trid, 1500)  # inv_a (allocated last) back to 0, inv_b loses 500
    assert state(runtime, merchant)["inv_a"] == ("due", "0", "")
    assert state(runtime, merchant)["inv_b"][:2] == ("partially_paid", "2500")


@pytest.mark.parametrize("track_id", ["inv_a|nope", "order-7", "", None, "|"])
def test_unknown_ids_leave_the_transaction_unlinked(
    runtime: Runtime, merchant: Account, track_id: str | None
) -> None:
    trid = request(runtime, merchant, track_id, 1000)
    pay(runtime, trid)
    assert links(runtime) == []
    assert {v[1] for v in state(runtime, merchant).values()} == {"0"}


def test_an_id_in_two_sources_is_ambiguous_and_logged(
    runtime: Runtime, merchant: Account, caplog: pytest.LogCaptureFixture
) -> None:
    import_lists(runtime, merchant, [customer("c9", invoice("inv_a", 10))], source="crm")
    with caplog.at_level(logging.WARNING, logger="mobip.receivables"):
        trid = request(runtime, merchant, "inv_a|inv_b", 1000)
    assert links(runtime) == []
    assert trid in caplog.text and "in several sources ['inv_a']" in caplog.text
    pay(runtime, trid)
    assert state(runtime, merchant)["inv_b"][1] == "0"


def test_another_merchants_invoice_ids_are_not_linked(runtime: Runtime, merchant: Account) -> None:
    other = make_account(runtime, name="Other").account
    trid = request(runtime, other, "inv_a", 1000)
    pay(runtime, trid)
    assert links(runtime) == []
    assert state(runtime, merchant)["inv_a"][1] == "0"


def test_a_second_payment_tops_up_a_partial_one(runtime: Runtime, merchant: Account) -> None:
    first = request(runtime, merchant, "inv_b", 1000)
    pay(runtime, first)
    second = request(runtime, merchant, "inv_b", 2000)
    pay(runtime, second)
    invoices = read(runtime, merchant)
    assert invoices["inv_b"]["mobip_status"] == "fully_paid"
    assert invoices["inv_b"]["paid_by"] == f"{first}|{second}"


def test_the_hot_lookup_one_by_one_and_the_bulk_one_agree(
    runtime: Runtime, merchant: Account
) -> None:
    """A create's few ids are looked up one by one (a statement compiled once), more by IN
    queries: the same rows either way."""
    with runtime.database.engine.connect() as conn:
        few = repository.invoices_by_inv_id(conn, [merchant.id], ["inv_a", "inv_b", "nope"])
        many = repository.invoices_by_inv_id(
            conn, [merchant.id, merchant.id + 1000], ["inv_a", "inv_b", "nope", "x", "y"]
        )
    assert sorted(few) == sorted(many)
    assert sorted(row[2] for row in few) == ["inv_a", "inv_b"]
    assert all(isinstance(value, int) for row in few for value in row[:2])
