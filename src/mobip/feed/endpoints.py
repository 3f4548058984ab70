"""neosystems/get_mobip_transactions and neosystems/set_mobip_transactions (the spec's partner
feed), with our extensions marked."""

from __future__ import annotations

from typing import Any

from mobip.accounts.endpoints import ADMINS_AND_PARTNERS, current_account
from mobip.api.routing import ACCESS_TOKEN, Access, Call, Endpoint, Field, Streamed
from mobip.feed import service


def get_mobip_transactions(call: Call) -> Streamed:
    """The caller's subtree's pending lines, oldest first: at most ``limit``, else every one,
    streamed page by page (constant memory however many)."""
    field = call.inputs["limit"]
    limit = call.params.integer("limit", minimum=field.minimum, maximum=field.maximum)
    scope = service.scope_of(call.session, current_account(call))
    return Streamed(
        fields={},
        name="transactions_list",
        start=service.Cursor(after=0, left=limit),
        page=lambda session, cursor: service.page(session, scope, cursor),
    )


def set_mobip_transactions(call: Call) -> dict[str, Any]:
    """Acknowledge the pending lines of the listed trids: removed from the feed."""
    return service.acknowledge(
        call.session,
        current_account(call),
        call.required_text("trid_list"),
        call.runtime.clock.now(),
    )


_LINE_FIELDS = (
    "id_flux (unique, increasing), type (PAYMENT or REFUND), trid, track_id, merchant_name, "
    "mobip_merchant_id (the merchant's uid), external_accountid, amount, item_amount, "
    "tax_amount, fees, net_amount (minor units; a refund's are negative, its fees 0), currency, "
    "customer_name, customer_email, customer_phone, payment_method, event_datetime (UTC), "
    "isRefunded; extension: refund_id"
)

ENDPOINTS = [
    Endpoint(
        "/neosystems/get_mobip_transactions",
        "GET",
        "The payments and refunds of the caller's subtree not yet acknowledged with "
        "set_mobip_transactions, oldest first",
        get_mobip_transactions,
        access=Access.RESTRICTED,
        roles=ADMINS_AND_PARTNERS,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "limit",
                "integer",
                "The maximum number of lines to retrieve (1 to 10000); without it, every line "
                "(streamed)",
                minimum=1,
                maximum=service.MAX_LIMIT,
                max_length=20,
            ),
        ],
        outputs=[
            Field(
                "transactions_list",
                "array",
                f"The lines to process: {_LINE_FIELDS}",
            ),
        ],
    ),
    Endpoint(
        "/neosystems/set_mobip_transactions",
        "POST",
        "Acknowledge transactions: their pending lines leave get_mobip_transactions",
        set_mobip_transactions,
        access=Access.RESTRICTED,
        roles=ADMINS_AND_PARTNERS,
        writes=True,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "trid_list",
                "string",
                f"The trids to remove, separated by a pipe (|), at most {service.MAX_TRIDS}",
                required=True,
                max_length=service.MAX_TRIDS * 41,
                pattern=r"^[A-Za-z0-9_-]{1,40}(\|[A-Za-z0-9_-]{1,40})*$",
            ),
        ],
        outputs=[
            Field(
                "removed_transactions_list",
                "array",
                "The trids whose lines this call removed",
            ),
            Field(
                "not_removed_list",
                "array",
                "Extension. The other trids of trid_list, each with its reason: "
                '"unknown or not yours" or "already removed"',
            ),
        ],
    ),
]
