"""Every text of the hosted pages in English and French, and Babel formatting of dates.

Languages and money come from ``kit/i18n`` (the messages use the same).

One dictionary: a missing translation is a test failure, not a blank on a customer's phone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from babel.dates import format_datetime

from mobip.kit.i18n import LOCALES

MESSAGES: dict[str, dict[str, str]] = {
    "page_title": {"EN": "Payment to {merchant}", "FR": "Paiement à {merchant}"},
    "pay_to": {"EN": "Payment to", "FR": "Paiement à"},
    "language": {"EN": "Language", "FR": "Langue"},
    "item": {"EN": "Item", "FR": "Article"},
    "tax": {"EN": "Tax", "FR": "Taxes"},
    "total": {"EN": "Total", "FR": "Total"},
    "customer": {"EN": "Customer", "FR": "Client"},
    "summary": {"EN": "Order summary", "FR": "Récapitulatif"},
    "test_mode": {"EN": "TEST MODE", "FR": "MODE TEST"},
    "test_mode_note": {
        "EN": "No real payment is made. Use one of these test cards:",
        "FR": "Aucun paiement réel n'est effectué. Utilisez l'une de ces cartes de test :",
    },
    "test_card_paid": {"EN": "payment accepted", "FR": "paiement accepté"},
    "test_card_declined": {"EN": "declined", "FR": "refusée"},
    "test_card_funds": {"EN": "insufficient funds", "FR": "fonds insuffisants"},
    "test_card_error": {"EN": "provider error", "FR": "erreur du prestataire"},
    "test_card_any": {
        "EN": "any future expiry date, any CVC",
        "FR": "toute date d'expiration future, tout CVC",
    },
    "card_details": {"EN": "Card details", "FR": "Carte bancaire"},
    "card_number": {"EN": "Card number", "FR": "Numéro de carte"},
    "expiry": {"EN": "Expiry (MM/YY)", "FR": "Expiration (MM/AA)"},
    "cvc": {"EN": "CVC", "FR": "CVC"},
    "name_on_card": {"EN": "Name on card", "FR": "Nom sur la carte"},
    "pay": {"EN": "Pay", "FR": "Payer"},
    "pay_amount": {"EN": "Pay {amount}", "FR": "Payer {amount}"},
    "pay_with_stripe": {
        "EN": "You will pay on Stripe's secure page.",
        "FR": "Vous paierez sur la page sécurisée de Stripe.",
    },
    "continue_to_payment": {"EN": "Continue to payment", "FR": "Continuer vers le paiement"},
    "form_errors": {
        "EN": "Please correct the highlighted fields.",
        "FR": "Veuillez corriger les champs signalés.",
    },
    "error_card_number": {
        "EN": "This card number is not valid.",
        "FR": "Ce numéro de carte n'est pas valide.",
    },
    "error_not_test_card": {
        "EN": "In test mode, use one of the test cards listed above.",
        "FR": "En mode test, utilisez l'une des cartes de test ci-dessus.",
    },
    "error_expiry_format": {
        "EN": "Enter the expiry date as MM/YY.",
        "FR": "Saisissez la date d'expiration au format MM/AA.",
    },
    "error_expiry_past": {"EN": "This card has expired.", "FR": "Cette carte a expiré."},
    "error_cvc": {
        "EN": "Enter the 3 or 4 digits on the back of the card.",
        "FR": "Saisissez les 3 ou 4 chiffres au dos de la carte.",
    },
    "error_name": {
        "EN": "Enter the name printed on the card.",
        "FR": "Saisissez le nom inscrit sur la carte.",
    },
    "declined_card_declined": {
        "EN": "Your card was declined.",
        "FR": "Votre carte a été refusée.",
    },
    "declined_insufficient_funds": {
        "EN": "Your card was declined: insufficient funds.",
        "FR": "Votre carte a été refusée : fonds insuffisants.",
    },
    "declined_payment_failed": {
        "EN": "The payment failed.",
        "FR": "Le paiement a échoué.",
    },
    "try_again": {
        "EN": "You can try again ({count} attempt(s) left).",
        "FR": "Vous pouvez réessayer ({count} tentative(s) restante(s)).",
    },
    "not_completed": {
        "EN": "The payment was not completed. You can try again.",
        "FR": "Le paiement n'a pas été finalisé. Vous pouvez réessayer.",
    },
    "payment_refunded": {
        "EN": "The payment you just made could not be applied to this link and has been refunded.",
        "FR": "Le paiement que vous venez d'effectuer n'a pas pu être appliqué à ce lien et a "
        "été remboursé.",
    },
    "payment_refund_pending": {
        "EN": "The payment you just made could not be applied to this link. It will be "
        "refunded; contact the merchant if you do not see the refund.",
        "FR": "Le paiement que vous venez d'effectuer n'a pas pu être appliqué à ce lien. Il "
        "sera remboursé ; contactez le commerçant si vous ne voyez pas le remboursement.",
    },
    "paid_title": {"EN": "Already paid", "FR": "Déjà payé"},
    "paid_text": {
        "EN": "This payment was made on {date}.",
        "FR": "Ce paiement a été effectué le {date}.",
    },
    "cancelled_title": {"EN": "Payment cancelled", "FR": "Paiement annulé"},
    "cancelled_text": {
        "EN": "The merchant cancelled this payment request.",
        "FR": "Le commerçant a annulé cette demande de paiement.",
    },
    "expired_title": {"EN": "Link expired", "FR": "Lien expiré"},
    "expired_text": {
        "EN": "This payment link expired on {date}.",
        "FR": "Ce lien de paiement a expiré le {date}.",
    },
    "denied_title": {"EN": "Payment denied", "FR": "Paiement refusé"},
    "denied_text": {
        "EN": "The payment was declined too many times. Contact the merchant.",
        "FR": "Le paiement a été refusé trop de fois. Contactez le commerçant.",
    },
    "error_title": {"EN": "Payment error", "FR": "Erreur de paiement"},
    "error_text": {
        "EN": "The payment provider reported an error. No payment was taken. Contact the merchant.",
        "FR": "Le prestataire de paiement a signalé une erreur. Aucun paiement n'a été "
        "effectué. Contactez le commerçant.",
    },
    "unavailable_title": {"EN": "Payment unavailable", "FR": "Paiement indisponible"},
    "unavailable_text": {
        "EN": "This merchant cannot take payments at the moment. Please try again later.",
        "FR": "Ce commerçant ne peut pas recevoir de paiements pour le moment. "
        "Veuillez réessayer plus tard.",
    },
    "provider_down_text": {
        "EN": "The payment provider could not be reached. No payment was taken. "
        "Please try again in a few minutes.",
        "FR": "Le prestataire de paiement est injoignable. Aucun paiement n'a été "
        "effectué. Veuillez réessayer dans quelques minutes.",
    },
    "not_found_title": {"EN": "Payment not found", "FR": "Paiement introuvable"},
    "not_found_text": {
        "EN": "This payment link is not valid. Check the link you received.",
        "FR": "Ce lien de paiement n'est pas valide. Vérifiez le lien reçu.",
    },
    "csrf_title": {"EN": "Page expired", "FR": "Page expirée"},
    "csrf_text": {
        "EN": "This form is no longer valid (cookies may be blocked). Nothing was charged. "
        "Open the payment page again.",
        "FR": "Ce formulaire n'est plus valide (les cookies sont peut-être bloqués). Rien n'a "
        "été débité. Ouvrez à nouveau la page de paiement.",
    },
    "throttled_title": {"EN": "Too many attempts", "FR": "Trop de tentatives"},
    "throttled_text": {
        "EN": "Too many payment attempts. Please wait {minutes} minute(s) and try again.",
        "FR": "Trop de tentatives de paiement. Veuillez patienter {minutes} minute(s) puis "
        "réessayer.",
    },
    "back_to_merchant": {"EN": "Return to {merchant}", "FR": "Retour vers {merchant}"},
    "back_to_payment": {"EN": "Back to the payment page", "FR": "Retour à la page de paiement"},
    "error_code": {"EN": "Error code {code}", "FR": "Code d'erreur {code}"},
    "secured_by": {"EN": "Payment page by MOBIP", "FR": "Page de paiement MOBIP"},
    "skip_to_content": {"EN": "Skip to content", "FR": "Aller au contenu"},
}


def translate(language: str, key: str, **values: object) -> str:
    text = MESSAGES[key][language]
    return text.format(**values) if values else text


def when(moment: datetime, language: str) -> str:
    """A date and time in UTC, written out for the language."""
    return format_datetime(moment.astimezone(UTC), "long", tzinfo=UTC, locale=LOCALES[language])
