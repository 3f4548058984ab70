"""The pages' texts are gettext messages: no literal text in the templates, every key the code
passes has its message, real plurals in both languages; dates by Babel. (That every message has
its French translation is tests/test_i18n.py's.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from checkout.support import DECLINED, NO_FUNDS, card, csrf_of, pay_path
from factories import make_account, make_transaction
from mobip.checkout import i18n, outcomes, rendering, service
from mobip.checkout.errors import CheckoutNotFound, TooManyPaymentAttempts
from mobip.checkout.providers import registry
from mobip.checkout.providers.base import PaymentProvider
from mobip.kit.errors import MobipError
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction

TEMPLATES = Path(i18n.__file__).parent / "templates"


def test_templates_have_no_literal_text() -> None:
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text()
        # Visible text between tags is a message, an expression, or a language's own name.
        stripped = re.sub(r"{[{%#].*?[}%#]}", "", source, flags=re.S)
        for text in re.findall(r">([^<>]+)<", stripped):
            words = text.strip().replace("—", "").replace("&nbsp;", "").strip(" :")
            assert words in ("", "English", "Français"), f"{path.name}: untranslated {words!r}"
        # No key of the former dictionary left (t('pay')): texts are written as _("…").
        assert not re.search(r"(?<![\w.])t\(", source), path.name


def test_every_key_the_code_passes_has_its_message() -> None:
    source = Path(service.__file__).read_text()
    keys = set(re.findall(r'"(error_\w+)"', source))
    assert {"error_card_number", "error_not_test_card", "error_cvc"} <= keys
    keys |= {f"declined_{reason}" for reason in outcomes.DECLINE_TEXTS}
    keys |= set(outcomes.REFUND_NOTICES.values()) | {"not_completed"}
    keys |= {
        key for provider in _test_providers() for _, key in rendering.test_cards_shown(provider)
    }
    assert keys <= set(i18n.KEYED), keys - set(i18n.KEYED)
    for key in keys:
        assert i18n.text("FR", key) != i18n.text("EN", key), key


def _test_providers() -> list[type[PaymentProvider]]:
    return [provider for provider in registry.PROVIDERS.values() if provider.test_cards]


def test_dates() -> None:
    moment = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    assert i18n.when(moment, "EN").startswith("March 5, 2026")
    assert i18n.when(moment, "FR").startswith("5 mars 2026")


# --- plurals on the pages ---------------------------------------------------------------------


def submit(
    client: TestClient, transaction: Transaction, number: str, language: str
) -> httpx.Response:
    page = client.get(pay_path(transaction) + f"?lang={language}")
    return client.post(
        pay_path(transaction),
        data={"csrf_token": csrf_of(page.text), **card(number, lang=language)},
        follow_redirects=False,
    )


def notice(html: str) -> str:
    match = re.search(r'class="notice" role="alert">(.*?)</div>', html, re.S)
    assert match, "no notice on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


@pytest.mark.parametrize(
    ("language", "two", "one"),
    [
        (
            "EN",
            "Your card was declined. Visa •••• 0002 — You can try again (2 attempts remaining).",
            "Your card was declined: insufficient funds. Visa •••• 9995 — "
            "You can try again (1 attempt remaining).",
        ),
        (
            "FR",
            "Votre carte a été refusée. Visa •••• 0002 — Vous pouvez réessayer "
            "(2 tentatives restantes).",
            "Votre carte a été refusée : fonds insuffisants. Visa •••• 9995 — "
            "Vous pouvez réessayer (1 tentative restante).",
        ),
    ],
)
def test_attempts_remaining_is_a_real_plural(
    runtime: Runtime, client: TestClient, language: str, two: str, one: str
) -> None:
    transaction = make_transaction(runtime, make_account(runtime).account)
    assert notice(submit(client, transaction, DECLINED, language).text) == two
    assert notice(submit(client, transaction, NO_FUNDS, language).text) == one


def test_error_pages_count_minutes_in_each_language() -> None:
    def text(language: str, seconds: int) -> str:
        return rendering.error_texts(TooManyPaymentAttempts(seconds), language)[1]

    assert text("EN", 30) == "Too many payment attempts. Please wait 1 minute and try again."
    assert text("EN", 900) == "Too many payment attempts. Please wait 15 minutes and try again."
    assert text("FR", 30) == (
        "Trop de tentatives de paiement. Veuillez patienter 1 minute puis réessayer."
    )
    assert text("FR", 900) == (
        "Trop de tentatives de paiement. Veuillez patienter 15 minutes puis réessayer."
    )
    assert rendering.error_texts(CheckoutNotFound(), "FR") == (
        "Paiement introuvable",
        "Ce lien de paiement n'est pas valide. Vérifiez le lien reçu.",
    )
    assert rendering.error_texts(MobipError(), "EN")[0] == "Payment error"
