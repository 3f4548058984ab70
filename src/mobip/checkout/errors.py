"""Checkout errors: shown as pages to customers (with their code), or as the envelope to
providers' webhooks."""

from __future__ import annotations

from mobip.kit.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MobipError,
    NotFound,
    Throttled,
    Unauthorized,
)


class CheckoutNotFound(NotFound):
    return_code = "4011"
    default_message = "No payment page at this address"


class CsrfCheckFailed(Forbidden):
    return_code = "3010"
    default_message = "The form's anti-forgery token is missing or does not match"


class CardFormInvalid(BadRequest):
    return_code = "1020"
    default_message = "The card form has invalid fields"

    def __init__(self, errors: dict[str, str]) -> None:
        # field name → message key; never the values typed (card data).
        self.errors = errors
        super().__init__(f"Invalid card form fields: {', '.join(sorted(errors))}")


class ProviderNotAvailable(Conflict):
    return_code = "5040"
    default_message = "This merchant's payment provider cannot take payments"


class ProviderUnreachable(Conflict):
    return_code = "5041"
    default_message = "The payment provider could not be reached; nothing was charged"


class ProviderMisconfigured(MobipError):
    """The merchant's provider settings cannot be used (a stored key cannot be decrypted): the
    operator must act, the customer may try again later; nothing is recorded or changed."""

    return_code = "9040"
    http_status = 503
    default_message = "This merchant's payment provider settings cannot be used right now"


class TooManyPaymentAttempts(Throttled):
    return_code = "7002"
    default_message = "Too many payment attempts; try again later (see Retry-After)"


class InvalidWebhook(Unauthorized):
    return_code = "2010"
    default_message = "The webhook's signature is missing or invalid"


class WebhookAccountNotFound(NotFound):
    return_code = "4012"
    default_message = "No account takes this provider's webhooks at this address"


class RefundFailed(MobipError):
    """The provider refused the refund or could not be reached: its reservation is released
    (kept: the release is committed), nothing is refunded or recorded."""

    return_code = "5053"
    http_status = 409  # as ProviderUnreachable (5041): a 5xxx conflict with the provider's answer
    keep_changes = True
    default_message = "The payment provider did not refund; nothing was refunded"
