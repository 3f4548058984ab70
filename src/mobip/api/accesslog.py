"""The access log: one JSON line per request (method, path, account, return code, status, time).

Never the query string: it may hold a token or a secret. Every reply gets an ``X-Request-ID``
(the client's own when it sent a valid one), the same as in the line.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("mobip.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class AccessLogMiddleware:
    """Logs method, path (never the query string: it may hold a token), account, code, status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        context: dict[str, Any] = {}
        scope["mobip.log"] = context
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "account_uid": context.get("account_uid"),
                        "return_code": context.get("return_code"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                },
            )
