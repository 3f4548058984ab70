"""Reusable QR codes: create_reusable_qr (the spec's), and our extensions to read, list,
disable and enable them."""

from __future__ import annotations

from typing import Any

from mobip.accounts.endpoints import current_account
from mobip.api.routing import ACCESS_TOKEN, Call, CallOutside, Endpoint, Field
from mobip.products import service
from mobip.products.storage import photo_store
from mobip.transactions.endpoints import CALLBACK_URL_HELP, HTTP_URL_PATTERN, LANGUAGE

QR_ID = Field("qr_id", "string", "The reusable QR code's id (qr_…)", True, max_length=64)


# item_video: https only (the page that links to it is https).
HTTPS_URL_PATTERN = HTTP_URL_PATTERN.replace("[Hh][Tt][Tt][Pp][Ss]?", "[Hh][Tt][Tt][Pp][Ss]", 1)
assert HTTPS_URL_PATTERN != HTTP_URL_PATTERN


def _url(name: str, description: str, required: bool = False, *, https: bool = False) -> Field:
    return Field(
        name,
        "string",
        description,
        required,
        max_length=2048,
        format="uri",
        pattern=HTTPS_URL_PATTERN if https else HTTP_URL_PATTERN,
    )


def _text(name: str, description: str, max_length: int = 255) -> Field:
    return Field(name, "string", description, max_length=max_length)


def create_reusable_qr(call: Call) -> CallOutside:
    """A product's QR code, paid any number of times; its photo is downloaded and stored now."""
    merchant = current_account(call)
    data = service.NewReusableQr(
        item_amount=call.integer("item_amount"),
        tax_amount=call.integer("tax_amount"),
        item_name=call.required_text("item_name"),
        item_photo=call.required_text("item_photo"),
        item_video=call.text("item_video"),
        item_message=call.text("item_message"),
        item_reference=call.text("item_reference"),
        item_category=call.text("item_category"),
        item_brand=call.text("item_brand"),
        call_back_url=call.text("call_back_url"),
        redirect_url=call.text("redirect_url"),
        language=call.text("language"),
    )
    runtime = call.runtime
    settings = runtime.settings
    checked = service.check_new(merchant, data, settings)
    store = photo_store(runtime)
    # The download (up to 10 s) runs with no database transaction open; the QR code is recorded
    # in a second unit of work (api/routing's CallOutside).
    return CallOutside(
        call=lambda: service.download_photo(checked, settings, store),
        finish=lambda session, photo: service.record(
            session, checked, photo, settings, runtime.clock
        ),
    )


def get_reusable_qr(call: Call) -> dict[str, Any]:
    """Every field of a QR code, its photo's URLs, its status and its payments' totals."""
    return {
        "reusable_qr": service.get(
            call.session, current_account(call), call.required_text("qr_id"), call.runtime.settings
        )
    }


def get_reusable_qr_list(call: Call) -> dict[str, Any]:
    """The caller's QR codes (a partner's or admin's: its descendants' too), newest first."""
    return service.list_of(
        call.session,
        current_account(call),
        call.runtime.settings,
        limit=call.integer("limit"),
        starting_after=call.text("starting_after"),
    )


def disable_reusable_qr(call: Call) -> dict[str, Any]:
    """No new payment can start on the QR's page (those started finish as usual)."""
    return service.set_enabled(
        call.session, current_account(call), call.required_text("qr_id"), False, call.runtime.clock
    )


def enable_reusable_qr(call: Call) -> dict[str, Any]:
    """The QR's page takes payments again."""
    return service.set_enabled(
        call.session, current_account(call), call.required_text("qr_id"), True, call.runtime.clock
    )


_STATUS_OUTPUTS = [
    Field("qr_id", "string", "The QR code's id"),
    Field("status", "string", "ACTIVE or DISABLED"),
]

