"""The hosted payment pages (/pay/...) and the providers' webhooks (/webhooks/...).

Pages are HTML in the customer's language; every response under /pay carries the security
headers. Each handler runs its database work in a thread, in short transactions committed here;
a provider's remote call (Stripe) runs between them, never inside one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobip.api.envelope import read_body
from mobip.api.routing import error_response
from mobip.checkout import csrf, service
from mobip.checkout.errors import (
    CardFormInvalid,
    CheckoutNotFound,
    CsrfCheckFailed,
    InvalidWebhook,
    ProviderMisconfigured,
    ProviderNotAvailable,
    ProviderUnreachable,
    TooManyPaymentAttempts,
)
from mobip.checkout.i18n import translate, when
from mobip.checkout.providers.base import ProviderError, Result, WebhookRejected
from mobip.checkout.providers.sandbox import TEST_CARDS
from mobip.checkout.providers.stripe import StripeProvider
from mobip.kit.errors import MobipError
from mobip.kit.i18n import LANGUAGES, language_of, money
from mobip.kit.runtime import Runtime
from mobip.kit.validation import stored_http_url

log = logging.getLogger(__name__)

# The work behind a posted form, run in a thread: (checkout token, form fields, client address).
FormWork = Callable[[str, dict[str, str], str], service.Applied]

STATIC_DIR = Path(__file__).parent / "static"
MAX_FORM_BYTES = 16 * 1024
MAX_WEBHOOK_BYTES = 256 * 1024
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"

_templates = Environment(
    loader=PackageLoader("mobip.checkout", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Error pages: error class → (title key, text key).
_ERROR_TEXTS: dict[type[MobipError], tuple[str, str]] = {
    CheckoutNotFound: ("not_found_title", "not_found_text"),
    CsrfCheckFailed: ("csrf_title", "csrf_text"),
    TooManyPaymentAttempts: ("throttled_title", "throttled_text"),
    ProviderNotAvailable: ("unavailable_title", "unavailable_text"),
    ProviderMisconfigured: ("unavailable_title", "unavailable_text"),
    ProviderUnreachable: ("unavailable_title", "provider_down_text"),
}


class SecurityHeaders:
    """Strict CSP (our own CSS only, no script), no framing, no referrer, no sniffing."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.default_csp = content_security_policy().encode()
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if https:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"content-security-policy" for name, _ in headers):
                    headers.append((b"content-security-policy", self.default_csp))
                message["headers"] = [*headers, *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def content_security_policy(*form_origins: str) -> str:
    """Our own CSS only, no script, no framing; forms post to us (and a page's payment forms
    may end on the merchant's site or the provider's page, so those origins are named)."""
    allowed = " ".join(["'self'", *sorted(set(form_origins))])
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {allowed}; frame-ancestors 'none'; base-uri 'none'"
    )


def _origin(url: str) -> str | None:
    """scheme://host[:port] of ``url`` in ASCII; None when it has none (a header must be ASCII,
    and a row stored before URLs were normalised may hold a host that cannot be converted)."""
    ascii_url = stored_http_url(url)
    if ascii_url is None:
        return None
    parts = urlsplit(ascii_url)
    return f"{parts.scheme}://{parts.netloc}"


