"""The hosted payment pages: GET and POST /pay/{checkout_token}, POST /pay/{token}/start,
GET /pay/{token}/return.

Pages are HTML in the customer's language (``rendering.py``). Each handler runs its database
work in a thread, in short units of work (``Database.run``: committed on success, rolled back on
error, retried while SQLite is busy); a provider's remote call (Stripe) runs between them, never
inside one. The runtime is the app's (``request.app.state.runtime``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mobip.api.envelope import client_ip, read_body
from mobip.checkout import csrf, service, webhooks
from mobip.checkout.errors import CardFormInvalid, CheckoutNotFound, ProviderUnreachable
from mobip.checkout.providers.base import ProviderError
from mobip.checkout.rendering import render_error, render_page
from mobip.checkout.views import (
    Applied,
    PageView,
    is_checkout_token,
    is_test_checkout,
    open_page,
)
from mobip.kit.errors import MobipError
from mobip.kit.i18n import language_of
from mobip.kit.runtime import Runtime

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024

# The work behind a posted form, run in a thread: (runtime, checkout token, form fields,
# client address) → what to answer.
FormWork = Callable[[Runtime, str, dict[str, str], str], Applied]


# --- handlers ------------------------------------------------------------------------------------


async def page(request: Request) -> Response:
    """GET /pay/{token}: the page of a checkout link (``?lang=``, ``?notice=not_completed``,
    ``?paid=1``: the confirmation page right after paying)."""
    runtime: Runtime = request.app.state.runtime
    token = request.path_params["token"]
    lang = request.query_params.get("lang")
    notice = request.query_params.get("notice")
    just_paid = request.query_params.get("paid") == "1"
    if (refused := _not_ours(request, runtime, token, lang)) is not None:
        return refused

    def work() -> PageView:
        # Opening a page may write (a lazy expiry): retried while SQLite is busy.
        return runtime.database.run(
            lambda session: open_page(
                session, token, runtime, language=lang, notice=notice, just_paid=just_paid
            ),
            immediate=False,
        )

    try:
        return render_page(request, runtime.settings, await run_in_threadpool(work))
    except MobipError as error:
        return await _error_page(request, runtime, error, language_of(lang), token)


async def pay(request: Request) -> Response:
    """POST /pay/{token}: the card form of a card-form provider (the sandbox)."""
    return await _submit(request, _pay_with_card)


async def start(request: Request) -> Response:
    """POST /pay/{token}/start: off to a redirect provider's payment page (Stripe)."""
    return await _submit(request, _start_payment)


async def provider_return(request: Request) -> Response:
    """GET /pay/{token}/return: the customer back from the provider's page."""
    runtime: Runtime = request.app.state.runtime
    token = request.path_params["token"]
    lang = request.query_params.get("lang")
    if (refused := _not_ours(request, runtime, token, lang)) is not None:
        return refused
    params = dict(request.query_params)
    ip = client_ip(request)
    try:
        applied = await run_in_threadpool(_confirm_return, runtime, token, params, ip, lang)
    except MobipError as error:
        return await _error_page(request, runtime, error, language_of(lang), token)
    return _finish(request, runtime, applied)


# --- the work behind them (in a thread) ----------------------------------------------------------


def _pay_with_card(runtime: Runtime, token: str, fields: dict[str, str], ip: str) -> Applied:
    try:
        return runtime.database.run(
            lambda session: service.pay_with_card(session, token, fields, ip, runtime)
        )
    except CardFormInvalid as error:
        # A form error records nothing (its unit of work was rolled back): the form again.
        form_again = partial(
            service.form_errors_page, token=token, form=fields, error=error, runtime=runtime
        )
        return Applied(page=runtime.database.run(form_again))


