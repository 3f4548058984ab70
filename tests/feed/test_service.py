"""The feed's lines as the observer files them: a payment's (positive, its fee), each refund's
(negative, no fee, item and tax parts in integers that add up once everything is refunded), and
trid_list's parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from billing.support import merchant
from factories import make_transaction
from feed.support import paid, refund
from mobip.feed import service
from mobip.feed.errors import TooManyTrids
from mobip.feed.models import FeedLine
from mobip.kit.errors import InvalidField
from mobip.kit.runtime import Runtime


def feed_lines(runtime: Runtime) -> list[FeedLine]:
    with runtime.database.session() as session:
        return list(session.scalars(select(FeedLine).order_by(FeedLine.id)).all())


def test_a_payment_and_its_refunds_file_lines_that_balance(runtime: Runtime) -> None:
    shop = merchant(runtime, percent="1.4", fixed=25).account
    trid = paid(runtime, shop, item=1_001, tax=200)
    refund(runtime, shop, trid, 301)
    refund(runtime, shop, trid, 1)
    refund(runtime, shop, trid)  # the rest: 899
    payment, *refunds = feed_lines(runtime)
    fee = 17 + 25  # 1.4 % of 1,201 rounded half up, then the fixed part
    assert (payment.type, payment.trid, payment.account_id) == ("PAYMENT", trid, shop.id)
    assert (payment.amount, payment.item_amount, payment.tax_amount) == (1_201, 1_001, 200)
    assert (payment.fee, payment.net, payment.currency) == (fee, 1_201 - fee, "EUR")
    assert payment.refund_id is None and payment.acked_at is None
    assert [r.type for r in refunds] == ["REFUND"] * 3
    assert [r.amount for r in refunds] == [-301, -1, -899]
    assert all(r.fee == 0 and r.net == r.amount for r in refunds)
    assert all(r.item_amount + r.tax_amount == r.amount for r in refunds)
    assert all(r.refund_id for r in refunds)
    # Once everything is refunded, the parts give back the item and the tax exactly.
    assert sum(r.item_amount for r in refunds) == -1_001
    assert sum(r.tax_amount for r in refunds) == -200
    assert [r.id for r in feed_lines(runtime)] == sorted({r.id for r in feed_lines(runtime)})


def test_only_payments_and_refunds_make_lines(runtime: Runtime) -> None:
    shop = merchant(runtime).account
    make_transaction(runtime, shop)
    assert feed_lines(runtime) == []


@settings(max_examples=300, database=None, deadline=None)
@given(
    item=st.integers(0, 10**9),
    tax=st.integers(0, 10**9),
    cuts=st.lists(st.integers(1, 10**9), max_size=6),
)
def test_the_refund_parts_are_integers_in_range_that_sum_to_the_item_and_tax(
    item: int, tax: int, cuts: list[int]
) -> None:
    total = item + tax
    if total == 0:
        return
    refunds: list[int] = []
    left = total
    for cut in cuts:
        if left == 0:
            break
        refunds.append(min(cut, left))
        left -= refunds[-1]
    if left:
        refunds.append(left)  # the last refund takes what is left
    refunded = item_refunded = 0
    for amount in refunds:
        part = service.refund_item_part(total, item, refunded, item_refunded, amount)
        assert 0 <= part <= amount
        refunded += amount
        item_refunded += part
    assert (refunded, item_refunded) == (total, item)


def test_trid_list_is_parsed_strictly_and_bounded() -> None:
    assert service.parse_trid_list("tr_a|tr_b|tr_a") == ["tr_a", "tr_b"]
    for bad, said in (("tr_a||tr_b", "item 2 is empty"), ("tr_a|", "item 2 is empty"),
                      ("tr a", "item 1 is not a trid")):  # fmt: skip
        with pytest.raises(InvalidField) as refused:
            service.parse_trid_list(bad)
        assert "trid_list" in refused.value.message and said in refused.value.message
    assert len(service.parse_trid_list("|".join(f"t{i}" for i in range(10_000)))) == 10_000
    with pytest.raises(TooManyTrids) as too_many:
        service.parse_trid_list("|".join(f"t{i}" for i in range(10_001)))
    assert "trid_list" in too_many.value.message
