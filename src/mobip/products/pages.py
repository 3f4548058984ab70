"""The product page of a reusable QR code: GET and POST /p/{qr_id}, its photos (/p/photos/…)
and its QR image and poster (/qr/{qr_id}, the one-use QR codes' route and options).

The page has the hosted checkout's look, headers and CSP (checkout's base template, stylesheet,
SecurityHeaders, CSRF helper and error pages); Pay starts an ordinary transaction of the
merchant (products.service.start_payment) and sends the customer to its hosted checkout.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import ChoiceLoader, Environment, PackageLoader
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mobip.accounts import service as accounts
from mobip.accounts.models import Account
from mobip.api.envelope import client_ip, read_body
from mobip.checkout import csrf
from mobip.checkout import service as checkout
from mobip.checkout.hosted import accepted_language, moves_no_money
from mobip.checkout.qr_images import CACHE_CONTROL, DEFAULT_SCALE
from mobip.checkout.rendering import (
    SecurityHeaders,
    accent_css,
    content_security_policy,
    css_hash,
    is_https,
    page_environment,
    page_reply,
    render_error,
)
from mobip.config import Settings
from mobip.kit.errors import MobipError
from mobip.kit.i18n import LANGUAGES, N_, money, translate
from mobip.kit.runtime import Runtime
from mobip.products import poster, service
from mobip.products.errors import ReusableQrDisabled, ReusableQrNotFound
from mobip.products.models import QrStatus, ReusableQr
from mobip.products.storage import content_type, is_key, photo_store
from mobip.qr.service import MAX_SCALE, MIN_SCALE, render_png, render_svg

STATIC_DIR = Path(__file__).parent / "static"
MAX_FORM_BYTES = 16 * 1024
# A stored photo's name is its content hash: it never changes.
PHOTO_CACHE_CONTROL = "public, max-age=31536000, immutable"
COOKIE_PATH = "/p"


class _QrIdConvertor(Convertor[str]):
    """/qr/{qr_id:reusable_qr}: a reusable QR's id only; checkout's /qr/{token} has the rest."""

    regex = r"qr_[A-Za-z0-9_-]{22}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("reusable_qr", _QrIdConvertor())


def build_routes(runtime: Runtime) -> list[BaseRoute]:
    """/qr/{qr_id} (before checkout's /qr/{token}), /p/{qr_id} (GET, POST), /p/photos/{key}."""
    headers = Middleware(SecurityHeaders, https=is_https(runtime.settings))
    return [
        Route("/qr/{qr_id:reusable_qr}", qr_image, methods=["GET", "HEAD"]),
        Mount(
            COOKIE_PATH,
            routes=[
                Mount("/static", StaticFiles(directory=STATIC_DIR), name="product-static"),
                Route("/photos/{key}", photo, methods=["GET", "HEAD"]),
                Route("/{qr_id}", page, methods=["GET", "HEAD"]),
                Route("/{qr_id}", pay, methods=["POST"]),
            ],
            middleware=[headers],
        ),
    ]


# --- the page ------------------------------------------------------------------------------------


@cache
def templates(language: str) -> Environment:
    """Our templates, extending the checkout's base page, with ``language``'s translations."""
    return page_environment(
        language,
        ChoiceLoader(
            [
                PackageLoader("mobip.products", "templates"),
                PackageLoader("mobip.checkout", "templates"),
            ]
        ),
    )


def page_language(request: Request, qr: ReusableQr | None, asked: str | None) -> str:
    """``?lang=`` / the form's, else the QR's language, else the browser's Accept-Language."""
    for value in (asked, qr.language if qr else None):
        if value and value.upper() in LANGUAGES:
            return value.upper()
    return accepted_language(request.headers.get("accept-language", ""))


def _render(
    request: Request,
    settings: Settings,
    template: str,
    language: str,
    status: int,
    qr: ReusableQr,
    merchant: Account,
    accent: str | None,
    **context: Any,
) -> Response:
    """A page of ``qr`` with the checkout's CSP and the CSRF cookie (path /p) and form token."""
    cookie = request.cookies.get(csrf.COOKIE)
    new_cookie = None if csrf.valid_cookie(cookie) else csrf.new_cookie_value()
    cookie_value = cookie if new_cookie is None else new_cookie
    assert cookie_value is not None
    css = accent_css(accent)
    html = (
        templates(language)
        .get_template(template)
        .render(
            language=language,
            languages=LANGUAGES,
            token=None,
            csrf_token=csrf.form_token(settings.resolved_secret_key, cookie_value, qr.qr_id),
            merchant_name=merchant.name,
            accent_css=css,
            logo_url=None,
            # The merchant's provider moves no money (the sandbox): marked as the checkout is.
            test_mode=moves_no_money(merchant.provider),
            qr=qr,
            photo_url=service.photo_path(qr.photo_key),
            thumbnail_url=service.photo_path(qr.thumbnail_key),
            price=money(qr.item_amount, qr.currency, language),
            tax=money(qr.tax_amount, qr.currency, language),
            total=money(qr.total_amount, qr.currency, language),
            **context,
        )
    )
    csp = content_security_policy(style_hashes=(css_hash(css),) if css else ())
    return page_reply(
        html,
        status,
        settings,
        new_cookie=new_cookie,
        cookie_path=COOKIE_PATH,
        headers={"Content-Security-Policy": csp},
    )


def _loaded(runtime: Runtime, qr_id: str) -> tuple[ReusableQr, Account, str | None]:
    def work(session: Any) -> tuple[ReusableQr, Account, str | None]:
        qr, merchant = service.open_product(session, qr_id)
        return qr, merchant, accounts.get_branding(session, merchant.id).accent_colour

    return runtime.database.run(work, immediate=False)


async def page(request: Request) -> Response:
    """GET /p/{qr_id}: the product and its form; a disabled QR's page is a 410 without a form."""
    runtime: Runtime = request.app.state.runtime
    qr_id = request.path_params["qr_id"]
    try:
        qr, merchant, accent = await run_in_threadpool(_loaded, runtime, qr_id)
    except ReusableQrNotFound:
        return _not_found(request, runtime, request.query_params.get("lang"))
    language = page_language(request, qr, request.query_params.get("lang"))
    return _product_page(request, runtime, qr, merchant, accent, language)


def _product_page(
    request: Request,
    runtime: Runtime,
    qr: ReusableQr,
    merchant: Account,
    accent: str | None,
    language: str,
    *,
    errors: dict[str, str] | None = None,
    kept: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    settings = runtime.settings
    if qr.status != QrStatus.ACTIVE:
        return _render(request, settings, "gone.html", language, 410, qr, merchant, accent)
    return _render(
        request,
        settings,
        "product.html",
        language,
        status,
        qr,
        merchant,
        accent,
        errors=errors or {},
        kept=kept or {},
        max_quantity=service.max_quantity(qr, settings),
    )


NOT_FOUND = (
    N_("Product not found"),
    N_("This QR code is not valid. Check the code you scanned or ask the merchant."),
)
# The form's errors (service.check_purchase's keys), said under their field.
FORM_ERRORS = {
    "quantity_range": N_("Enter a whole number from 1 to %(max)d."),
    "email_invalid": N_("Enter a valid e-mail address, or leave it empty."),
}


def _not_found(request: Request, runtime: Runtime, lang: str | None) -> Response:
    """The 404 page of an unknown QR code (the checkout's message page)."""
    language = page_language(request, None, lang)
    error = ReusableQrNotFound()
    html = (
        templates(language)
        .get_template("message.html")
        .render(
            language=language,
            languages=LANGUAGES,
            token=None,
            accent_css=None,
            test_mode=False,
            title=translate(language, NOT_FOUND[0]),
            message=translate(language, NOT_FOUND[1]),
            code=error.return_code,
        )
    )
    return Response(html, error.http_status, {"Cache-Control": "no-store"}, media_type="text/html")


# --- Pay -----------------------------------------------------------------------------------------


async def pay(request: Request) -> Response:
    """POST /p/{qr_id}: CSRF-checked and rate-limited; a new transaction, then 303 to its page."""
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    qr_id = request.path_params["qr_id"]
    fields: dict[str, str] = {}
    try:
        body = await read_body(request, MAX_FORM_BYTES)
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=20))
        csrf.check(
            settings.resolved_secret_key,
            request.cookies.get(csrf.COOKIE),
            qr_id,
            fields.get(csrf.FIELD),
        )
        qr, merchant, accent = await run_in_threadpool(_loaded, runtime, qr_id)
    except ReusableQrNotFound:
        return _not_found(request, runtime, fields.get("lang"))
    except MobipError as error:
        language = page_language(request, None, fields.get("lang"))
        return render_error(request, settings, error, language, None)
    language = page_language(request, qr, fields.get("lang"))
    if qr.status != QrStatus.ACTIVE:
        return _product_page(request, runtime, qr, merchant, accent, language)
    quantity, name, email, errors = service.check_purchase(
        qr,
        fields.get("quantity", ""),
        fields.get("customer_name", ""),
        fields.get("customer_email", ""),
        settings,
    )
    if errors:
        most = service.max_quantity(qr, settings)
        errors = {
            name: translate(language, FORM_ERRORS[key], max=most) for name, key in errors.items()
        }
        kept = {k: fields.get(k, "")[:255] for k in ("quantity", "customer_name", "customer_email")}
        return _product_page(
            request, runtime, qr, merchant, accent, language, errors=errors, kept=kept, status=400
        )
    purchase = service.Purchase(quantity, name, email, language)
    try:
        token = await run_in_threadpool(_start, runtime, qr_id, purchase, client_ip(request))
    except ReusableQrDisabled:
        return _product_page(request, runtime, qr, merchant, accent, language)
    except MobipError as error:
        return render_error(request, settings, error, language, None)
    return RedirectResponse(f"/pay/{token}", 303)


