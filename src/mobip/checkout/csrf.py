"""CSRF protection of the checkout forms: a random cookie, and a form token bound to it and to
the checkout link (HMAC with the server's secret). A form posted from another site carries
neither the cookie (SameSite=Lax) nor a token that matches it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TypeGuard

from mobip.checkout.errors import CsrfCheckFailed

COOKIE = "mobip_csrf"
FIELD = "csrf_token"
_COOKIE_CHARS = 43  # token_urlsafe(32)


def new_cookie_value() -> str:
    return secrets.token_urlsafe(32)


def valid_cookie(value: str | None) -> TypeGuard[str]:
    return value is not None and len(value) == _COOKIE_CHARS


def form_token(secret_key: str, cookie_value: str, checkout_token: str) -> str:
    message = f"checkout-csrf|{cookie_value}|{checkout_token}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def check(
    secret_key: str, cookie_value: str | None, checkout_token: str, submitted: str | None
) -> None:
    """Raise ``CsrfCheckFailed`` unless the form's token matches the cookie and the link."""
    if not valid_cookie(cookie_value) or not submitted:
        raise CsrfCheckFailed()
    expected = form_token(secret_key, cookie_value, checkout_token)
    if not hmac.compare_digest(expected, submitted):
        raise CsrfCheckFailed()