def build_routes(runtime: Runtime) -> list[BaseRoute]:
    """/pay/{checkout_token} (+ /return, /start), /pay/static/*, /webhooks/stripe/{uid}."""
    settings = runtime.settings
    secret_key = settings.resolved_secret_key
    https = settings.resolved_base_url.startswith("https://")
    stripe_origin = (
        _origin(settings.stripe_api_base) if settings.stripe_api_base else None
    ) or STRIPE_CHECKOUT_ORIGIN

    # --- rendering ------------------------------------------------------------------------

    def render(
        request: Request,
        template: str,
        language: str,
        status: int,
        token: str | None,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        cookie = request.cookies.get(csrf.COOKIE)
        new_cookie = None if csrf.valid_cookie(cookie) else csrf.new_cookie_value()
        cookie_value = cookie if new_cookie is None else new_cookie
        assert cookie_value is not None

        def t(key: str, **values: object) -> str:
            return translate(language, key, **values)

        html = _templates.get_template(template).render(
            t=t,
            language=language,
            languages=LANGUAGES,
            token=token,
            csrf_token=csrf.form_token(secret_key, cookie_value, token) if token else "",
            **context,
        )
        response = HTMLResponse(
            html, status, headers={"Cache-Control": "no-store", **(headers or {})}
        )
        if new_cookie is not None and token is not None:
            response.set_cookie(
                csrf.COOKIE, new_cookie, path="/pay", httponly=True, samesite="lax", secure=https
            )
        return response

    def render_page(request: Request, page: service.PageView) -> Response:
        transaction = page.transaction
        lang = page.language
        template = "pay.html" if page.state is service.PageState.PAYABLE else "state.html"
        # A payment form ends with a redirect to the merchant (or first to the provider's page).
        merchant_origin = _origin(transaction.redirect_url)
        form_origins = [merchant_origin] if merchant_origin else []
        if page.provider == StripeProvider.name:
            form_origins.append(stripe_origin)
        return render(
            request,
            template,
            lang,
            page.status_code,
            transaction.checkout_token,
            headers={"Content-Security-Policy": content_security_policy(*form_origins)},
            page=page,
            merchant_name=page.merchant.name,
            item_name=transaction.item_name,
            item=money(transaction.item_amount, transaction.currency, lang),
            tax=money(transaction.tax_amount, transaction.currency, lang),
            total=money(transaction.total_amount, transaction.currency, lang),
            date=_date_shown(page),
            test_cards=_TEST_CARDS_SHOWN,
        )

    def render_error(
        request: Request, error: MobipError, language: str, token: str | None
    ) -> Response:
        title, text = _ERROR_TEXTS.get(type(error), ("error_title", "error_text"))
        minutes = 1
        if isinstance(error, TooManyPaymentAttempts):
            minutes = max(1, -(-error.retry_after_seconds // 60))
        return render(
            request,
            "message.html",
            language,
            error.http_status,
            token if not isinstance(error, CheckoutNotFound) else None,
            headers=error.headers,
            title_key=title,
            text_key=text,
            minutes=minutes,
            code=error.return_code,
        )

    # --- handlers -------------------------------------------------------------------------

    def not_ours(request: Request, token: str, lang: str | None) -> Response | None:
        """The 404 page for what is not a checkout token, before any database work."""
        if service.is_checkout_token(token):
            return None
        return render_error(request, CheckoutNotFound(), language_of(lang), None)

    async def page(request: Request) -> Response:
        token = request.path_params["token"]
        lang = request.query_params.get("lang")
        notice = request.query_params.get("notice")
        if (refused := not_ours(request, token, lang)) is not None:
            return refused

        def work() -> service.PageView:
            # Opening a page may write (a lazy expiry): retried while SQLite is busy.
            return runtime.database.run(
                lambda session: service.open_page(
                    session, token, runtime, language=lang, notice=notice
                ),
                immediate=False,
            )

        try:
            return render_page(request, await run_in_threadpool(work))
        except MobipError as error:
            return render_error(request, error, language_of(lang), token)

    async def read_form(request: Request, token: str) -> dict[str, str]:
        body = await read_body(request, MAX_FORM_BYTES)
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=20))
        csrf.check(secret_key, request.cookies.get(csrf.COOKIE), token, fields.get(csrf.FIELD))
        return fields

    async def submit(request: Request, work: FormWork) -> Response:
        """A posted checkout form: CSRF-checked, then ``work`` in a thread; errors as pages."""
        token = request.path_params["token"]
        if (refused := not_ours(request, token, None)) is not None:
            return refused
        fields: dict[str, str] = {}
        try:
            fields = await read_form(request, token)
            applied = await run_in_threadpool(work, token, fields, _client_ip(request))
        except MobipError as error:
            return render_error(request, error, language_of(fields.get("lang")), token)
        return finish(request, applied)

    async def pay(request: Request) -> Response:
        return await submit(request, pay_with_card)

    def pay_with_card(token: str, fields: dict[str, str], ip: str) -> service.Applied:
        with runtime.database.session(immediate=True) as session:
            try:
                applied = service.pay_with_card(session, token, fields, ip, runtime)
                session.commit()
                return applied
            except CardFormInvalid as error:
                session.rollback()  # a form error records nothing
                page = service.open_page(session, token, runtime, language=fields.get("lang"))
                session.commit()
                page.errors = error.errors
                page.kept = {
                    "expiry": fields.get("expiry", "")[:7],
                    "name_on_card": fields.get("name_on_card", "")[:100],
                }
                page.status_code = error.http_status
                return service.Applied(page=page)
            except BaseException:
                session.rollback()
                raise

    def finish(request: Request, applied: service.Applied) -> Response:
        if applied.redirect is not None:
            return RedirectResponse(applied.redirect, 303)
        assert applied.page is not None
        return render_page(request, applied.page)

    async def start(request: Request) -> Response:
        return await submit(request, start_payment)

    def start_payment(token: str, fields: dict[str, str], ip: str) -> service.Applied:
        plan = runtime.database.run(
            lambda session: service.plan_start(
                session, token, ip, runtime, language=fields.get("lang")
            ),
            immediate=False,
        )
        if isinstance(plan, service.PageView):
            return service.Applied(page=plan)
        try:
            started = plan.provider.start(plan.payment, open_reference=plan.open_reference)
        except ProviderError as exc:
            log.warning("payment provider unreachable", extra={"fields": {"error": str(exc)}})
            with runtime.database.transaction(immediate=True) as session:
                service.record_provider_failure(
                    session, token, plan.provider.name, plan.client_key, runtime
                )
            raise ProviderUnreachable() from exc
        webhook = register_webhook(plan)
        with runtime.database.transaction(immediate=True) as session:
            service.record_start(session, token, plan, started, runtime)
            if webhook is not None:
                service.save_webhook(session, token, runtime=runtime, **webhook)
        # A card-form provider has no page of its own: its form is on ours.
        return service.Applied(redirect=started.redirect_url or f"/pay/{token}")

    def register_webhook(plan: service.StartPlan) -> dict[str, str] | None:
        url = plan.register_webhook_at
        if url is None or not isinstance(plan.provider, StripeProvider):
            return None
        try:
            endpoint_id, secret = plan.provider.register_webhook(url)
        except ProviderError as exc:
            # Payments are still confirmed when the customer returns; only the webhook is lost.
            log.warning(
                "could not register the Stripe webhook", extra={"fields": {"error": str(exc)}}
            )
            return None
        return {"url": url, "endpoint_id": endpoint_id, "secret": secret}

    async def provider_return(request: Request) -> Response:
        token = request.path_params["token"]
        lang = request.query_params.get("lang")
        if (refused := not_ours(request, token, lang)) is not None:
            return refused
        params = dict(request.query_params)
        ip = _client_ip(request)
        try:
            applied = await run_in_threadpool(confirm_return, token, params, ip, lang)
        except MobipError as error:
            return render_error(request, error, language_of(lang), token)
        return finish(request, applied)

    def confirm_return(
        token: str, params: dict[str, str], ip: str, lang: str | None
    ) -> service.Applied:
        plan = runtime.database.run(
            lambda session: service.plan_return(session, token, runtime, language=lang),
            immediate=False,
        )
        if isinstance(plan, service.PageView):
            return service.Applied(page=plan)
        provider, payment = plan
        try:
            outcome = provider.confirm_return(payment, params)
        except ProviderError as exc:
            log.warning("payment provider unreachable", extra={"fields": {"error": str(exc)}})
            raise ProviderUnreachable() from exc
        with runtime.database.transaction(immediate=True) as session:
            return service.apply_return(
                session, token, provider, outcome, ip, runtime, language=lang
            )

    async def webhook(request: Request) -> Response:
        provider_name = request.path_params["provider"]
        account_uid = request.path_params["account_uid"]
        try:
            payload = await read_body(request, MAX_WEBHOOK_BYTES)
            headers = {k.lower(): v for k, v in request.headers.items()}
            result = await run_in_threadpool(
                receive_webhook, provider_name, account_uid, payload, headers
            )
        except MobipError as error:
            return error_response(error, request)
        return JSONResponse({"return_code": "0", "result": result})

    def receive_webhook(
        provider_name: str, account_uid: str, payload: bytes, headers: dict[str, str]
    ) -> str:
        plan = runtime.database.run(
            lambda session: service.plan_webhook(session, provider_name, account_uid, runtime),
            immediate=False,
        )
        try:
            event = plan.provider.handle_webhook(payload, headers, plan.secret)
        except WebhookRejected as exc:
            raise InvalidWebhook(f"Invalid webhook: {exc}") from exc
        except ProviderError as exc:
            raise ProviderUnreachable() from exc
        with runtime.database.transaction(immediate=True) as session:
            return service.apply_webhook(session, plan, event, runtime)

    pay_routes: list[BaseRoute] = [
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="checkout-static"),
        Route("/{token}", page, methods=["GET", "HEAD"]),
        Route("/{token}", pay, methods=["POST"]),
        Route("/{token}/start", start, methods=["POST"]),
        Route("/{token}/return", provider_return, methods=["GET"]),
    ]
    headers = Middleware(SecurityHeaders, https=https)
    return [
        Mount("/pay", routes=pay_routes, middleware=[headers]),
        Route("/webhooks/{provider}/{account_uid}", webhook, methods=["POST"]),
    ]


def _date_shown(page: service.PageView) -> str | None:
    """The date a state page states (when it was paid, when it expired); formatted only then."""
    transaction = page.transaction
    if page.state is service.PageState.PAID:
        return when(transaction.status_changed_at, page.language)
    if page.state is service.PageState.EXPIRED:
        return when(transaction.expires_at, page.language)
    return None


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _spaced(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def _test_card_text(result: Result, reason: str | None) -> str:
    if result is Result.PAID:
        return "test_card_paid"
    if result is Result.ERROR:
        return "test_card_error"
    return "test_card_funds" if reason == "insufficient_funds" else "test_card_declined"


# The sandbox's test cards as its page lists them: (spaced number, message key).
_TEST_CARDS_SHOWN = [
    (_spaced(number), _test_card_text(result, reason))
    for number, (result, reason) in TEST_CARDS.items()
]