ENDPOINTS = [
    Endpoint(
        "/mobip/create_reusable_qr",
        "POST",
        "Create a product's QR code that any number of customers can pay (its photo is "
        "downloaded and stored during the call)",
        create_reusable_qr,
        idempotent=True,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "item_amount",
                "integer",
                "Item price without taxes, in minor units, more than 0 (item + tax at most the "
                "server's MOBIP_MAX_TOTAL_AMOUNT)",
                True,
                minimum=1,
                service_checks_range=True,
            ),
            Field(
                "item_name",
                "string",
                "Name of the product (1..255 characters)",
                True,
                max_length=255,
            ),
            Field(
                "tax_amount",
                "integer",
                "Taxes added to the item price, in minor units",
                True,
                minimum=0,
                service_checks_range=True,
            ),
            _url(
                "item_photo",
                "http(s) URL of the product's photo: downloaded now (JPEG, PNG, WebP or GIF, "
                "at most 5 MiB and 40 megapixels, 3 redirects, 10 s), stored re-encoded",
                True,
            ),
            _url("item_video", "https URL of a video, shown as a link (never fetched)", https=True),
            Field(
                "item_message",
                "string",
                "Short message shown on the product page (≤ 500 characters)",
                max_length=500,
                multiline=True,
            ),
            _text("item_reference", "Your reference: the track_id of every payment (≤ 255)"),
            _text("item_category", "Category shown on the page (≤ 255)"),
            _text("item_brand", "Brand shown on the page (≤ 255)"),
            _url("call_back_url", f"Extension. {CALLBACK_URL_HELP}, for every payment"),
            _url(
                "redirect_url",
                "Extension. Absolute http(s) URL the customer returns to after paying "
                "(default: the product page)",
            ),
            Field(
                "language",
                "string",
                "Extension. The product page's language, EN or FR (any case; default: the "
                "browser's Accept-Language)",
                max_length=8,
                enum=LANGUAGE.enum,
            ),
        ],
        outputs=[
            Field("qr_id", "string", "Id of the reusable QR code"),
            Field(
                "url_qr",
                "string",
                "URL of the QR code image (PNG; ?format=svg, ?size=1..40, ?format=pdf&paper=A4|A6 "
                "for a printable poster)",
            ),
            Field("url_checkout", "string", "URL of the product page"),
        ],
    ),
    Endpoint(
        "/mobip/get_reusable_qr",
        "GET",
        "Extension. A reusable QR code: every field, its photo, its status and its payments",
        get_reusable_qr,
        inputs=[ACCESS_TOKEN, QR_ID],
        outputs=[Field("reusable_qr", "object", "All data of the QR code")],
    ),
    Endpoint(
        "/mobip/get_reusable_qr_list",
        "GET",
        "Extension. The caller's reusable QR codes, newest first (keyset pagination)",
        get_reusable_qr_list,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "limit",
                "integer",
                f"How many, 1..{service.MAX_LIST_LIMIT} (default {service.DEFAULT_LIST_LIMIT})",
                minimum=1,
                maximum=service.MAX_LIST_LIMIT,
                default=service.DEFAULT_LIST_LIMIT,
            ),
            Field(
                "starting_after",
                "string",
                "The qr_id of the last item of the previous page",
                max_length=64,
            ),
        ],
        outputs=[
            Field("reusable_qrs", "array", "The QR codes, as get_reusable_qr gives each"),
            Field("has_more", "string", "'true' when more follow the last one"),
        ],
    ),
    Endpoint(
        "/mobip/disable_reusable_qr",
        "POST",
        "Extension. Stop a reusable QR code taking payments (those started finish)",
        disable_reusable_qr,
        writes=True,
        inputs=[ACCESS_TOKEN, QR_ID],
        outputs=_STATUS_OUTPUTS,
    ),
    Endpoint(
        "/mobip/enable_reusable_qr",
        "POST",
        "Extension. Let a disabled reusable QR code take payments again",
        enable_reusable_qr,
        writes=True,
        inputs=[ACCESS_TOKEN, QR_ID],
        outputs=_STATUS_OUTPUTS,
    ),
]
