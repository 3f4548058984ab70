"""The routes of the hosted checkout, mounted by the app: the pages under /pay (with their
security headers and our stylesheet), the QR images under /qr and the providers' webhooks.

The handlers are module-level functions (``pages.py``, ``qr_images.py``, ``webhooks.py``) that
reach the runtime through the app (``request.app.state.runtime``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mobip.accounts.endpoints import current_account
from mobip.api.routing import ACCESS_TOKEN, Call, CallOutside, Endpoint, Field
from mobip.checkout import logo, pages, qr_images, refunds, webhooks
from mobip.checkout.providers.base import ProviderError
from mobip.checkout.providers.base import Refund as ProviderRefundResult
from mobip.checkout.rendering import SecurityHeaders, is_https
from mobip.kit.runtime import Runtime

STATIC_DIR = Path(__file__).parent / "static"


def build_routes(runtime: Runtime) -> list[BaseRoute]:
    """/qr/{token}, /pay/{token} (+ /return, /start), /pay/static/*, /webhooks/{provider}/{uid}."""
    pay_routes: list[BaseRoute] = [
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="checkout-static"),
        Route("/{token}", pages.page, methods=["GET", "HEAD"]),
        Route("/{token}", pages.pay, methods=["POST"]),
        Route("/{token}/start", pages.start, methods=["POST"]),
        Route("/{token}/return", pages.provider_return, methods=["GET"]),
        Route("/{token}/logo", logo.logo, methods=["GET", "HEAD"]),
    ]
    headers = Middleware(SecurityHeaders, https=is_https(runtime.settings))
    return [
        Route("/qr/{token}", qr_images.qr_image, methods=["GET", "HEAD"]),
        Mount("/pay", routes=pay_routes, middleware=[headers]),
        Route("/webhooks/{provider}/{account_uid}", webhooks.receive, methods=["POST"]),
    ]


# --- the API endpoint of refunds (issue 13) -------------------------------------------------------


def refund_transaction(call: Call) -> CallOutside:
    """Refund a PAID transaction (all that is left, or ``amount_in_cents``) through its provider,
    called between two units of work (checkout/refunds.py)."""
    runtime = call.runtime
    amount = call.params.integer("amount_in_cents")
    planned = refunds.plan_refund(
        call.session, current_account(call), call.required_text("trid"), amount, runtime
    )

    def finish(session: Any, outcome: ProviderRefundResult | ProviderError) -> dict[str, Any]:
        return refunds.finish_refund(session, planned, outcome, runtime)

    return CallOutside(call=planned.call, finish=finish)


ENDPOINTS = [
    Endpoint(
        "/mobip/refund_transaction",
        "POST",
        "Extension. Refund a PAID transaction, in full or in part",
        refund_transaction,
        writes=True,
        idempotent=True,
        inputs=[
            Field("trid", "string", "Transaction id", True, max_length=64),
            Field(
                "amount_in_cents",
                "integer",
                "The amount to refund in minor units, more than 0 and at most what is left; "
                "default: all that is left",
                minimum=1,
                service_checks_range=True,  # refunds.plan_refund: more than 0, at most what is left
            ),
            ACCESS_TOKEN,
        ],
        outputs=[
            Field("trid", "string", "The transaction refunded"),
            Field(
                "refund",
                "object",
                "The refund: refund_id, amount_in_cents, currency, status (SUCCEEDED), source "
                "(api), provider, provider_reference, created_at, refunded_at",
            ),
            Field("refunded_amount_in_cents", "string", "All refunded of the transaction now"),
            Field("isRefunded", "string", '"true" once the whole total is refunded'),
        ],
    ),
]
