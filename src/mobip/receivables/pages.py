"""The customer portal of imported invoices: GET and POST /portal/{token}, its logo and assets.

A customer of an external source opens their private link (service.portal_url) and sees their
open invoices, ticks the ones to pay and presses Pay: service.pay_on_portal makes one transaction
for them and the customer goes on to its hosted checkout. The page has the checkout's look,
headers, CSP and CSRF protection (checkout's base template, stylesheet, SecurityHeaders and
csrf), the merchant's logo and accent colour, and the checkout's limit on payments started per
client (checkout.hosted). Decisions are in docs/portal.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from babel.dates import format_date
from jinja2 import ChoiceLoader, Environment, PackageLoader
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mobip.accounts import service as accounts
from mobip.api.envelope import client_ip, read_body
from mobip.checkout import csrf
from mobip.checkout import service as checkout
from mobip.checkout.hosted import moves_no_money
from mobip.checkout.logo import logo_reply
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
from mobip.kit.errors import InvalidField, MobipError
from mobip.kit.i18n import LANGUAGES, LOCALES, N_, language_of, money, translate
from mobip.kit.runtime import Runtime
from mobip.receivables import service
from mobip.receivables.models import InvoiceStatus

STATIC_DIR = Path(__file__).parent / "static"
COOKIE_PATH = "/portal"
# An invoice id is at most 64 characters: room for a few hundred ticked invoices.
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 1_000
# Ticked when the page opens: what is owed now (a not-yet-due invoice waits to be chosen).
TICKED = frozenset({InvoiceStatus.DUE, InvoiceStatus.PARTIALLY_PAID})
STATUS_TEXTS = {
    InvoiceStatus.PENDING: N_("Not yet due"),
    InvoiceStatus.DUE: N_("To pay"),
    InvoiceStatus.PARTIALLY_PAID: N_("Partly paid"),
}
NOTHING_TICKED = N_("Tick at least one invoice to pay.")
NOT_PAYABLE = N_(
    "These invoices cannot be paid together now: one may have been paid or changed meanwhile, "
    "or there are too many for one payment. Check the list, or tick fewer invoices."
)
NOT_FOUND = (
    N_("Page not found"),
    N_("This link is not valid. Check the link you received or ask the merchant."),
)


def build_routes(runtime: Runtime) -> list[BaseRoute]:
    """/portal/static/…, /portal/{token} (GET, POST) and /portal/{token}/logo."""
    headers = Middleware(SecurityHeaders, https=is_https(runtime.settings))
    return [
        Mount(
            COOKIE_PATH,
            routes=[
                Mount("/static", StaticFiles(directory=STATIC_DIR), name="portal-static"),
                Route("/{token}", page, methods=["GET", "HEAD"]),
                Route("/{token}", pay, methods=["POST"]),
                Route("/{token}/logo", logo, methods=["GET", "HEAD"]),
            ],
            middleware=[headers],
        ),
    ]


@cache
def templates(language: str) -> Environment:
    """Our templates, extending the checkout's base page, with ``language``'s translations."""
    return page_environment(
        language,
        ChoiceLoader(
            [
                PackageLoader("mobip.receivables", "templates"),
                PackageLoader("mobip.checkout", "templates"),
            ]
        ),
    )


# --- what the page shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Portal:
    """A customer's invoices and what the page needs of their merchant."""

    view: service.PortalView
    provider: str  # the merchant's payment provider (the TEST MODE mark)
    accent: str | None
    logo_version: str | None


@dataclass(frozen=True)
class InvoiceShown:
    """An invoice as a line of the page: its values written out in the page's language."""

    inv_id: str
    label: str | None
    status: str | None  # open: "Due", "Not yet due", "Partly paid"
    due: str | None  # the due date, written out
    remaining: int  # minor units (the page's script adds the ticked ones up)
    remaining_text: str
    amount_text: str
    paid_text: str | None  # what was paid of a partly paid invoice
    paid_on: str | None  # a paid invoice's date
    ticked: bool


