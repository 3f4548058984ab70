"""The edge of the app: the access log, the reply headers every route needs, and the API's
exact-path dispatch, in one middleware with one send wrapper (each layer of ASGI wrapping costs
on every request: bench/api.py).

The access log is one JSON line per request (method, path, account, return code, status, time),
never with the query string: it may hold a token or a secret. Every reply gets an
``X-Request-ID`` (the client's own when it sent a valid one), the same as in the line.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobip.api.headers import ResponseHeaders

access_log = logging.getLogger("mobip.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_X_REQUEST_ID = b"x-request-id"

# An endpoint that answers a request (api/routing's asgi_endpoint): it handles its own errors.
RequestHandler = Callable[[Request], Awaitable[Response]]


class AccessLogMiddleware:
    """Logs method, path (never the query string: it may hold a token), account, code, status;
    adds ``X-Request-ID`` and the ``headers`` policy to every reply. A request whose path is one
    of ``exact`` goes straight to that handler: the API's paths are fixed strings, and Starlette's
    router (a linear match of every route) and its exception layers cost more than the lookup
    (the routes stay in the router too, for the 405's ``Allow`` and for apps without this
    middleware)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: ResponseHeaders,
        exact: Mapping[str, RequestHandler] | None = None,
    ) -> None:
        self.app = app
        self.headers = headers
        self.exact = dict(exact or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = ""
        for name, value in scope["headers"]:
            if name == _X_REQUEST_ID:
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        context: dict[str, Any] = {}
        scope["mobip.log"] = context
        status = 500
        policy = self.headers
        path = scope["path"]
        no_store = policy.no_store(path)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = policy.apply(message.get("headers", ()), no_store=no_store)
                headers.append((_X_REQUEST_ID, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            handler = self.exact.get(get_route_path(scope))
            if handler is None:
                await self.app(scope, receive, send_with_headers)
            else:
                response = await handler(Request(scope, receive, send_with_headers))
                await response(scope, receive, send_with_headers)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": path,
                            "account_uid": context.get("account_uid"),
                            "return_code": context.get("return_code"),
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        }
                    },
                )