def _start_payment(runtime: Runtime, token: str, fields: dict[str, str], ip: str) -> Applied:
    plan = runtime.database.run(
        lambda session: service.plan_start(
            session, token, ip, runtime, language=fields.get("lang")
        ),
        immediate=False,
    )
    if isinstance(plan, PageView):
        return Applied(page=plan)
    try:
        started = plan.provider.start(plan.payment, open_reference=plan.open_reference)
    except ProviderError as exc:
        log.warning("payment provider unreachable", extra={"fields": {"error": str(exc)}})
        runtime.database.run(
            lambda session: service.record_provider_failure(
                session, token, plan.provider.name, plan.client_key, runtime
            )
        )
        raise ProviderUnreachable() from exc
    registration = webhooks.register(plan.provider, plan.register_webhook_at)
    runtime.database.run(
        lambda session: service.record_start(session, token, plan, started, registration, runtime)
    )
    # A card-form provider has no page of its own: its form is on ours.
    return Applied(redirect=started.redirect_url or f"/pay/{token}")


def _confirm_return(
    runtime: Runtime, token: str, params: dict[str, str], ip: str, lang: str | None
) -> Applied:
    plan = runtime.database.run(
        lambda session: service.plan_return(session, token, runtime, language=lang),
        immediate=False,
    )
    if isinstance(plan, PageView):
        return Applied(page=plan)
    provider, payment = plan
    try:
        outcome = provider.confirm_return(payment, params)
    except ProviderError as exc:
        log.warning("payment provider unreachable", extra={"fields": {"error": str(exc)}})
        raise ProviderUnreachable() from exc
    return runtime.database.run(
        lambda session: service.apply_return(
            session, token, provider, outcome, ip, runtime, language=lang
        )
    )


# --- shared steps --------------------------------------------------------------------------------


def _not_ours(request: Request, runtime: Runtime, token: str, lang: str | None) -> Response | None:
    """The 404 page for what is not a checkout token, before any database work."""
    if is_checkout_token(token):
        return None
    return render_error(request, runtime.settings, CheckoutNotFound(), language_of(lang), None)


async def _submit(request: Request, work: FormWork) -> Response:
    """A posted checkout form: CSRF-checked, then ``work`` in a thread; errors as pages."""
    runtime: Runtime = request.app.state.runtime
    token = request.path_params["token"]
    if (refused := _not_ours(request, runtime, token, None)) is not None:
        return refused
    fields: dict[str, str] = {}
    try:
        fields = await _read_form(request, runtime, token)
        applied = await run_in_threadpool(work, runtime, token, fields, client_ip(request))
    except MobipError as error:
        lang = language_of(fields.get("lang"))
        return await _error_page(request, runtime, error, lang, token)
    return _finish(request, runtime, applied)


async def _error_page(
    request: Request, runtime: Runtime, error: MobipError, language: str, token: str
) -> Response:
    """The page of ``error`` on a checkout link; a test payment's says TEST MODE as its other
    pages do (one read; a page about a link that does not exist has no mark)."""
    test_mode = False
    if not isinstance(error, CheckoutNotFound):
        try:
            test_mode = await run_in_threadpool(
                runtime.database.run,
                lambda session: is_test_checkout(session, token),
                immediate=False,
            )
        except Exception:  # the mark is not worth turning an error page into a 500
            log.warning("no TEST MODE answer for an error page", exc_info=True)
    return render_error(request, runtime.settings, error, language, token, test_mode=test_mode)


async def _read_form(request: Request, runtime: Runtime, token: str) -> dict[str, str]:
    """The posted fields, once the CSRF check passed (a refused form's language is not read)."""
    body = await read_body(request, MAX_FORM_BYTES)
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=20))
    secret_key = runtime.settings.resolved_secret_key
    csrf.check(secret_key, request.cookies.get(csrf.COOKIE), token, fields.get(csrf.FIELD))
    return fields


def _finish(request: Request, runtime: Runtime, applied: Applied) -> Response:
    if applied.redirect is not None:
        return RedirectResponse(applied.redirect, 303)
    assert applied.page is not None
    return render_page(request, runtime.settings, applied.page)
