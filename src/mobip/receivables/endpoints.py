"""The spec's four external-invoice endpoints and request_invoices_payment (our extension).

The spec marks them Public (any token holder); the service admits merchants only (3001 for a
partner or an admin: docs/receivables.md)."""

from __future__ import annotations

from typing import Any

from mobip.accounts.endpoints import current_account
from mobip.api.routing import ACCESS_TOKEN, Call, Endpoint, Field
from mobip.receivables import service
from mobip.receivables.models import InvoiceStatus
from mobip.transactions.endpoints import URL_FIELDS

# 10,000 invoices of about 200 bytes: the body limit of set_external_invoices only.
IMPORT_MAX_BODY_BYTES = 8 * 1024 * 1024
# InvoicesLists' own limit leaves room in the body for the other fields and the multipart
# framing, so a value one character too long is named (1003), not just a body too large (413).
IMPORT_MAX_CHARS = IMPORT_MAX_BODY_BYTES - 64 * 1024
# Up to 10,000 InvIds of 64 characters and their separators.
IDS_MAX_CHARS = 10_000 * 65

SOURCE = Field(
    "ExternalSourceId",
    "string",
    "Your external system's id (one merchant may have several; another merchant's source of "
    "the same id is another source)",
    required=True,
    max_length=service.MAX_ID_CHARS,
)


def set_external_invoices(call: Call) -> dict[str, Any]:
    runtime = call.runtime
    return service.set_external_invoices(
        call.session,
        current_account(call),
        call.required_text("ExternalSourceId"),
        call.text("BatchId"),
        call.required_text("InvoicesLists"),
        runtime.settings,
        runtime.clock,
    )


def set_external_invoice_status(call: Call) -> dict[str, Any]:
    caller = current_account(call)
    codes = {status.value: call.required_text(status.value) for status in InvoiceStatus}
    return service.set_external_invoice_status(
        call.session, caller, call.required_text("ExternalSourceId"), codes, call.runtime.clock
    )


def get_external_invoices(call: Call) -> dict[str, Any]:
    runtime = call.runtime
    return service.get_external_invoices(
        call.session,
        current_account(call),
        call.required_text("ExternalSourceId"),
        call.text("InvoicesList"),
        runtime.settings,
        runtime.clock,
    )


def get_external_invoices_status(call: Call) -> dict[str, Any]:
    return service.get_external_invoices_status(
        call.session, current_account(call), call.required_text("ExternalSourceId")
    )


def request_invoices_payment(call: Call) -> dict[str, Any]:
    runtime = call.runtime
    created = service.request_invoices_payment(
        call.session,
        current_account(call),
        call.required_text("ExternalSourceId"),
        call.required_text("CustomerId"),
        call.required_text("media"),
        call.text("InvoicesList"),
        call.integer("transaction_ttl"),
        runtime.settings,
        runtime.clock,
    )
    return {
        "trid": created.trid,
        "url_checkout": created.url_checkout,
        "url_qr": created.url_qr,
        "raw_qr": created.raw_qr,
        "track_id": created.track_id or "",
        "amount_in_cents": str(created.transaction["item_amount"]),
    }


_STATUS_HELP = {
    InvoiceStatus.PENDING: "pending (not yet due)",
    InvoiceStatus.DUE: "due (to be paid)",
    InvoiceStatus.FULLY_PAID: "fully_paid",
    InvoiceStatus.PARTIALLY_PAID: "partially_paid",
}

