"""Providers' webhooks: POST /webhooks/{provider}/{account_uid}, and the registration of MOBIP's
webhook endpoint on a merchant's provider account (at the first payment through it).

A webhook address speaks for one merchant: its signing secret is that merchant's, and the
events it carries apply to that merchant's transactions only. Events are applied once
(de-duplicated by id) through the same outcomes as the customer's return.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mobip.accounts import service as accounts_service
from mobip.accounts.models import Account
from mobip.api.envelope import read_body
from mobip.api.routing import error_response
from mobip.checkout import refunds, repository
from mobip.checkout.errors import (
    InvalidWebhook,
    ProviderNotAvailable,
    ProviderUnreachable,
    WebhookAccountNotFound,
)
from mobip.checkout.outcomes import apply_outcome
from mobip.checkout.providers.base import (
    PaymentProvider,
    ProviderError,
    ProviderRefund,
    WebhookEvent,
    WebhookRejected,
)
from mobip.checkout.providers.registry import decrypt_secret, provider_for
from mobip.kit.errors import MobipError
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 256 * 1024


@dataclass(frozen=True)
class Registration:
    """A webhook endpoint the provider created for MOBIP, with its signing secret."""

    url: str
    endpoint_id: str
    secret: str


@dataclass(frozen=True)
class WebhookPlan:
    account: Account
    provider: PaymentProvider
    secret: str


# --- the endpoint --------------------------------------------------------------------------------


async def receive(request: Request) -> Response:
    """POST /webhooks/{provider}/{account_uid}: a provider's event, answered in the envelope."""
    runtime: Runtime = request.app.state.runtime
    provider_name = request.path_params["provider"]
    account_uid = request.path_params["account_uid"]
    try:
        payload = await read_body(request, MAX_WEBHOOK_BYTES)
        headers = {k.lower(): v for k, v in request.headers.items()}
        result = await run_in_threadpool(
            _receive, runtime, provider_name, account_uid, payload, headers
        )
    except MobipError as error:
        return error_response(error, request)
    return JSONResponse({"return_code": "0", "result": result})


def _receive(
    runtime: Runtime,
    provider_name: str,
    account_uid: str,
    payload: bytes,
    headers: dict[str, str],
) -> str:
    # Read and check, ask the provider (outside any database transaction), then apply.
    plan = runtime.database.run(
        lambda session: plan_webhook(session, provider_name, account_uid, runtime),
        immediate=False,
    )
    try:
        event = plan.provider.handle_webhook(payload, headers, plan.secret)
    except WebhookRejected as exc:
        raise InvalidWebhook(f"Invalid webhook: {exc}") from exc
    except ProviderError as exc:
        raise ProviderUnreachable() from exc
    reported = _reported_refunds(runtime, plan, event)
    return runtime.database.run(
        lambda session: apply_webhook(session, plan, event, runtime, reported)
    )


def _reported_refunds(
    runtime: Runtime, plan: WebhookPlan, event: WebhookEvent
) -> list[ProviderRefund] | None:
    """For an event about refunds: the refunds of the transaction's paid payment, read from the
    provider's API (outside any database transaction); None for other events."""
    notice = event.refunds
    if notice is None or notice.trid is None:
        return None
    trid = notice.trid
    reference = runtime.database.run(
        lambda session: refunds.payment_reference(session, plan.account, trid), immediate=False
    )
    if reference is None:
        return []
    try:
        # The paid payment's refunds only: an event about another payment of the same trid
        # (a duplicate payment given back) finds nothing new here.
        return plan.provider.refunds_of_payment(reference)
    except ProviderError as exc:
        raise ProviderUnreachable() from exc


# --- receiving -----------------------------------------------------------------------------------


