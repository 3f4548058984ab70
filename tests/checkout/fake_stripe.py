"""A local HTTP server on loopback that answers like Stripe's API for the calls MOBIP makes:
Checkout Sessions (create, retrieve with expand), refunds and webhook endpoints. It checks the
secret key like Stripe (401 otherwise), parses Stripe's form encoding (``a[b][0]=c``), and
can sign webhook events the way Stripe does (``Stripe-Signature: t=…,v1=HMAC-SHA256``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECRET_KEY = "sk_test_merchant_" + "k" * 24


def parse_stripe_form(body: str) -> dict[str, Any]:
    """``line_items[0][price_data][currency]=eur`` → nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(container)
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return root


class FakeStripe:
    def __init__(self, secret_key: str = SECRET_KEY) -> None:
        self.secret_keys = {secret_key}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.cards: dict[str, tuple[str, str]] = {}
        self.created: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []
        self.refund_keys: dict[str, dict[str, Any]] = {}
        self.webhook_endpoints: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.fail_with: int | None = None
        # API paths answered with this status only (one call failing, the others working).
        self.failing: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeStripe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what tests do on "Stripe's side" --------------------------------------------------

    def pay(
        self, session_id: str, *, brand: str = "visa", last4: str = "4242", **changes: Any
    ) -> None:
        """The customer pays on Stripe's page."""
        session = self.sessions[session_id]
        session.update(
            status="complete",
            payment_status="paid",
            payment_intent="pi_" + secrets.token_hex(8),
            **changes,
        )
        self.cards[session_id] = (brand, last4)

    def add_refund(
        self, payment_intent: str, amount: int, *, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """A refund on Stripe's side (from the API, or made in the dashboard)."""
        refund = {
            "id": "re_" + secrets.token_hex(8),
            "object": "refund",
            "status": "succeeded",
            "payment_intent": payment_intent,
            "amount": amount,
            "metadata": metadata or {},
        }
        self.refunds.append(refund)
        return refund

    def refund_event(self, event_type: str, refund: dict[str, Any]) -> bytes:
        """refund.created/updated (the refund) or charge.refunded (its charge)."""
        if event_type == "charge.refunded":
            obj: dict[str, Any] = {
                "id": "ch_" + secrets.token_hex(8),
                "object": "charge",
                "payment_intent": refund["payment_intent"],
                "refunded": True,
            }
        else:
            obj = dict(refund)
        body = {
            "id": "evt_" + secrets.token_hex(8),
            "object": "event",
            "api_version": "2025-01-01",
            "created": int(time.time()),
            "type": event_type,
            "data": {"object": obj},
        }
        return json.dumps(body).encode()

    def expire(self, session_id: str) -> None:
        self.sessions[session_id]["status"] = "expired"

    def event(self, event_type: str, session_id: str, *, event_id: str | None = None) -> bytes:
        body = {
            "id": event_id or "evt_" + secrets.token_hex(8),
            "object": "event",
            "api_version": "2025-01-01",
            "created": int(time.time()),
            "type": event_type,
            "data": {"object": dict(self.sessions[session_id])},
        }
        return json.dumps(body).encode()

    @staticmethod
    def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
        stamp = int(time.time()) if timestamp is None else timestamp
        signed = f"{stamp}.".encode() + payload
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return f"t={stamp},v1={digest}"

    # --- the API ---------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length).decode() if length else ""
        params = parse_stripe_form(body if method == "POST" else url.query)
        auth = request.headers.get("Authorization", "")
        self.authorizations.append(auth)
        failure = self.fail_with if self.fail_with is not None else self.failing.get(url.path)
        if failure is not None:
            return self._reply(request, failure, _error("api_error", "Stripe is down"))
        if auth.removeprefix("Bearer ") not in self.secret_keys:
            return self._reply(
                request, 401, _error("invalid_request_error", "Invalid API Key provided")
            )
        path = url.path
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._reply(request, 200, self._create_session(params))
        if method == "GET" and path.startswith("/v1/checkout/sessions/"):
            session_id = path.rsplit("/", 1)[1]
            if session_id not in self.sessions:
                return self._reply(request, 404, _error("invalid_request_error", "No such session"))
            return self._reply(request, 200, self._session_view(session_id, params))
        if method == "POST" and path == "/v1/refunds":
            key = request.headers.get("Idempotency-Key")
            if key and key in self.refund_keys:  # Stripe: the same key answers the same refund
                return self._reply(request, 200, self.refund_keys[key])
            refund = self.add_refund(
                str(params.get("payment_intent")),
                int(params.get("amount", 0)),
                metadata=params.get("metadata", {}),
            )
            if key:
                self.refund_keys[key] = refund
            return self._reply(request, 200, refund)
        if method == "GET" and path == "/v1/refunds":
            listed = [
                r for r in self.refunds if r["payment_intent"] == params.get("payment_intent")
            ]
            return self._reply(request, 200, {"object": "list", "data": listed, "has_more": False})
        if method == "GET" and path.startswith("/v1/payment_intents/"):
            intent_id = path.rsplit("/", 1)[1]
            for session in self.sessions.values():
                if session["payment_intent"] == intent_id:
                    intent = {"id": intent_id, "object": "payment_intent"}
                    intent["metadata"] = session["metadata"]
                    return self._reply(request, 200, intent)
            return self._reply(request, 404, _error("invalid_request_error", "No such intent"))
        if method == "POST" and path == "/v1/webhook_endpoints":
            endpoint = {
                "id": "we_" + secrets.token_hex(8),
                "object": "webhook_endpoint",
                "url": params["url"],
                "enabled_events": params["enabled_events"],
                "secret": "whsec_" + secrets.token_hex(16),
            }
            self.webhook_endpoints.append(endpoint)
            return self._reply(request, 200, endpoint)
        return self._reply(request, 404, _error("invalid_request_error", f"Unrecognized {path}"))

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        self.created.append(params)
        session_id = "cs_test_" + secrets.token_hex(12)
        lines = params["line_items"]
        session = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"{self.url}/c/pay/{session_id}",
            "status": "open",
            "payment_status": "unpaid",
            "mode": params["mode"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "customer_email": params.get("customer_email"),
            "currency": lines[0]["price_data"]["currency"],
            "amount_total": sum(
                int(line["price_data"]["unit_amount"]) * int(line["quantity"]) for line in lines
            ),
            "payment_intent": None,
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
        }
        self.sessions[session_id] = session
        return session

    def _session_view(self, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
        session = dict(self.sessions[session_id])
        expand = params.get("expand", [])
        if "payment_intent.latest_charge" in expand and session["payment_intent"]:
            brand, last4 = self.cards[session_id]
            session["payment_intent"] = {
                "id": session["payment_intent"],
                "object": "payment_intent",
                "latest_charge": {
                    "id": "ch_" + secrets.token_hex(8),
                    "object": "charge",
                    "payment_method_details": {
                        "type": "card",
                        "card": {"brand": brand, "last4": last4},
                    },
                },
            }
        return session

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.send_header("Request-Id", "req_" + secrets.token_hex(6))
        request.end_headers()
        request.wfile.write(data)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}
