"""The QR image of a transaction's checkout link: GET /qr/{checkout_token}[?format=svg&size=N].

The link is looked up through ``transactions.service`` (the same lookup as the pages'); the
image is drawn by ``mobip.qr``, which knows nothing of transactions.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from mobip.checkout.views import is_checkout_token
from mobip.kit.runtime import Runtime
from mobip.qr.service import MAX_SCALE, MIN_SCALE, render_png, render_svg
from mobip.transactions import service as transactions

DEFAULT_SCALE = 8
# The image of a token never changes: let browsers and proxies keep it.
CACHE_CONTROL = "public, max-age=31536000, immutable"


async def qr_image(request: Request) -> Response:
    """The checkout link of ``token`` as a PNG (default) or SVG, ``size`` pixels per module."""
    runtime: Runtime = request.app.state.runtime
    fmt = request.query_params.get("format", "png").lower()
    if fmt not in ("png", "svg"):
        return PlainTextResponse("format must be png or svg", 400)
    raw_size = request.query_params.get("size", str(DEFAULT_SCALE))
    if not raw_size.isdigit() or not MIN_SCALE <= int(raw_size) <= MAX_SCALE:
        return PlainTextResponse(f"size must be {MIN_SCALE}..{MAX_SCALE} (pixels per module)", 400)
    token = request.path_params["token"]
    # Not a token's form: not one of ours, and not to be looked up (a NUL is an error on
    # PostgreSQL).
    url = (
        await run_in_threadpool(_checkout_url, runtime, token) if is_checkout_token(token) else None
    )
    if url is None:
        return PlainTextResponse("Not found", 404)
    headers = {"Cache-Control": CACHE_CONTROL}
    if fmt == "svg":
        return Response(render_svg(url, scale=int(raw_size)), 200, headers, "image/svg+xml")
    return Response(render_png(url, scale=int(raw_size)), 200, headers, "image/png")


def _checkout_url(runtime: Runtime, token: str) -> str | None:
    found = runtime.database.run(
        lambda session: transactions.get_by_checkout_token(session, token), immediate=False
    )
    return transactions.checkout_url(runtime.settings, found[0]) if found else None