def plan_webhook(
    session: Session, provider_name: str, account_uid: str, runtime: Runtime
) -> WebhookPlan:
    """The account a webhook address speaks for, its provider and the signing secret."""
    account = accounts_service.by_uid(session, account_uid) if len(account_uid) <= 64 else None
    if account is None or account.provider != provider_name:
        raise WebhookAccountNotFound()
    webhook = repository.get_webhook(session, account)
    if webhook is None or webhook.provider != provider_name:
        raise WebhookAccountNotFound()
    try:
        provider = provider_for(account, runtime)
    except ProviderNotAvailable as exc:
        raise WebhookAccountNotFound() from exc
    secret = decrypt_secret(account, webhook.secret_encrypted, "webhook signing secret", runtime)
    return WebhookPlan(account, provider, secret)


def apply_webhook(
    session: Session,
    plan: WebhookPlan,
    event: WebhookEvent,
    runtime: Runtime,
    reported: list[ProviderRefund] | None = None,
) -> str:
    """Apply a verified event once (de-duplicated by id); returns what was done. An event about
    refunds records the ``reported`` ones not recorded yet (each once, by the provider's id)."""
    if not repository.record_event(
        session,
        provider=plan.provider.name,
        event_id=event.id,
        event_type=event.type,
        account_id=plan.account.id,
        now=runtime.clock.now(),
    ):
        return "duplicate"
    if event.refunds is not None and event.refunds.trid is not None and reported is not None:
        recorded = refunds.record_reported(
            session, plan.account, plan.provider, event.refunds.trid, reported, runtime
        )
        return f"refunds recorded: {recorded}"
    outcome = event.outcome
    if outcome is None or outcome.trid is None:
        return "ignored"
    transaction = transactions.get_of_account(session, plan.account, outcome.trid, for_update=True)
    if transaction is None:
        return "unknown transaction"
    transactions.expire_if_due(session, transaction, runtime.clock)
    applied = apply_outcome(
        session,
        transaction,
        plan.account,
        plan.provider,
        outcome,
        f"provider:{plan.provider.name}",
        runtime,
    )
    return "applied" if applied.redirect else "recorded"


# --- registering ---------------------------------------------------------------------------------


def webhook_url(runtime: Runtime, provider: str, account: Account) -> str:
    """Where ``provider`` sends ``account``'s events (the address registered with it)."""
    return f"{runtime.settings.resolved_base_url}/webhooks/{provider}/{account.uid}"


def to_register(
    session: Session, merchant: Account, provider: PaymentProvider, runtime: Runtime
) -> str | None:
    """The URL to register on the merchant's provider account, or None when it is registered
    already (same address, same merchant key) or the provider takes no registration."""
    if not provider.registers_webhooks:
        return None
    url = webhook_url(runtime, provider.name, merchant)
    known = repository.get_webhook(session, merchant)
    if known and known.url == url and known.key_fingerprint == _key_fingerprint(merchant):
        return None
    return url


def register(provider: PaymentProvider, url: str | None) -> Registration | None:
    """Register ``url`` with the provider (a remote call: outside any database transaction);
    None when there is nothing to register or the provider refused."""
    if url is None:
        return None
    try:
        endpoint_id, secret = provider.register_webhook(url)
    except ProviderError as exc:
        # Payments are still confirmed when the customer returns; only the webhook is lost.
        log.warning(
            "could not register the %s webhook",
            provider.label,
            extra={"fields": {"error": str(exc)}},
        )
        return None
    return Registration(url=url, endpoint_id=endpoint_id, secret=secret)


def save(session: Session, merchant: Account, registration: Registration, runtime: Runtime) -> None:
    """Keep a registered webhook, its secret encrypted, with the key it was registered with."""
    repository.save_webhook(
        session,
        merchant,
        provider=merchant.provider,
        endpoint_id=registration.endpoint_id,
        url=registration.url,
        secret_encrypted=runtime.encryptor.encrypt(registration.secret),
        key_fingerprint=_key_fingerprint(merchant),
        now=runtime.clock.now(),
    )


def _key_fingerprint(merchant: Account) -> str:
    return hashlib.sha256((merchant.provider_private_key_encrypted or "").encode()).hexdigest()
