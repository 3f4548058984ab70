"""get_invoice_list and get_invoice (the spec's), with our fields marked as extensions."""

from __future__ import annotations

from typing import Any

from mobip.accounts.endpoints import current_account
from mobip.api.routing import ACCESS_TOKEN, Call, Endpoint, Field
from mobip.billing import service


def get_invoice_list(call: Call) -> dict[str, Any]:
    """The caller's fee invoices (or a descendant's, by ``uid``), newest first."""
    return service.list_invoices(call.session, current_account(call), call.text("uid"))


def get_invoice(call: Call) -> dict[str, Any]:
    """Every field of one invoice, its lines and its PDF's signed link."""
    runtime = call.runtime
    return service.get_invoice(
        call.session,
        current_account(call),
        call.required_text("invoice_id"),
        runtime.settings,
        runtime.clock,
    )


ENDPOINTS = [
    Endpoint(
        "/mobip/get_invoice_list",
        "GET",
        "List of the platform's fee invoices of the caller (invoice_id, invoice_date, amount), "
        "newest first",
        get_invoice_list,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "uid",
                "string",
                "Extension. A partner's or admin's descendant whose invoices to list "
                "(default: the caller's own)",
                max_length=64,
            ),
        ],
        outputs=[
            Field(
                "invoice_data",
                "array",
                "List of all invoice_id, invoice_date (YYYY-MM-DD), amount (due, minor units); "
                "extension: invoice_number, period_start, period_end (the half-open period, "
                "UTC), currency, amount_excl_tax, vat_amount",
            ),
        ],
    ),
    Endpoint(
        "/mobip/get_invoice",
        "GET",
        "All data of one fee invoice",
        get_invoice,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "invoice_id",
                "string",
                "An invoice_id coming from get_invoice_list",
                required=True,
                max_length=64,
            ),
        ],
        outputs=[
            Field(
                "invoice_data",
                "object",
                "All invoice data for invoice_id: get_invoice_list's fields, the seller and the "
                "buyer, the lines (percentage and fixed fees on the PAID transactions), "
                "vat_rate, and url_pdf (extension: a signed link to the PDF, valid 24 hours)",
            ),
        ],
    ),
]
