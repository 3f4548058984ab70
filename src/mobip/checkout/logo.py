"""A merchant's logo on its checkout pages and e-mails: GET /pay/{checkout_token}/logo?v=...

The token names a transaction, whose merchant's logo is served: a token shows its own merchant's
logo and nothing else. The logo was sanitised when it was stored (accounts.branding); an SVG is
served with a CSP that forbids everything but inline styles, in case a browser opens it as a
document. ``v`` is the logo's version (``Branding.logo_version``): the URL changes with the logo,
so its reply may be kept for a year.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from mobip.accounts import service as accounts
from mobip.checkout.views import is_checkout_token
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions

CACHE_CONTROL = "public, max-age=31536000, immutable"
# A URL whose ``v`` is not the current logo's (an old e-mail): served, but not kept.
CACHE_CONTROL_STALE = "no-cache"
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"


async def logo(request: Request) -> Response:
    """The logo of the merchant of ``token``; 404 for an unknown token or no logo.

    X-Content-Type-Options: nosniff comes with the /pay mount's security headers.
    """
    runtime: Runtime = request.app.state.runtime
    token = request.path_params["token"]
    found = await run_in_threadpool(_logo, runtime, token) if is_checkout_token(token) else None
    return logo_reply(request, found)


def logo_reply(request: Request, found: tuple[str, bytes] | None) -> Response:
    """A logo (content type, bytes) as its pages link it (``?v=`` its version: kept a year when
    current); 404 for none. The customer portal's logo is served the same way."""
    if found is None:
        return PlainTextResponse("Not found", 404)
    content_type, content = found
    current = hashlib.sha256(content).hexdigest()[:16]
    headers = {
        "Cache-Control": (
            CACHE_CONTROL if request.query_params.get("v") == current else CACHE_CONTROL_STALE
        ),
    }
    if content_type == "image/svg+xml":
        headers["Content-Security-Policy"] = SVG_CSP
    return Response(content, 200, headers, content_type)


def _logo(runtime: Runtime, token: str) -> tuple[str, bytes] | None:
    def read(session: Session) -> tuple[str, bytes] | None:
        found = transactions.get_by_checkout_token(session, token)
        return accounts.get_logo(session, found[1].id) if found else None

    return runtime.database.run(read, immediate=False)
