"""The provider interface and the sandbox provider (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobip.checkout.errors import CardFormInvalid
from mobip.checkout.providers.base import (
    Card,
    CardFormProvider,
    Outcome,
    Payment,
    PaymentProvider,
    Result,
    WebhookRejected,
    luhn_ok,
)
from mobip.checkout.providers.sandbox import SandboxProvider
from mobip.checkout.providers.stripe import StripeProvider
from mobip.checkout.service import parse_card
from mobip.transactions.cards import brand_of

PAYMENT = Payment(
    trid="tr_1",
    item_name="Blue mug",
    item_amount=1250,
    tax_amount=250,
    currency="EUR",
    language="EN",
    customer_email="ada@example.com",
    return_url="https://mobip.example/pay/ck_1/return",
    cancel_url="https://mobip.example/pay/ck_1",
)


def a_card(number: str) -> Card:
    return Card(number=number, expiry_month=12, expiry_year=2030, cvc="123", name="Ada")


def test_both_providers_implement_the_whole_interface() -> None:
    assert issubclass(SandboxProvider, CardFormProvider)
    assert issubclass(StripeProvider, PaymentProvider)
    # Instantiable: no abstract method left unimplemented.
    SandboxProvider()
    StripeProvider("sk_test_x", api_base="http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("number", "result", "reason"),
    [
        ("4242424242424242", Result.PAID, None),
        ("4000000000000002", Result.DECLINED, "card_declined"),
        ("4000000000009995", Result.DECLINED, "insufficient_funds"),
        ("4000000000000119", Result.ERROR, "processing_error"),
    ],
)
def test_sandbox_test_cards(number: str, result: Result, reason: str | None) -> None:
    outcome = SandboxProvider().charge(PAYMENT, a_card(number))
    assert (outcome.result, outcome.reason) == (result, reason)
    assert (outcome.card_brand, outcome.card_last4) == ("visa", number[-4:])
    assert (outcome.trid, outcome.amount, outcome.currency) == ("tr_1", 1500, "EUR")
    assert outcome.reference and outcome.reference.startswith("sbx_")


def test_sandbox_pays_on_our_page_and_has_no_return_nor_webhook() -> None:
    provider = SandboxProvider()
    assert provider.start(PAYMENT).card_form
    assert provider.confirm_return(PAYMENT, {"session_id": "x"}).result is Result.PENDING
    with pytest.raises(WebhookRejected):
        provider.handle_webhook(b"{}", {}, "secret")


def test_sandbox_refund() -> None:
    refund = SandboxProvider().refund("sbx_1", 1500)
    assert refund.status == "succeeded" and refund.reference.startswith("re_sbx_")
    with pytest.raises(ValueError, match="positive"):
        SandboxProvider().refund("sbx_1", 0)


def test_card_details_never_show_in_repr() -> None:
    text = repr(a_card("4242424242424242"))
    assert "4242" not in text and "123" not in text and "Ada" not in text


def test_payment_method_text() -> None:
    assert Outcome(Result.PAID, card_brand="visa", card_last4="4242").payment_method == (
        "card visa ****4242"
    )
    assert Outcome(Result.PAID).payment_method == "card"


def _with_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_ok(body + digit):
            return body + digit
    raise AssertionError("no Luhn check digit")


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_luhn_exactly_one_check_digit(body: str) -> None:
    valid = [d for d in "0123456789" if luhn_ok(body + d)]
    assert len(valid) == 1
    number = body + valid[0]
    # Changing any one digit breaks the checksum.
    for index in range(len(number)):
        for digit in "0123456789":
            if digit != number[index]:
                changed = number[:index] + digit + number[index + 1 :]
                assert not luhn_ok(changed)


def test_luhn_and_brands() -> None:
    assert luhn_ok("4242424242424242") and not luhn_ok("4242424242424241")
    assert not luhn_ok("42a2")
    assert brand_of(_with_check_digit("555555555555444")) == "mastercard"
    assert brand_of("378282246310005") == "amex"
    assert brand_of("9999999999999995") == "card"


NOW = datetime(2026, 6, 15, tzinfo=UTC)


def test_parse_card_accepts_spaces_and_dashes() -> None:
    card = parse_card(
        {
            "card_number": "4242-4242 4242 4242",
            "expiry": "06/26",
            "cvc": "1234",
            "name_on_card": " A  B ",
        },
        NOW,
    )
    assert (card.number, card.expiry_month, card.expiry_year, card.cvc, card.name) == (
        "4242424242424242",
        6,
        2026,
        "1234",
        "A B",
    )


def test_parse_card_lists_every_bad_field() -> None:
    with pytest.raises(CardFormInvalid) as caught:
        parse_card({"card_number": "1234", "expiry": "05/26", "cvc": "x"}, NOW)
    assert caught.value.errors == {
        "card_number": "error_card_number",
        "expiry": "error_expiry_past",
        "cvc": "error_cvc",
        "name_on_card": "error_name",
    }
    assert "1234" not in caught.value.message  # the message names fields, never values