def _load(runtime: Runtime, token: str) -> Portal | None:
    def read(session: Session) -> Portal | None:
        view = service.portal_view(session, token, runtime.settings, runtime.clock)
        if view is None:
            return None
        merchant = accounts.by_uid(session, view.merchant_uid)
        if merchant is None:
            return None
        branding = accounts.get_branding(session, merchant.id)
        return Portal(view, merchant.provider, branding.accent_colour, branding.logo_version)

    return runtime.database.run(read, immediate=False)


def _day(value: date, language: str) -> str:
    return format_date(value, "medium", locale=LOCALES[language])


def _paid_day(moment: datetime, settings: Settings, language: str) -> str:
    """The day a payment settled an invoice, in the server's time zone (MOBIP_TIMEZONE)."""
    return _day(moment.astimezone(settings.zone).date(), language)


def invoices_shown(
    view: service.PortalView,
    settings: Settings,
    language: str,
    chosen: frozenset[str] | None = None,
) -> tuple[list[InvoiceShown], list[InvoiceShown]]:
    """The open invoices (ticked: ``chosen``, else the ones owed now) and the paid ones."""
    open_lines: list[InvoiceShown] = []
    paid_lines: list[InvoiceShown] = []
    currency = view.currency
    for invoice in view.invoices:
        status = InvoiceStatus(invoice.mobip_status)
        is_open = invoice.remaining > 0 and status != InvoiceStatus.FULLY_PAID
        line = InvoiceShown(
            inv_id=invoice.inv_id,
            label=invoice.label,
            status=translate(language, STATUS_TEXTS[status]) if status in STATUS_TEXTS else None,
            due=_day(invoice.due_date, language) if invoice.due_date else None,
            remaining=invoice.remaining,
            remaining_text=money(invoice.remaining, currency, language),
            amount_text=money(invoice.amount, currency, language),
            paid_text=(
                money(invoice.paid_amount, currency, language) if invoice.paid_amount else None
            ),
            paid_on=(
                _paid_day(invoice.paid_at, settings, language)
                if invoice.paid_at and not is_open
                else None
            ),
            ticked=(invoice.inv_id in chosen) if chosen is not None else status in TICKED,
        )
        (open_lines if is_open else paid_lines).append(line)
    return open_lines, paid_lines


def page_language(portal: Portal | None, asked: str | None) -> str:
    """``?lang=`` / the form's, else the merchant's language (EN when neither says)."""
    if asked and asked.strip().upper() in LANGUAGES:
        return asked.strip().upper()
    return language_of(portal.view.language if portal else None)


