"""The checkout pages as HTML: templates in the customer's language, the CSRF cookie and form
token, and the security headers every response under /pay carries."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobip.checkout import csrf
from mobip.checkout.errors import (
    CheckoutNotFound,
    CsrfCheckFailed,
    ProviderMisconfigured,
    ProviderNotAvailable,
    ProviderUnreachable,
    TooManyPaymentAttempts,
)
from mobip.checkout.i18n import text, when
from mobip.checkout.providers.base import PaymentProvider, Result
from mobip.checkout.views import CONTINUE_AFTER_SECONDS, PageState, PageView
from mobip.config import Settings
from mobip.kit.errors import MobipError
from mobip.kit.i18n import LANGUAGES, N_, money, translate, translations

_UNAVAILABLE = N_("This merchant cannot take payments at the moment. Please try again later.")
# Error pages: error class → (title, text); TooManyPaymentAttempts' text counts the minutes.
ERROR_TEXTS: dict[type[MobipError], tuple[str, str]] = {
    CheckoutNotFound: (
        N_("Payment not found"),
        N_("This payment link is not valid. Check the link you received."),
    ),
    CsrfCheckFailed: (
        N_("Page expired"),
        N_(
            "This form is no longer valid (cookies may be blocked). Nothing was charged. "
            "Open the payment page again."
        ),
    ),
    TooManyPaymentAttempts: (N_("Too many attempts"), ""),
    ProviderNotAvailable: (N_("Payment unavailable"), _UNAVAILABLE),
    ProviderMisconfigured: (N_("Payment unavailable"), _UNAVAILABLE),
    ProviderUnreachable: (
        N_("Payment unavailable"),
        N_(
            "The payment provider could not be reached. No payment was taken. "
            "Please try again in a few minutes."
        ),
    ),
}
_COLOUR = re.compile(r"#[0-9a-f]{6}")
OTHER_ERROR = (
    N_("Payment error"),
    N_("The payment provider reported an error. No payment was taken. Contact the merchant."),
)


@cache
def templates(language: str) -> Environment:
    """The page templates with ``language``'s translations (Jinja2's i18n extension)."""
    return page_environment(language, PackageLoader("mobip.checkout", "templates"))


def page_environment(language: str, loader: BaseLoader) -> Environment:
    """Jinja2 as the hosted pages use it (HTML escaped, an undefined name an error, the
    language's gettext catalog), on ``loader``'s templates: the product pages extend ours."""
    environment = Environment(
        loader=loader,
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_translations(  # type: ignore[attr-defined]
        translations(language), newstyle=True
    )
    return environment


class SecurityHeaders:
    """Strict CSP (our own CSS and script only), no framing, no referrer, no sniffing."""

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


def content_security_policy(*form_origins: str, style_hashes: tuple[str, ...] = ()) -> str:
    """Our own CSS and script only (no inline script), no framing; forms post to us (and the
    start of a redirect payment ends on the provider's page, so its origin is named). A page's
    one inline style, the merchant's accent colour, is allowed by its hash."""
    allowed = " ".join(["'self'", *sorted(set(form_origins))])
    styles = " ".join(["'self'", *(f"'sha256-{digest}'" for digest in style_hashes)])
    return (
        f"default-src 'none'; style-src {styles}; img-src 'self'; script-src 'self'; "
        f"form-action {allowed}; frame-ancestors 'none'; base-uri 'none'"
    )


def accent_css(colour: str | None) -> str | None:
    """The stylesheet that gives a page the merchant's accent colour (``#rrggbb``, validated by
    accounts), written in the page's head; None for the default colour of checkout.css."""
    if colour is None or _COLOUR.fullmatch(colour) is None:
        return None
    return f":root{{--accent:{colour}}}"


def css_hash(css: str) -> str:
    """The CSP hash (base64 SHA-256) of an inline style element's exact text."""
    return base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()


def is_https(settings: Settings) -> bool:
    """Whether the pages are served over https (HSTS, and the CSRF cookie marked Secure)."""
    return settings.resolved_base_url.startswith("https://")


def render(
    request: Request,
    settings: Settings,
    template: str,
    language: str,
    status: int,
    token: str | None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """``template`` in ``language``; a page of a checkout link (``token``) carries the CSRF form
    token, and sets the CSRF cookie when the browser has none."""
    cookie = request.cookies.get(csrf.COOKIE)
    new_cookie = None if csrf.valid_cookie(cookie) else csrf.new_cookie_value()
    cookie_value = cookie if new_cookie is None else new_cookie
    assert cookie_value is not None

    def keyed(key: str) -> str:
        return text(language, key)

    secret_key = settings.resolved_secret_key
    html = (
        templates(language)
        .get_template(template)
        .render(
            text=keyed,
            language=language,
            languages=LANGUAGES,
            token=token,
            csrf_token=csrf.form_token(secret_key, cookie_value, token) if token else "",
            **context,
        )
    )
    return page_reply(
        html,
        status,
        settings,
        new_cookie=new_cookie if token is not None else None,
        cookie_path="/pay",
        headers=headers,
    )


def page_reply(
    html: str,
    status: int,
    settings: Settings,
    *,
    new_cookie: str | None,
    cookie_path: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A hosted page's HTML reply (the checkout's, a product page's, the customer portal's):
    never cached, with the anti-forgery cookie on ``cookie_path`` when a new one was made."""
    response = HTMLResponse(html, status, headers={"Cache-Control": "no-store", **(headers or {})})
    if new_cookie is not None:
        response.set_cookie(
            csrf.COOKIE,
            new_cookie,
            path=cookie_path,
            httponly=True,
            samesite="lax",
            secure=is_https(settings),
        )
    return response


def render_page(request: Request, settings: Settings, page: PageView) -> Response:
    """A checkout link's page: the payment form, or the state the transaction reached."""
    transaction = page.transaction
    lang = page.language
    token = transaction.checkout_token
    template = "pay.html" if page.state is PageState.PAYABLE else "state.html"
    # A card form ends on our confirmation page; starting a redirect payment, on the provider's.
    provider_origin = page.provider.payment_page_origin(settings) if page.provider else None
    form_origins = [provider_origin] if provider_origin else []
    accent = accent_css(page.branding.accent_colour)
    csp = content_security_policy(*form_origins, style_hashes=(css_hash(accent),) if accent else ())
    logo_version = page.branding.logo_version
    return render(
        request,
        settings,
        template,
        lang,
        page.status_code,
        token,
        headers={"Content-Security-Policy": csp},
        page=page,
        merchant_name=page.merchant.name,
        accent_css=accent,
        logo_url=f"/pay/{token}/logo?{urlencode({'v': logo_version})}" if logo_version else None,
        test_mode=page.test_mode,
        continue_after=CONTINUE_AFTER_SECONDS,
        item_name=transaction.item_name,
        item=money(transaction.item_amount, transaction.currency, lang),
        tax=money(transaction.tax_amount, transaction.currency, lang),
        total=money(transaction.total_amount, transaction.currency, lang),
        date=_date_shown(page),
        test_cards=test_cards_shown(page.provider) if page.provider else [],
    )


def render_error(
    request: Request,
    settings: Settings,
    error: MobipError,
    language: str,
    token: str | None,
    *,
    test_mode: bool = False,
) -> Response:
    """The page of a refused request (not found, CSRF, throttled, provider unavailable…);
    ``test_mode``: the link's payments are tests (the TEST MODE mark of its other pages)."""
    title, message = error_texts(error, language)
    return render(
        request,
        settings,
        "message.html",
        language,
        error.http_status,
        token if not isinstance(error, CheckoutNotFound) else None,
        headers=error.headers,
        accent_css=None,
        title=title,
        message=message,
        code=error.return_code,
        test_mode=test_mode,
    )


def error_texts(error: MobipError, language: str) -> tuple[str, str]:
    """The title and the text of ``error``'s page in ``language``."""
    title, message = ERROR_TEXTS.get(type(error), OTHER_ERROR)
    if isinstance(error, TooManyPaymentAttempts):
        minutes = max(1, -(-error.retry_after_seconds // 60))
        text = translations(language).ngettext(
            "Too many payment attempts. Please wait %(num)d minute and try again.",
            "Too many payment attempts. Please wait %(num)d minutes and try again.",
            minutes,
        )
        return translate(language, title), text % {"num": minutes}
    return translate(language, title), translate(language, message)


@cache
def test_cards_shown(provider: type[PaymentProvider]) -> list[tuple[str, str]]:
    """A test provider's cards as its page lists them: (spaced number, message key)."""
    return [
        (_spaced(number), _test_card_text(result, reason))
        for number, (result, reason) in provider.test_cards.items()
    ]


def _date_shown(page: PageView) -> str | None:
    """The date a state page states (when it was paid, when it expired); formatted only then."""
    transaction = page.transaction
    if page.state is PageState.PAID:
        return when(transaction.status_changed_at, page.language)
    if page.state is PageState.EXPIRED:
        return when(transaction.expires_at, page.language)
    return None


def _spaced(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def _test_card_text(result: Result, reason: str | None) -> str:
    if result is Result.PAID:
        return "test_card_paid"
    if result is Result.ERROR:
        return "test_card_error"
    return "test_card_funds" if reason == "insufficient_funds" else "test_card_declined"
