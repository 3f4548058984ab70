"""Payment requests and one-use QR codes: create, read, cancel, resend."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES

from mobip.accounts.models import Account
from mobip.api.envelope import Params
from mobip.api.routing import Call, Endpoint, FastWrite, Field, Handler, PreparedWrite, Principal
from mobip.auth.endpoints import ACCESS_TOKEN, current_account
from mobip.kit.runtime import Runtime
from mobip.kit.validation import MAX_EMAIL_CHARS
from mobip.transactions import service
from mobip.transactions.models import TransactionKind

# The limits below are the ones the handlers and the service enforce (params.text(max_chars=...),
# params.integer(minimum=..., maximum=...), _validated's amount checks, Media and Language);
# api/routing enforces the declared lengths first, and OpenAPI states them all.
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


def _common(params: Params) -> dict[str, Any]:
    return {
        "item_name": params.required_text("item_name", max_chars=255),
        "redirect_url": params.required_text("redirect_url", max_chars=2048),
        "track_id": params.text("track_id", max_chars=255),
        "customer_name": params.text("customer_name", max_chars=255),
        "customer_phone": params.text("customer_phone", max_chars=32),
        "language": params.text("language", max_chars=8),
        "ttl_days": params.integer("transaction_ttl", default=365, minimum=1, maximum=365) or 365,
        "item_amount": params.integer("item_amount_in_cents", required=True) or 0,
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
)
ITEM_NAME = _text("item_name", "Name of the product or service (1..255 characters)", True)
TRACK_ID = _text("track_id", "Your own reference (≤ 255 characters)")
CUSTOMER_NAME = _text("customer_name", "Customer name, prefills the payment form")
LANGUAGE = Field(
    "language", "string", "EN (default) or FR (any case)", max_length=8, enum=("EN", "FR")
)


def _ttl(description: str) -> Field:
    return Field("transaction_ttl", "integer", description, minimum=1, maximum=365)


def _payment_request(params: Params) -> service.NewTransaction:
    return service.NewTransaction(
        kind=TransactionKind.PAYMENT_REQUEST,
        tax_amount=params.integer("tax_amount", required=True) or 0,
        call_back_url=params.text("call_back_url", max_chars=2048),
        customer_email=params.required_text("customer_email", max_chars=MAX_EMAIL_CHARS),
        media=params.required_text("media", max_chars=8),
        retry_period_days=params.integer("retry_period", default=0, minimum=0, maximum=365) or 0,
        retry_attempts=params.integer("retry_attempts", default=3, minimum=0, maximum=10) or 0,
        **_common(params),
    )


def _payment_request_reply(created: service.PreparedCreate) -> dict[str, Any]:
    return {
        "trid": created.trid,
        "url_checkout": created.url_checkout,
        "url_qr": created.url_qr,
        "raw_qr": created.raw_qr,
        "track_id": created.track_id or "",
    }


def _one_use_qr(params: Params) -> service.NewTransaction:
    return service.NewTransaction(
        kind=TransactionKind.ONE_USE_QR,
        tax_amount=params.integer("tax_amount_in_cents", required=True) or 0,
        tax_field="tax_amount_in_cents",
        call_back_url=params.required_text("call_back_url", max_chars=2048),
        customer_email=params.text("customer_email", max_chars=MAX_EMAIL_CHARS),
        media=None,
        retry_period_days=0,
        retry_attempts=0,
        **_common(params),
    )


def _one_use_qr_reply(created: service.PreparedCreate) -> dict[str, Any]:
    return {
        "trid": created.trid,
        "url_checkout": created.url_checkout,
        "url_qr": created.url_qr,
    }


Request = Callable[[Params], service.NewTransaction]
Reply = Callable[[service.PreparedCreate], dict[str, Any]]


def _creator(request: Request, reply: Reply) -> tuple[Handler, FastWrite]:
    """A create endpoint's handler (its own unit of work) and its group-committed fast write."""

    def handler(call: Call) -> dict[str, Any]:
        prepared = _prepare(call.runtime, call.params, current_account(call))
        service.write_created(call.session.connection(), [prepared])
        return reply(prepared)

    def fast_write(runtime: Runtime, params: Params, principal: Principal) -> PreparedWrite:
        assert isinstance(principal, Account)
        prepared = _prepare(runtime, params, principal)
        return PreparedWrite(reply(prepared), service.write_created, prepared)

    def _prepare(runtime: Runtime, params: Params, merchant: Account) -> service.PreparedCreate:
        return service.prepare_create(merchant, request(params), runtime.settings, runtime.clock)

    return handler, fast_write


send_payment_request, send_payment_request_fast = _creator(_payment_request, _payment_request_reply)
create_one_use_qr, create_one_use_qr_fast = _creator(_one_use_qr, _one_use_qr_reply)


def _trid(params: Params) -> str:
    return params.required_text("trid", max_chars=64)


def is_valid(call: Call) -> dict[str, Any]:
    return service.is_valid(
        call.session, current_account(call), _trid(call.params), call.runtime.clock
    )


def is_valid_fast(
    dbapi: sqlite3.Connection, runtime: Runtime, params: Params, principal: Principal
) -> dict[str, Any] | None:
    assert isinstance(principal, Account)
    return service.is_valid_read_sqlite(dbapi, principal, _trid(params), runtime.clock)


def get_transaction(call: Call) -> dict[str, Any]:
    transaction, merchant = service.get_for(
        call.session, current_account(call), _trid(call.params), call.runtime.clock
    )
    return {
        "transaction_data": service.transaction_data(
            call.session, transaction, merchant, call.runtime.settings
        )
    }


def cancel_transaction(call: Call) -> dict[str, Any]:
    service.cancel(call.session, current_account(call), _trid(call.params), call.runtime.clock)
    return {}


def resend(call: Call) -> dict[str, Any]:
    service.resend(
        call.session,
        current_account(call),
        _trid(call.params),
        call.params.required_text("media", max_chars=8),
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
        fast_write=send_payment_request_fast,
        inputs=[
            ITEM_AMOUNT,
            Field(
                "tax_amount",
                "integer",
                "Taxes added to the item price, in minor units",
                True,
                minimum=0,
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
            ),
            Field(
                "retry_attempts",
                "integer",
                "Maximum automatic resends, 0..10 (default 3)",
                minimum=0,
                maximum=10,
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
        fast_write=create_one_use_qr_fast,
        inputs=[
            ITEM_NAME,
            LANGUAGE,
            TRACK_ID,
            Field("tax_amount_in_cents", "integer", "Taxes, in minor units", True, minimum=0),
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
        fast_read=is_valid_fast,
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
