"""Stripe with the merchant's own keys: a Checkout Session per payment, confirmed on the
customer's return and by Stripe's webhook (signature checked by the official library).

Events are only hints: the session they name is read again from Stripe's API, so a stale or
replayed event body cannot claim more than Stripe itself says.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import stripe
from stripe._base_address import BaseAddresses

from mobip.checkout.providers.base import (
    Outcome,
    Payment,
    PaymentProvider,
    ProviderError,
    ProviderRefund,
    Refund,
    RefundNotice,
    Result,
    Start,
    WebhookEvent,
    WebhookRejected,
    url_origin,
)
from mobip.config import Settings

# Where Stripe's Checkout Sessions are paid (a test server's own origin when it stands in for
# Stripe's API).
CHECKOUT_ORIGIN = "https://checkout.stripe.com"
# The events the webhook endpoint MOBIP registers subscribes to.
SESSION_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)
# Refunds made in Stripe's dashboard (or ours, confirmed): recorded once, by Stripe's refund id.
REFUND_EVENTS = ("charge.refunded", "refund.created", "refund.updated")
_EXPAND = ["payment_intent.latest_charge"]
_TIMEOUT_SECONDS = 20
_http_client: stripe.HTTPClient | None = None
_http_client_lock = threading.Lock()


def _shared_http_client() -> stripe.HTTPClient:
    # The HTTP client holds no key (keys go with each request): one per process is enough.
    global _http_client
    with _http_client_lock:
        if _http_client is None:
            _http_client = stripe.RequestsClient(timeout=_TIMEOUT_SECONDS)
        return _http_client


def _get(obj: Any, *path: str) -> Any:
    """A nested field of a Stripe answer (None past an id string where Stripe did not expand)."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


