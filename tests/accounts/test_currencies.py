"""Accounts are created only in currencies a payment provider can take (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from factories import make_account
from mobip.accounts.errors import InvalidAccountSetting
from mobip.accounts.models import Account
from mobip.accounts.service import PAYABLE_CURRENCIES
from mobip.kit.i18n import money
from mobip.kit.runtime import Runtime


def accounts(runtime: Runtime) -> int:
    with runtime.database.session() as session:
        return session.scalar(select(func.count()).select_from(Account)) or 0


@pytest.mark.parametrize(
    "code",
    [
        "XXX",  # no currency
        "XTS",  # testing
        "XAU",  # gold
        "XAG",  # silver
        "XPT",  # platinum
        "XDR",  # IMF special drawing rights
        "XSU",  # SUCRE
        "XBA",  # bond market unit
        "XUA",  # ADB unit of account
        "CHE",  # WIR euro: a fund
        "BOV",  # Mvdol: a fund
        "USN",  # US dollar next day: a fund
        "DEM",  # withdrawn
        "HRK",  # withdrawn (2023)
        "XYZ",  # not ISO 4217
        "EURO",
        "",
    ],
)
def test_currencies_a_provider_cannot_take_are_refused_naming_the_field(
    runtime: Runtime, code: str
) -> None:
    before = accounts(runtime)
    with pytest.raises(InvalidAccountSetting) as refused:
        make_account(runtime, currency=code)
    assert refused.value.return_code == "1010"
    assert "'currency'" in refused.value.message
    assert accounts(runtime) == before


@pytest.mark.parametrize("code", ["EUR", "usd", "JPY", "KWD", "CHF", "XOF", "XAF", "XPF", "XCD"])
def test_currencies_in_use_are_accepted_and_shown_with_their_symbol(
    runtime: Runtime, code: str
) -> None:
    account = make_account(runtime, currency=code).account
    assert account.currency == code.upper()
    assert "¤" not in money(1000, account.currency, "EN")


def test_every_currency_accepted_has_minor_units_and_a_symbol_babel_knows() -> None:
    assert len(PAYABLE_CURRENCIES) > 100
    for code in PAYABLE_CURRENCIES:
        assert "¤" not in money(1000, code, "EN"), code