ENDPOINTS = [
    Endpoint(
        "/mobip/set_external_invoices",
        "POST",
        "Import (create or update) customers and their invoices of one external source, all or "
        "nothing",
        set_external_invoices,
        writes=True,
        max_body_bytes=IMPORT_MAX_BODY_BYTES,
        inputs=[
            ACCESS_TOKEN,
            SOURCE,
            Field(
                "BatchId",
                "string",
                "Your id of this import: the same BatchId again for the source is answered as "
                "the first time and changes nothing",
                max_length=service.MAX_ID_CHARS,
            ),
            Field(
                "InvoicesLists",
                "string",
                'JSON: {"InvoicesLists": [customers]}, a bare list of customers, or the spec\'s '
                "example form (a bare invoice array in each customer, keys with trailing spaces, "
                'trailing commas, the outer "InvoicesLists": prefix). A customer: CustomerId '
                "(required), CustomerPhone (E.164, or national in France), CustomerEmail, "
                "CustomerBalance_in_cents, CustomerBalance_Date, Invoices: [{InvId (required, "
                "unique in the source), InvDate, InvDueDate (YYYY-MM-DD), InvLbl, "
                "Amount_in_cents (required, > 0), InvStatus}]. At most 10,000 invoices; also "
                "accepted as an uploaded file part",
                required=True,
                max_length=IMPORT_MAX_CHARS,
                multiline=True,
            ),
        ],
        outputs=[
            Field("ExternalSourceId", "string", "Extension. The source, as stored"),
            Field("BatchId", "string", "Extension. The BatchId given, or empty"),
            Field(
                "customers",
                "string",
                "Extension. Counts: customers, invoices, invoices_created, invoices_updated, "
                "invoices_unchanged",
            ),
        ],
    ),
    Endpoint(
        "/mobip/set_external_invoice_status",
        "POST",
        "Map the external status codes of one source to MOBIP's four statuses (replaces the "
        "previous mapping)",
        set_external_invoice_status,
        writes=True,
        inputs=[
            ACCESS_TOKEN,
            *(
                Field(
                    status.value,
                    "string",
                    f"The external code(s) meaning {help_text}, '|'-separated; a code may "
                    "mean one MOBIP status only",
                    required=True,
                    max_length=4096,
                )
                for status, help_text in _STATUS_HELP.items()
            ),
            SOURCE,
        ],
        outputs=[Field("ExternalSourceId", "string", "Extension. The source, as stored")],
    ),
    Endpoint(
        "/mobip/get_external_invoices",
        "GET",
        "The invoices of one external source, with their MOBIP status and what was paid",
        get_external_invoices,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "InvoicesList",
                "string",
                "InvIds separated with a | (default: every invoice of the source)",
                max_length=IDS_MAX_CHARS,
            ),
            SOURCE,
        ],
        outputs=[
            Field(
                "InvoicesList",
                "array",
                "The invoices: CustomerId, InvId, InvDate, InvDueDate, InvLbl, Amount_in_cents, "
                "InvStatus (the imported code; once MOBIP payments settled it, the first code "
                "mapped to its MOBIP status); extension: external_status (as imported), "
                "mobip_status, paid_amount_in_cents, remaining_amount_in_cents, paid_at, "
                "paid_by (the trids, '|'-separated), url_portal (the customer's portal), "
                "customer_credit_in_cents (what the customer's payments brought beyond their "
                "invoices)",
            ),
            Field("not_found", "string", "Extension. The InvIds asked for that do not exist"),
        ],
    ),
    Endpoint(
        "/mobip/get_external_invoices_status",
        "GET",
        "The mapping of one source's status codes to MOBIP's statuses",
        get_external_invoices_status,
        inputs=[ACCESS_TOKEN, SOURCE],
        outputs=[
            Field(
                "InvoiceStatusesList",
                "array",
                "One entry per MOBIP status: mobip_status, external_statuses ('|'-separated)",
            ),
        ],
    ),
    Endpoint(
        "/mobip/request_invoices_payment",
        "POST",
        "Extension. Send an imported customer a payment request for its invoices (by default "
        "its due ones), with its portal link",
        request_invoices_payment,
        writes=True,
        idempotent=True,
        inputs=[
            ACCESS_TOKEN,
            SOURCE,
            Field(
                "CustomerId",
                "string",
                "The imported customer",
                required=True,
                max_length=service.MAX_ID_CHARS,
            ),
            Field(
                "media",
                "string",
                "EMAIL (to CustomerEmail) or SMS (to CustomerPhone)",
                required=True,
                max_length=8,
                enum=("EMAIL", "SMS"),
            ),
            Field(
                "InvoicesList",
                "string",
                "InvIds of this customer's open invoices, separated with a | (default: its due "
                "ones); joined, at most 255 characters (the transaction's track_id)",
                max_length=IDS_MAX_CHARS,
            ),
            Field(
                "transaction_ttl",
                "integer",
                "Days the request can be paid (1..365, default 30)",
                minimum=1,
                maximum=365,
                default=30,
            ),
        ],
        outputs=[
            *URL_FIELDS,
            Field("raw_qr", "string", "The checkout link's QR code, PNG in base64"),
            Field("track_id", "string", "The invoices' ids, '|'-separated"),
            Field("amount_in_cents", "string", "What is asked: the invoices' remaining amounts"),
        ],
    ),
]
