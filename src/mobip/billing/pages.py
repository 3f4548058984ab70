"""GET /invoices/{invoice_id}.pdf: an invoice's PDF behind the signed link that get_invoice
gives (``url_pdf``: HMAC of the id and the expiry with the server's secret key, 24 hours)."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from mobip.billing import pdf, service
from mobip.billing.errors import InvoiceNotFound
from mobip.kit.i18n import language_of
from mobip.kit.runtime import Runtime


def build_routes(_: Runtime) -> list[BaseRoute]:
    return [Route("/invoices/{invoice_id}.pdf", invoice_pdf, methods=["GET", "HEAD"])]


def render_pdf(runtime: Runtime, invoice_id: str) -> tuple[str, bytes]:
    """(number, PDF bytes) of an invoice, in its merchant's language; InvoiceNotFound."""

    def work(session: Session) -> tuple[str, bytes]:
        invoice, merchant = service.open_invoice(session, invoice_id)
        return invoice.number, pdf.render(invoice, language_of(merchant.language))

    return runtime.database.run(work, immediate=False)


async def invoice_pdf(request: Request) -> Response:
    """The PDF, when the link's signature is ours and its time not past; 403 otherwise."""
    runtime: Runtime = request.app.state.runtime
    invoice_id = request.path_params["invoice_id"]
    valid = service.pdf_link_valid(
        runtime.settings,
        invoice_id,
        request.query_params.get("expires", ""),
        request.query_params.get("signature", ""),
        runtime.clock.now(),
    )
    if not valid:
        return PlainTextResponse("This link is not valid or has expired.", 403)
    try:
        number, document = await run_in_threadpool(render_pdf, runtime, invoice_id)
    except InvoiceNotFound:
        return PlainTextResponse("Not found", 404)
    return Response(
        document,
        200,
        {
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'inline; filename="{number}.pdf"',
            "X-Content-Type-Options": "nosniff",
        },
        "application/pdf",
    )
