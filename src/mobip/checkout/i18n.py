"""The texts of the hosted pages that the code chooses by a key, and Babel formatting of dates.

Every text is a gettext message (English; kit.i18n's catalogs translate it): the templates write
most of theirs in place (``{{ _("Card number") }}``); the ones a page shows because of what
happened (a field error from ``service``, a decline or refund notice from ``outcomes``, a test
card's result) arrive as a key and are looked up here. A message without its French translation
is a test failure, not English on a French customer's phone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from babel.dates import format_datetime

from mobip.kit.i18n import LOCALES, N_, translate

KEYED: dict[str, str] = {
    # Test cards (rendering.test_cards_shown).
    "test_card_paid": N_("payment accepted"),
    "test_card_declined": N_("declined"),
    "test_card_funds": N_("insufficient funds"),
    "test_card_error": N_("provider error"),
    # Card form errors (service.parse_card, service.parse_receipt_email, and the test-card check
    # of service.pay_with_card).
    "error_card_number": N_("This card number is not valid."),
    "error_not_test_card": N_("In test mode, use one of the test cards listed above."),
    "error_expiry_format": N_("Enter the expiry date as MM/YY."),
    "error_expiry_past": N_("This card has expired."),
    "error_cvc": N_("Enter the 3 or 4 digits on the back of the card."),
    "error_name": N_("Enter the name printed on the card."),
    "error_receipt_email": N_("Enter an e-mail address like name@example.com, or leave it empty."),
    # Notices above the form or on a state page (outcomes, views).
    "declined_card_declined": N_("Your card was declined."),
    "declined_insufficient_funds": N_("Your card was declined: insufficient funds."),
    "declined_payment_failed": N_("The payment failed."),
    "not_completed": N_("The payment was not completed. You can try again."),
    "payment_refunded": N_(
        "The payment you just made could not be applied to this link and has been refunded."
    ),
    "payment_refund_pending": N_(
        "The payment you just made could not be applied to this link. It will be "
        "refunded; contact the merchant if you do not see the refund."
    ),
}


def text(language: str, key: str) -> str:
    """The message ``key`` names, in ``language``."""
    return translate(language, KEYED[key])


def when(moment: datetime, language: str) -> str:
    """A date and time in UTC, written out for the language."""
    return format_datetime(moment.astimezone(UTC), "long", tzinfo=UTC, locale=LOCALES[language])
