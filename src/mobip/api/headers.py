"""Headers every reply needs, added where the reply starts so that no route can forget them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = (b"cache-control", b"no-store")
# RFC 6749 §5.1 asks for it beside no-store, for HTTP/1.0 caches (obsolete, but harmless).
PRAGMA = (b"pragma", b"no-cache")
# Two years, subdomains included: the value browsers' preload lists ask for (without "preload",
# which is the operator's decision to make, as it cannot be undone quickly).
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class ResponseHeaders:
    """``Cache-Control: no-store`` (and ``Pragma: no-cache``) on replies under ``no_store_prefixes``
    unless the route set its own Cache-Control (RFC 6749 §5.1: a token reply must not be cached;
    no API reply should be),
    and, with ``hsts``, one ``Strict-Transport-Security`` policy on every reply (it replaces any
    a route set: the policy is the host's)."""

    def __init__(self, app: ASGIApp, *, no_store_prefixes: tuple[str, ...], hsts: bool) -> None:
        self.app = app
        self.no_store_prefixes = no_store_prefixes
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"].startswith(self.no_store_prefixes)
        if not no_store and not self.hsts:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if self.hsts:
                    headers = [h for h in headers if h[0].lower() != HSTS[0]]
                    headers.append(HSTS)
                if no_store and not any(name.lower() == NO_STORE[0] for name, _ in headers):
                    headers += (NO_STORE, PRAGMA)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
