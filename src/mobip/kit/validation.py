"""Checks of values that come from outside: URLs, e-mail addresses, phone numbers."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from mobip.kit.errors import InvalidField

MAX_URL_CHARS = 2048
# \s is str.isspace()'s set: every Unicode space, not only ASCII ones.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def http_url(field: str, value: str, *, https_only: bool) -> str:
    """An absolute http(s) URL with a host, no credentials, no spaces or control characters."""
    if len(value) > MAX_URL_CHARS:
        raise InvalidField(field, f"longer than {MAX_URL_CHARS} characters")
    if _SPACE_OR_CONTROL.search(value):
        raise InvalidField(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise InvalidField(field, f"not a valid URL ({exc})") from exc
    allowed = ("https",) if https_only else ("http", "https")
    if parts.scheme.lower() not in allowed:
        raise InvalidField(field, "must be an absolute " + " or ".join(allowed) + " URL")
    if not parts.hostname:
        raise InvalidField(field, "must include a host name")
    if parts.username is not None or parts.password is not None:
        raise InvalidField(field, "must not include a user name or password")
    if port == 0:
        raise InvalidField(field, "has an invalid port")
    return value


def email_address(field: str, value: str) -> str:
    """A deliverable-looking address (syntax only, no DNS lookup), normalised."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidField(field, str(exc)) from exc


def international_phone(field: str, value: str) -> str:
    """A phone number written with its international prefix, returned as E.164 (+33612345678)."""
    if not value.strip().startswith("+"):
        raise InvalidField(field, "must start with the international prefix, e.g. +33 or +1")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidField(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidField(field, "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