def _render(
    request: Request,
    settings: Settings,
    token: str,
    portal: Portal,
    language: str,
    *,
    chosen: frozenset[str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The portal page with the checkout's CSP and the CSRF cookie (path /portal) and token."""
    cookie = request.cookies.get(csrf.COOKIE)
    new_cookie = None if csrf.valid_cookie(cookie) else csrf.new_cookie_value()
    cookie_value = cookie if new_cookie is None else new_cookie
    assert cookie_value is not None
    view = portal.view
    open_lines, paid_lines = invoices_shown(view, settings, language, chosen)
    css = accent_css(portal.accent)
    logo_url = (
        f"{COOKIE_PATH}/{token}/logo?{urlencode({'v': portal.logo_version})}"
        if portal.logo_version
        else None
    )
    html = (
        templates(language)
        .get_template("portal.html")
        .render(
            language=language,
            languages=LANGUAGES,
            token=None,
            portal_token=token,
            csrf_token=csrf.form_token(settings.resolved_secret_key, cookie_value, token),
            merchant_name=view.merchant_name,
            accent_css=css,
            logo_url=logo_url,
            test_mode=moves_no_money(portal.provider),
            customer_id=view.customer_id,
            credit=money(view.credit, view.currency, language) if view.credit > 0 else None,
            open_invoices=open_lines,
            paid_invoices=paid_lines,
            total=money(
                sum(line.remaining for line in open_lines if line.ticked), view.currency, language
            ),
            currency=view.currency,
            locale=LOCALES[language].replace("_", "-"),
            error=error,
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


def _not_found(language: str) -> Response:
    """The 404 page of an unknown or forged link: it says nothing of why."""
    html = (
        templates(language)
        .get_template("portal_missing.html")
        .render(
            language=language,
            languages=LANGUAGES,
            token=None,
            accent_css=None,
            test_mode=False,
            title=translate(language, NOT_FOUND[0]),
            message=translate(language, NOT_FOUND[1]),
        )
    )
    return Response(html, 404, {"Cache-Control": "no-store"}, media_type="text/html")


async def page(request: Request) -> Response:
    """GET /portal/{token}: the customer's invoices and the form to pay some of them."""
    runtime: Runtime = request.app.state.runtime
    token = request.path_params["token"]
    asked = request.query_params.get("lang")
    portal = await run_in_threadpool(_load, runtime, token)
    if portal is None:
        return _not_found(page_language(None, asked))
    return _render(request, runtime.settings, token, portal, page_language(portal, asked))


# --- Pay ----------------------------------------------------------------------------------------


async def pay(request: Request) -> Response:
    """POST /portal/{token}: CSRF-checked and rate-limited; the ticked invoices' transaction,
    then 303 to its hosted checkout; nothing ticked (or not payable): the page again, 400."""
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    token = request.path_params["token"]
    pairs: list[tuple[str, str]] = []
    try:
        body = await read_body(request, MAX_FORM_BYTES)
        # More fields than any page of ours has: read as none (the CSRF check then refuses it).
        with contextlib.suppress(ValueError):
            pairs = parse_qsl(body.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
        fields = dict(pairs)
        csrf.check(
            settings.resolved_secret_key,
            request.cookies.get(csrf.COOKIE),
            token,
            fields.get(csrf.FIELD),
        )
    except MobipError as error:
        language = page_language(None, dict(pairs).get("lang"))
        return render_error(request, settings, error, language, None)
    portal = await run_in_threadpool(_load, runtime, token)
    if portal is None:
        return _not_found(page_language(None, fields.get("lang")))
    language = page_language(portal, fields.get("lang"))
    chosen = list(dict.fromkeys(value for name, value in pairs if name == "invoices"))
    if not chosen:
        return _render(
            request,
            settings,
            token,
            portal,
            language,
            chosen=frozenset(),
            error=translate(language, NOTHING_TICKED),
            status=400,
        )
    try:
        started = await run_in_threadpool(_start, runtime, token, chosen, client_ip(request))
    except InvalidField:
        return _render(
            request,
            settings,
            token,
            portal,
            language,
            chosen=frozenset(chosen),
            error=translate(language, NOT_PAYABLE),
            status=400,
        )
    except MobipError as error:
        return render_error(request, settings, error, language, None)
    # The checkout's path: the customer stays on the host they came by.
    return RedirectResponse(urlsplit(started).path, 303)


def _start(runtime: Runtime, token: str, chosen: list[str], ip: str) -> str:
    """The client's start counted (checkout's per-client limit) and the transaction made, in
    one unit of work."""

    def work(session: Session) -> str:
        checkout.count_start(session, runtime, ip)
        return service.pay_on_portal(session, token, chosen, runtime.settings, runtime.clock)

    return runtime.database.run(work)


# --- the merchant's logo ------------------------------------------------------------------------


async def logo(request: Request) -> Response:
    """GET /portal/{token}/logo?v=…: the logo of the link's merchant (checkout.logo's reply)."""
    runtime: Runtime = request.app.state.runtime
    found = await run_in_threadpool(_logo, runtime, request.path_params["token"])
    return logo_reply(request, found)


def _logo(runtime: Runtime, token: str) -> tuple[str, bytes] | None:
    def read(session: Session) -> tuple[str, bytes] | None:
        view = service.portal_view(session, token, runtime.settings, runtime.clock)
        merchant = accounts.by_uid(session, view.merchant_uid) if view else None
        return accounts.get_logo(session, merchant.id) if merchant else None

    return runtime.database.run(read, immediate=False)