class StripeProvider(PaymentProvider):
    name: ClassVar[str] = "stripe"
    label: ClassVar[str] = "Stripe"
    needs_secret_key: ClassVar[bool] = True
    registers_webhooks: ClassVar[bool] = True

    def __init__(self, secret_key: str, *, api_base: str | None = None) -> None:
        bases: BaseAddresses = {"api": api_base} if api_base else {}
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=bases,
            http_client=_shared_http_client(),
            max_network_retries=1,
        )
        self._secret_key = secret_key

    @classmethod
    def for_merchant(cls, secret_key: str | None, settings: Settings) -> StripeProvider:
        if secret_key is None:
            raise ValueError("Stripe needs the merchant's secret key")
        return cls(secret_key, api_base=settings.stripe_api_base)

    @classmethod
    def payment_page_origin(cls, settings: Settings) -> str | None:
        api_base = settings.stripe_api_base
        return (url_origin(api_base) if api_base else None) or CHECKOUT_ORIGIN

    def start(self, payment: Payment, *, open_reference: str | None = None) -> Start:
        if open_reference:
            # A second tab, or a customer coming back: resume the session still open, so that
            # one transaction has one payable session at a time.
            resumed = self._open_session(open_reference)
            if resumed is not None:
                return resumed
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": payment.trid,
            "metadata": {"trid": payment.trid},
            "locale": payment.language.lower(),
            "success_url": payment.return_url + "?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": payment.cancel_url,
            "payment_intent_data": {"metadata": {"trid": payment.trid}},
            "line_items": [self._line(payment.item_name, payment.item_amount, payment.currency)],
        }
        if payment.tax_amount:
            tax_label = "Taxes" if payment.language == "FR" else "Tax"
            params["line_items"].append(self._line(tax_label, payment.tax_amount, payment.currency))
        if payment.customer_email:
            params["customer_email"] = payment.customer_email
        session = self._call(self._client.v1.checkout.sessions.create, params=params)
        url = _get(session, "url")
        if not url:
            raise ProviderError("Stripe returned a Checkout Session without a URL")
        return Start(redirect_url=url, reference=session["id"])

    def _open_session(self, session_id: str) -> Start | None:
        try:
            session = self._call(self._client.v1.checkout.sessions.retrieve, session_id)
        except ProviderError:
            return None  # gone or unreadable: a new session is created instead
        if _get(session, "status") == "open" and _get(session, "url"):
            return Start(redirect_url=session["url"], reference=session["id"])
        return None

    @staticmethod
    def _line(name: str, amount: int, currency: str) -> dict[str, Any]:
        return {
            "quantity": 1,
            "price_data": {
                "currency": currency.lower(),
                "unit_amount": amount,
                "product_data": {"name": name},
            },
        }

    def confirm_return(self, payment: Payment, params: Mapping[str, str]) -> Outcome:
        session_id = params.get("session_id", "")
        if not session_id.startswith("cs_") or len(session_id) > 255:
            return Outcome(result=Result.PENDING)
        outcome = self.session_outcome(session_id)
        if outcome.trid != payment.trid:
            # A session of another transaction (or another merchant's): not this payment.
            return Outcome(result=Result.PENDING)
        return outcome

    def session_outcome(self, session_id: str) -> Outcome:
        """What Stripe says now about a Checkout Session."""
        session = self._call(
            self._client.v1.checkout.sessions.retrieve, session_id, params={"expand": _EXPAND}
        )
        card = _get(session, "payment_intent", "latest_charge", "payment_method_details", "card")
        paid = _get(session, "payment_status") in ("paid", "no_payment_required")
        result = Result.PAID if paid else Result.PENDING
        return Outcome(
            result=result,
            reason=None if paid else _get(session, "status"),
            card_brand=_get(card, "brand"),
            card_last4=_get(card, "last4"),
            reference=session["id"],
            trid=_get(session, "client_reference_id"),
            amount=_get(session, "amount_total"),
            currency=(_get(session, "currency") or "").upper() or None,
        )

    def handle_webhook(
        self, payload: bytes, headers: Mapping[str, str], secret: str
    ) -> WebhookEvent:
        try:
            event = stripe.Webhook.construct_event(
                payload.decode("utf-8"),
                headers.get("stripe-signature"),
                secret,
                api_key=self._secret_key,
            )
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise WebhookRejected(f"invalid Stripe webhook: {type(exc).__name__}") from exc
        data = event.to_dict()
        event_type = str(data["type"])
        obj = _get(data, "data", "object")
        outcome: Outcome | None = None
        if event_type in SESSION_EVENTS and _get(obj, "object") == "checkout.session":
            if event_type == "checkout.session.async_payment_failed":
                outcome = Outcome(
                    result=Result.DECLINED,
                    reason="payment_failed",
                    reference=obj["id"],
                    trid=_get(obj, "client_reference_id"),
                )
            else:
                outcome = self.session_outcome(obj["id"])
        refunds = None
        if event_type in REFUND_EVENTS and _get(obj, "object") in ("charge", "refund"):
            refunds = self._refund_notice(obj)
        return WebhookEvent(id=str(data["id"]), type=event_type, outcome=outcome, refunds=refunds)

    def refund(
        self,
        reference: str | None,
        amount: int,
        *,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Refund:
        if amount <= 0:
            raise ValueError("a refund is of a positive amount")
        if not reference:
            raise ProviderError("no Stripe Checkout Session is recorded for this payment")
        payment_intent = self._payment_intent_of(reference)
        params: dict[str, Any] = {"payment_intent": payment_intent, "amount": amount}
        if metadata:
            params["metadata"] = dict(metadata)
        refund = self._call(
            self._client.v1.refunds.create,
            params=params,
            options={"idempotency_key": idempotency_key or f"mobip-refund-{reference}-{amount}"},
        )
        return Refund(reference=refund["id"], status=str(refund["status"]))

    def _payment_intent_of(self, session_id: str) -> str:
        session = self._call(self._client.v1.checkout.sessions.retrieve, session_id)
        payment_intent = _get(session, "payment_intent")
        if not isinstance(payment_intent, str):
            payment_intent = _get(payment_intent, "id")
        if not payment_intent:
            raise ProviderError("this Checkout Session has no payment to refund")
        return str(payment_intent)

    def refunds_of_payment(self, reference: str) -> list[ProviderRefund]:
        payment_intent = self._payment_intent_of(reference)
        listed = self._call(
            self._client.v1.refunds.list, params={"payment_intent": payment_intent, "limit": 100}
        )
        return [
            ProviderRefund(
                reference=str(item["id"]),
                amount=int(item["amount"]),
                status=str(item["status"]),
                refund_id=_get(item, "metadata", "mobip_refund_id"),
            )
            for item in listed.get("data") or []
        ]

    def _refund_notice(self, obj: Any) -> RefundNotice | None:
        """charge.refunded (a charge) or refund.* (a refund): the PaymentIntent they concern and
        its trid, read from Stripe's API (the event's body is only a hint)."""
        payment_intent = _get(obj, "payment_intent")
        if not isinstance(payment_intent, str) or not payment_intent:
            return None
        intent = self._call(self._client.v1.payment_intents.retrieve, payment_intent)
        return RefundNotice(payment=payment_intent, trid=_get(intent, "metadata", "trid"))

    def register_webhook(self, url: str) -> tuple[str, str]:
        """Create MOBIP's webhook endpoint on the merchant's Stripe account: (id, secret)."""
        endpoint = self._call(
            self._client.v1.webhook_endpoints.create,
            params={
                "url": url,
                "enabled_events": [*SESSION_EVENTS, *REFUND_EVENTS],
                "description": "MOBIP hosted checkout",
            },
        )
        secret = _get(endpoint, "secret")
        if not secret:
            raise ProviderError("Stripe returned a webhook endpoint without its secret")
        return str(endpoint["id"]), str(secret)

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call Stripe; the answer as plain dicts (read with ``_get``), errors as ProviderError."""
        try:
            result: stripe.StripeObject = method(*args, **kwargs)
            return result.to_dict()
        except stripe.StripeError as exc:
            # Stripe's messages name parameters, never the key; keep only the kind and code.
            code = getattr(exc, "code", None) or ""
            raise ProviderError(
                f"Stripe: {type(exc).__name__} {code} (HTTP {exc.http_status})".strip()
            ) from exc
