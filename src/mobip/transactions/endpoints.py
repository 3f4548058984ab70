"""Payment requests and one-use QR codes: create, read, cancel, resend."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES

from mobip.accounts.endpoints import current_account
from mobip.api.routing import ACCESS_TOKEN, Call, Endpoint, Field, PreparedWrite
from mobip.kit.validation import MAX_EMAIL_CHARS
from mobip.transactions import service
from mobip.transactions.models import TransactionKind

# Each field is declared once: api/routing checks the lengths first, Call's accessors read the
# values as declared (required, default, range), the service checks the rest (the amounts and
# their total, Media, Language, the URL, phone and e-mail rules), and OpenAPI states them all.
TRID = Field("trid", "string", "Transaction id", True, max_length=64)
# The patterns are necessary conditions of the service's checks, not the whole checks: what
# they refuse, the service refuses too (a JSON Schema pattern cannot say "a valid phone number").
_CONTROLS = r"\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069"
# A URL: http(s) in any case, a host first (no user name), no spaces or control characters.
HTTP_URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://[^\s{_CONTROLS}/?#@:][^\s{_CONTROLS}/?#@]*"
    rf"(?:[/?#][^\s{_CONTROLS}]*)?$"
)
# A phone number starts with its international prefix's "+" (after spaces, if any).
PHONE_PATTERN = rf"^[^\S{_CONTROLS}]*\+[^{_CONTROLS}]*$"
# An e-mail address: at most 64 characters before the @, and not a special-use domain (RFC 6761,
# email-validator's list: .test, .localhost, .invalid, ... are refused as undeliverable).
# JSON Schema patterns have no flags: each letter is spelt in both cases ([Tt][Ee][Ss][Tt]).
_SPECIAL_USE = "|".join(
    "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in name)
    for name in SPECIAL_USE_DOMAIN_NAMES
)
EMAIL_PATTERN = rf"^[^@]{{1,64}}@(?!(?:.*\.)?(?:{_SPECIAL_USE})\.?$).+$"
MEDIA = Field(
    "media", "string", "SMS or EMAIL (any case)", True, max_length=8, enum=("SMS", "EMAIL")
)


def _url(name: str, description: str, required: bool = False) -> Field:
    return Field(
        name,
        "string",
        description,
        required,
        max_length=2048,
        format="uri",
        pattern=HTTP_URL_PATTERN,
    )


def _text(name: str, description: str, required: bool = False, max_length: int = 255) -> Field:
    return Field(name, "string", description, required, max_length=max_length)


def _phone(description: str) -> Field:
    return Field(
        "customer_phone",
        "string",
        description,
        max_length=32,
        format="phone",  # JSON Schema's format vocabulary is open: a number phonenumbers takes
        pattern=PHONE_PATTERN,
    )


def _email(description: str, required: bool = False) -> Field:
    return Field(
        "customer_email",
        "string",
        description,
        required,
        max_length=MAX_EMAIL_CHARS,
        format="email",
        pattern=EMAIL_PATTERN,
    )


URL_FIELDS = [
    Field("url_checkout", "string", "URL of the hosted payment page"),
    Field("url_qr", "string", "URL of the QR code image (PNG; ?format=svg, ?size=1..40)"),
    Field("trid", "string", "Unique transaction id"),
]


def _common(call: Call) -> dict[str, Any]:
    """The fields both creates take, read in the order their errors are reported."""
    return {
        "item_name": call.required_text("item_name"),
        "redirect_url": call.required_text("redirect_url"),
        "track_id": call.text("track_id"),
        "customer_name": call.text("customer_name"),
        "customer_phone": call.text("customer_phone"),
        "language": call.text("language"),
        "ttl_days": call.integer("transaction_ttl"),
        "item_amount": call.integer("item_amount_in_cents"),
    }


CALLBACK_URL_HELP = (
    "Absolute http(s) URL receiving the callback: a POST of resp_code, trid and track_id (form "
    "body and query string), signed per Standard Webhooks with the account's callback secret"
)
ITEM_AMOUNT = Field(
    "item_amount_in_cents",
    "integer",
    "Item price without taxes, in minor units, more than 0 (item + tax at most the server's "
    "MOBIP_MAX_TOTAL_AMOUNT, 100000000 by default)",
    True,
    minimum=1,
    service_checks_range=True,
)
ITEM_NAME = _text("item_name", "Name of the product or service (1..255 characters)", True)
TRACK_ID = _text("track_id", "Your own reference (≤ 255 characters)")
CUSTOMER_NAME = _text("customer_name", "Customer name, prefills the payment form")
LANGUAGE = Field(
    "language", "string", "EN (default) or FR (any case)", max_length=8, enum=("EN", "FR")
)


def _ttl(description: str) -> Field:
    return Field("transaction_ttl", "integer", description, minimum=1, maximum=365, default=365)


def _payment_request(call: Call) -> service.NewTransaction:
    return service.NewTransaction(
        kind=TransactionKind.PAYMENT_REQUEST,
        tax_amount=call.integer("tax_amount"),
        call_back_url=call.text("call_back_url"),
        customer_email=call.required_text("customer_email"),
        media=call.required_text("media"),
        retry_period_days=call.integer("retry_period"),
        retry_attempts=call.integer("retry_attempts"),
        **_common(call),
    )


def _one_use_qr(call: Call) -> service.NewTransaction:
    return service.NewTransaction(
        kind=TransactionKind.ONE_USE_QR,
        tax_amount=call.integer("tax_amount_in_cents"),
        tax_field="tax_amount_in_cents",
        call_back_url=call.required_text("call_back_url"),
        customer_email=call.text("customer_email"),
        media=None,
        retry_period_days=0,
        retry_attempts=0,
        **_common(call),
    )


def _prepare(call: Call, read: Callable[[Call], service.NewTransaction]) -> service.PreparedCreate:
    # The caller first (as every endpoint: authenticated, admitted), then its fields.
    merchant = current_account(call)
    return service.prepare_create(merchant, read(call), call.runtime.settings, call.runtime.clock)


def send_payment_request(call: Call) -> PreparedWrite:
    """A payment request, prepared without the database (validated, its ids, QR code, reply and
    rows); api/routing writes its rows (the group commit or the request's unit of work)."""
    created = _prepare(call, _payment_request)
    reply = {
        "trid": created.trid,
        "url_checkout": created.url_checkout,
        "url_qr": created.url_qr,
        "raw_qr": created.raw_qr,
        "track_id": created.track_id or "",
    }
    return PreparedWrite(reply, service.write_created, created)


def create_one_use_qr(call: Call) -> PreparedWrite:
    """A QR code paid once, prepared as send_payment_request's (no message is queued)."""
    created = _prepare(call, _one_use_qr)
    reply = {"trid": created.trid, "url_checkout": created.url_checkout, "url_qr": created.url_qr}
    return PreparedWrite(reply, service.write_created, created)


def is_valid(call: Call) -> dict[str, Any]:
    """A transaction's status (a lazy expiry is applied first)."""
    return service.is_valid(
        call.session, current_account(call), call.required_text("trid"), call.runtime.clock
    )


def is_valid_on_loop(call: Call, reader: sqlite3.Connection) -> dict[str, Any] | None:
    """is_valid read on SQLite's loop reader (api/routing's fast read); None when an expiry is
    due, which is a write: the ordinary path then answers."""
    return service.is_valid_read_sqlite(
        reader, current_account(call), call.required_text("trid"), call.runtime.clock
    )


def get_transaction(call: Call) -> dict[str, Any]:
    """Every stored field of a transaction, its status history and its messages."""
    transaction, merchant = service.get_for(
        call.session, current_account(call), call.required_text("trid"), call.runtime.clock
    )
    return {
        "transaction_data": service.transaction_data(
            call.session, transaction, merchant, call.runtime.settings
        )
    }


def cancel_transaction(call: Call) -> dict[str, Any]:
    """PENDING → CANCELLED."""
    service.cancel(
        call.session, current_account(call), call.required_text("trid"), call.runtime.clock
    )
    return {}


def resend(call: Call) -> dict[str, Any]:
    """Send a PENDING payment request again by SMS or e-mail."""
    service.resend(
        call.session,
        current_account(call),
        call.required_text("trid"),
        call.required_text("media"),
        call.runtime.settings,
        call.runtime.clock,
    )
    return {}


ENDPOINTS = [
    Endpoint(
        "/mobip/send_payment_request",
        "POST",
        "Send a payment request by e-mail or SMS to the customer",
        send_payment_request,
        writes=True,
        idempotent=True,
        group_commit=True,
        inputs=[
            ITEM_AMOUNT,
            Field(
                "tax_amount",
                "integer",
                "Taxes added to the item price, in minor units",
                True,
                minimum=0,
                service_checks_range=True,
            ),
            _url("redirect_url", "Absolute http(s) URL the customer returns to", True),
            _url("call_back_url", CALLBACK_URL_HELP),
            TRACK_ID,
            ITEM_NAME,
            ACCESS_TOKEN,
            Field(
                "retry_period",
                "integer",
                "Days between automatic resends, 0..365 (default 0: none)",
                minimum=0,
                maximum=365,
                default=0,
            ),
            Field(
                "retry_attempts",
                "integer",
                "Maximum automatic resends, 0..10 (default 3)",
                minimum=0,
                maximum=10,
                default=3,
            ),
            _ttl("Days before the request expires, 1..365 (default 365)"),
            LANGUAGE,
            CUSTOMER_NAME,
            _email("Customer e-mail (receipt; the request if EMAIL)", True),
            MEDIA,
            _phone("International number (+33…), required for SMS"),
        ],
        outputs=[
            *URL_FIELDS,
            Field("raw_qr", "string", "The QR code as a PNG, base64-encoded"),
            Field("track_id", "string", "Your track_id, as sent"),
        ],
    ),
    Endpoint(
        "/mobip/create_one_use_qr",
        "POST",
        "Create a QR code that can be paid once (no message is sent)",
        create_one_use_qr,
        writes=True,
        idempotent=True,
        group_commit=True,
        inputs=[
            ITEM_NAME,
            LANGUAGE,
            TRACK_ID,
            Field(
                "tax_amount_in_cents",
                "integer",
                "Taxes, in minor units",
                True,
                minimum=0,
                service_checks_range=True,
            ),
            ITEM_AMOUNT,
            CUSTOMER_NAME,
            _email("Customer e-mail, for the receipt"),
            _url("call_back_url", CALLBACK_URL_HELP, True),
            _url("redirect_url", "Absolute http(s) URL the customer returns to", True),
            _ttl("Days before the QR expires, 1..365 (default 365)"),
            ACCESS_TOKEN,
            _phone("International number (+33…)"),
        ],
        outputs=URL_FIELDS,
    ),
    Endpoint(
        "/mobip/is_valid",
        "GET",
        "Status of a transaction",
        is_valid,
        fast_read=is_valid_on_loop,
        inputs=[TRID, ACCESS_TOKEN],
        outputs=[
            Field("transaction_status", "string", "PAID, DENIED, PENDING, CANCELLED or ERROR"),
            Field("track_id", "string", "The track_id given at creation"),
            Field("reason", "string", "Why it failed, was cancelled or expired (EXPIRED)"),
            Field("payment_method", "string", "e.g. card brand and last 4 digits"),
            Field("desc", "string", "The item name"),
            Field("isRefunded", "string", "'true' when refunded"),
            Field("transaction_datetime", "string", "Time of the last status change, ISO 8601 UTC"),
            Field("external_accountid", "string", "The merchant's External_AccountID"),
        ],
    ),
    Endpoint(
        "/mobip/get_transaction",
        "GET",
        "Every stored field of a transaction, its status history and messages",
        get_transaction,
        inputs=[ACCESS_TOKEN, TRID],
        outputs=[Field("transaction_data", "object", "All data of the transaction")],
    ),
    Endpoint(
        "/mobip/cancel_transaction",
        "POST",
        "Cancel a PENDING transaction",
        cancel_transaction,
        writes=True,
        inputs=[TRID, ACCESS_TOKEN],
    ),
    Endpoint(
        "/mobip/resend",
        "POST",
        "Send a PENDING payment request again by SMS or e-mail",
        resend,
        writes=True,
        inputs=[MEDIA, TRID, ACCESS_TOKEN],
    ),
]