def _start(runtime: Runtime, qr_id: str, purchase: service.Purchase, ip: str) -> str:
    """The client's start counted (checkout's per-client limit) and the transaction made, in
    one unit of work."""

    def work(session: Session) -> str:
        checkout.count_start(session, runtime, ip)
        return service.start_payment(session, qr_id, purchase, runtime.settings, runtime.clock)

    return runtime.database.run(work)


# --- photos and the QR image ---------------------------------------------------------------------


async def photo(request: Request) -> Response:
    """GET /p/photos/{key}: a stored photo, by its content hash."""
    runtime: Runtime = request.app.state.runtime
    key = request.path_params["key"]
    data = await run_in_threadpool(photo_store(runtime).get, key) if is_key(key) else None
    if data is None:
        return PlainTextResponse("Not found", 404)
    # X-Content-Type-Options: nosniff comes with every response under /p (SecurityHeaders).
    return Response(data, 200, {"Cache-Control": PHOTO_CACHE_CONTROL}, content_type(key))


async def qr_image(request: Request) -> Response:
    """GET /qr/{qr_id}: the product page's link as a PNG (default), SVG, or a printable PDF
    poster (``?format=pdf&paper=A4|A6``); ``size`` pixels per module for PNG and SVG."""
    runtime: Runtime = request.app.state.runtime
    fmt = request.query_params.get("format", "png").lower()
    if fmt not in ("png", "svg", "pdf"):
        return PlainTextResponse("format must be png, svg or pdf", 400)
    raw_size = request.query_params.get("size", str(DEFAULT_SCALE))
    if not raw_size.isdigit() or not MIN_SCALE <= int(raw_size) <= MAX_SCALE:
        return PlainTextResponse(f"size must be {MIN_SCALE}..{MAX_SCALE} (pixels per module)", 400)
    paper = request.query_params.get("paper", "A4").upper()
    if paper not in poster.PAPERS:
        return PlainTextResponse("paper must be A4 or A6", 400)
    qr_id = request.path_params["qr_id"]
    try:
        qr, merchant, _ = await run_in_threadpool(_loaded, runtime, qr_id)
    except ReusableQrNotFound:
        return PlainTextResponse("Not found", 404)
    url = service.page_url(runtime.settings, qr.qr_id)
    if fmt == "pdf":
        language = page_language(request, qr, request.query_params.get("lang"))
        document = await run_in_threadpool(
            poster.render, qr, merchant.name, url, photo_store(runtime), paper, language
        )
        # The poster shows the price and name, which may change: not cached for long.
        return Response(
            document,
            200,
            {
                "Cache-Control": "no-cache",
                "Content-Disposition": f'inline; filename="{qr.qr_id}.pdf"',
                "X-Content-Type-Options": "nosniff",
            },
            "application/pdf",
        )
    headers = {"Cache-Control": CACHE_CONTROL}
    if fmt == "svg":
        return Response(render_svg(url, scale=int(raw_size)), 200, headers, "image/svg+xml")
    return Response(render_png(url, scale=int(raw_size)), 200, headers, "image/png")
