"""Headers every reply needs, added where the reply starts so that no route can forget them
(by the edge middleware, api/accesslog.py, in the one send wrapper it has anyway)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

NO_STORE = (b"cache-control", b"no-store")
# RFC 6749 §5.1 asks for it beside no-store, for HTTP/1.0 caches (obsolete, but harmless).
PRAGMA = (b"pragma", b"no-cache")
# Two years, subdomains included: the value browsers' preload lists ask for (without "preload",
# which is the operator's decision to make, as it cannot be undone quickly).
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")

Header = tuple[bytes, bytes]


@dataclass(frozen=True)
class ResponseHeaders:
    """``Cache-Control: no-store`` (and ``Pragma: no-cache``) on replies under ``no_store_prefixes``
    unless the route set its own Cache-Control (RFC 6749 §5.1: a token reply must not be cached;
    no API reply should be), and, with ``hsts``, one ``Strict-Transport-Security`` policy on every
    reply (it replaces any a route set: the policy is the host's)."""

    no_store_prefixes: tuple[str, ...]
    hsts: bool

    def no_store(self, path: str) -> bool:
        return path.startswith(self.no_store_prefixes)

    def apply(self, headers: Iterable[Header], *, no_store: bool) -> list[Header]:
        """``headers`` (a reply's) with this policy's added."""
        result = list(headers)
        if self.hsts:
            result = [h for h in result if h[0].lower() != HSTS[0]]
            result.append(HSTS)
        if no_store and not any(name.lower() == NO_STORE[0] for name, _ in result):
            result += (NO_STORE, PRAGMA)
        return result
