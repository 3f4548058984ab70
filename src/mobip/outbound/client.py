"""The one HTTP client for merchant-supplied URLs, guarded against SSRF at connect time.

The guard lives in the network backend: every new TCP connection resolves the host itself, checks
every address, and connects to a checked address, so what was checked is what is connected to
(no second lookup an attacker's DNS could answer differently). TLS still uses the URL's host name
for SNI and certificate checks, and the ``Host`` header names the URL's host. Redirects are never
followed (3xx is returned as is), replies are read up to a cap, and each request has one overall
timeout. Keep-alive connections are reused per origin; a new connection is checked again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import string
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11

from mobip.config import IPNetwork, Settings, parse_allow_list
from mobip.kit.validation import ascii_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# host, port -> the addresses to try, as strings (an injectable DNS: tests, custom resolvers).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_TIMEOUT_SECONDS = 15.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
# How long aclose waits for peers to see their connections closed: a TLS peer that never answers
# the close must not hold up a worker's shutdown (its connection is then dropped).
CLOSE_WAIT_SECONDS = 2.0
MAX_URL_CHARS = 2048
_HOST_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
# What no URL we send to may hold: str.isspace()'s characters (re's \s is the same set), the C0
# controls, DEL and the backslash (read as "/" by some parsers, not by others).
_REFUSED_IN_URL = re.compile(r"[\s\x00-\x1f\x7f\\]")


class OutboundRefused(Exception):
    """The URL or the address it leads to is not allowed; nothing was sent or connected."""


class OutboundError(Exception):
    """The request could not complete: connection refused, timeout, protocol error."""


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


LOOPBACK = _nets("127.0.0.0/8", "::1/128")

# Never admitted, whatever the allow-list says: no host is reachable there on purpose.
_ALWAYS_FORBIDDEN: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("an unspecified", _nets("0.0.0.0/8", "::/128")),
    ("a multicast", _nets("224.0.0.0/4", "ff00::/8")),
    ("a broadcast", _nets("255.255.255.255/32")),
)

# Refused unless MOBIP_OUTBOUND_ALLOW (or the development loopback default) admits them.
_FORBIDDEN: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("a loopback", LOOPBACK),
    ("a private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    ("a link-local", _nets("169.254.0.0/16", "fe80::/10")),
    ("a carrier-grade NAT", _nets("100.64.0.0/10")),
    (
        "a reserved",
        _nets(
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "240.0.0.0/4",
            "::/96",  # IPv4-compatible (deprecated)
            "64:ff9b:1::/48",  # local-use NAT64
            "100::/64",  # discard-only
            "2001:2::/48",
            "2001:10::/28",
            "2001:20::/28",
            "2001:db8::/32",
            "fec0::/10",  # site-local (deprecated)
        ),
    ),
)

# IPv6 ranges whose last 32 bits are an IPv4 address a packet ends up at (IPv4-mapped is
# ipaddress's ipv4_mapped): IPv4-translated (RFC 2765, SIIT) and the well-known NAT64 prefix.
_LAST_32_BITS_IPV4 = _nets("::ffff:0:0:0/96", "64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: mapped, translated, NAT64, 6to4, Teredo
    (its server, and its client: the last 32 bits inverted)."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if any(address in net for net in _LAST_32_BITS_IPV4):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)]
    if address.teredo is not None:
        return list(address.teredo)
    return []


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be connected to: public ones, plus the ``allow`` ranges."""

    allow: tuple[IPNetwork, ...] = ()

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be connected to, or None when it may."""
        for name, networks in _ALWAYS_FORBIDDEN:
            if any(address in net for net in networks):
                return f"{address} is {name} address"
        if isinstance(address, ipaddress.IPv6Address):
            for inner in _embedded_ipv4(address):
                reason = self.refusal(inner)
                if reason is not None:
                    return f"{address} embeds an IPv4 address that is refused ({reason})"
            if address.ipv4_mapped is not None:
                return None
        if any(address in net for net in self.allow):
            return None
        for name, networks in _FORBIDDEN:
            if any(address in net for net in networks):
                return f"{address} is {name} address"
        return None

    def check(self, address: IPAddress) -> None:
        reason = self.refusal(address)
        if reason is not None:
            raise OutboundRefused(f"refused: {reason}")


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 host as inet_aton and browsers read it: 0x hex, 0 octal, decimal."""
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        return int(digits or "0", 16) if all(c in string.hexdigits for c in digits) else None
    if not part.isascii() or not part.isdigit():
        return None
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8) if all(c in "01234567" for c in part) else None
    return int(part)


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address of a host written as numbers (``2130706433``, ``0x7f.1``, ``0177.0.0.1``).

    Follows the URL standard's IPv4 parser: a host whose last label is a number is an address,
    in any base and with 1 to 4 parts; one that looks numeric but does not parse is an error.
    """
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not parts or _ipv4_number(parts[-1]) is None:
        if parts and parts[-1].isdigit():
            raise OutboundRefused(f"refused: {host!r} is not a valid address")
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise OutboundRefused(f"refused: {host!r} is not a valid address")
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(values)):
        raise OutboundRefused(f"refused: {host!r} is not a valid address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


@dataclass(frozen=True)
class Target:
    """A checked URL, split the way it will be requested."""

    scheme: str
    host: str  # ASCII: an IDNA name, or an address without brackets
    port: int
    path: str  # path and query, as sent on the request line
    address: IPAddress | None  # set when the host is an address literal

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """Split ``url`` into what is connected to; OutboundRefused when it is not acceptable.

    Only absolute http(s) URLs without credentials; the host is IDNA-encoded and numeric forms
    are read as addresses, so one parser decides what host is meant.
    """
    if len(url) > MAX_URL_CHARS:
        raise OutboundRefused(f"refused: the URL is longer than {MAX_URL_CHARS} characters")
    if _REFUSED_IN_URL.search(url):
        raise OutboundRefused("refused: the URL contains spaces, control characters or '\\'")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"refused: not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise OutboundRefused("refused: only http and https URLs are allowed")
    if "@" in parts.netloc:
        raise OutboundRefused("refused: the URL must not include a user name or password")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise OutboundRefused("refused: the URL has no host")
    if port == 0:
        raise OutboundRefused("refused: port 0")
    host, address = _parse_host(raw_host, bracketed=parts.netloc.count("[") > 0)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path, address)


def _parse_host(raw: str, *, bracketed: bool) -> tuple[str, IPAddress | None]:
    if bracketed:
        if "%" in raw:
            raise OutboundRefused("refused: IPv6 zone identifiers are not allowed")
        try:
            v6 = ipaddress.IPv6Address(raw)
        except ValueError as exc:
            raise OutboundRefused(f"refused: {raw!r} is not an IPv6 address") from exc
        return str(v6), v6
    try:
        # IDNA 2008 as at creation (kit/validation): UTS #46 maps fullwidth digits and dots to
        # ASCII before the numeric check.
        host = ascii_host(raw).lower()
    except ValueError as exc:
        raise OutboundRefused(f"refused: {raw!r} is not a valid host name") from exc
    if not host or not set(host) <= _HOST_CHARS:
        raise OutboundRefused(f"refused: {raw!r} is not a valid host name")
    v4 = numeric_ipv4(host)
    if v4 is not None:
        return str(v4), v4
    return host.rstrip("."), None


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """The operating system's resolver (getaddrinfo), every address family."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# ip, port, TLS context (None for http), TLS server name -> an open stream (injectable: tests).
Connector = Callable[
    [str, int, ssl.SSLContext | None, str | None],
    Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
]


async def open_tcp(
    ip: str, port: int, tls: ssl.SSLContext | None, server_hostname: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP (and TLS) connection to an address already checked."""
    return await asyncio.open_connection(
        ip, port, ssl=tls, server_hostname=server_hostname, limit=2**16
    )


class AddressGuard:
    """The check between the lookup and the connect: every new connection goes through here."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver, connector: Connector) -> None:
        self.policy = policy
        self.resolver = resolver
        self.connector = connector

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The checked addresses of ``host``: all of them must be allowed, or none is used.

        Refusing a name when any of its addresses is forbidden keeps a name that mixes public
        and internal records from reaching the internal one on a later connection.
        """
        _, literal = _parse_host(host, bracketed=":" in host)
        if literal is not None:
            self.policy.check(literal)
            return [literal]
        try:
            found = await self.resolver(host, port)
        except OSError as exc:
            raise OutboundError(f"cannot resolve {host!r}: {exc}") from exc
        addresses: list[IPAddress] = []
        for text in found:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError as exc:
                raise OutboundRefused(f"refused: {host!r} resolved to {text!r}") from exc
            reason = self.policy.refusal(address)
            if reason is not None:
                raise OutboundRefused(f"refused: {host!r} resolves to a refused address: {reason}")
            addresses.append(address)
        if not addresses:
            raise OutboundError(f"{host!r} has no address")
        return addresses

    async def connect(
        self, target: Target, tls: ssl.SSLContext | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to a checked address of ``target``; TLS names the URL's host (SNI)."""
        last_error: Exception | None = None
        for address in await self.addresses(target.host, target.port):
            try:
                return await self.connector(
                    str(address),
                    target.port,
                    tls,
                    target.host if tls is not None else None,
                )
            except (OSError, ssl.SSLError) as exc:
                last_error = exc
        raise OutboundError(f"cannot connect to {target.host}:{target.port}: {last_error}")


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes  # at most the client's max_response_bytes
    truncated: bool

    def excerpt(self, chars: int = 200) -> str:
        """The start of the body as text, for attempt logs."""
        return self.body[: chars * 4].decode("utf-8", "replace")[:chars]


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    protocol: h11.Connection
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()

    @property
    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()


_Origin = tuple[str, str, int]


class _StaleConnection(Exception):
    """A kept-alive connection the server had closed: nothing was read, send again once."""


class OutboundClient:
    """HTTP/1.1 to merchant-supplied URLs: SSRF-checked connections, no redirects, capped replies.

    Keeps idle connections per origin (scheme, host, port) for ``keepalive_seconds`` and runs at
    most ``max_connections_per_host`` requests at once per origin.
    """

    def __init__(
        self,
        *,
        allow: Sequence[IPNetwork] = (),
        resolver: Resolver | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_connections_per_host: int = 32,
        keepalive_seconds: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        connector: Connector | None = None,
    ) -> None:
        self.policy = AddressPolicy(tuple(allow))
        self.guard = AddressGuard(self.policy, resolver or system_resolver, connector or open_tcp)
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.max_per_host = max_connections_per_host
        self.keepalive_seconds = keepalive_seconds
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._slots: dict[_Origin, asyncio.Semaphore] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _tls(self, scheme: str) -> ssl.SSLContext | None:
        if scheme != "https":
            return None
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _bind_to_running_loop(self) -> None:
        # Connections and semaphores belong to the loop that made them; a new loop starts afresh.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._idle, self._slots, self._loop = {}, {}, loop

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
    ) -> OutboundResponse:
        """Send one request; a 3xx is returned, not followed. OutboundRefused / OutboundError."""
        target = parse_url(url)
        if target.address is not None:
            # Refuse literal addresses before anything else (the guard checks again on connect).
            self.policy.check(target.address)
        self._bind_to_running_loop()
        request_headers = [("Host", target.host_header), ("User-Agent", "MOBIP-Webhooks/2.0")]
        request_headers += [(k, v) for k, v in (headers or {}).items() if k.lower() != "host"]
        request_headers.append(("Content-Length", str(len(content))))
        request = h11.Request(method=method.upper(), target=target.path, headers=request_headers)
        origin = (target.scheme, target.host, target.port)
        slots = self._slots.setdefault(origin, asyncio.Semaphore(self.max_per_host))
        try:
            async with asyncio.timeout(self.timeout), slots:
                try:
                    return await self._exchange(target, origin, request, content, True)
                except _StaleConnection:
                    return await self._exchange(target, origin, request, content, False)
        except TimeoutError as exc:
            raise OutboundError(f"timed out after {self.timeout:g}s") from exc
        except h11.ProtocolError as exc:
            raise OutboundError(f"HTTP protocol error: {exc}") from exc
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            raise OutboundError(f"{type(exc).__name__}: {exc}") from exc

    async def _connection(
        self, target: Target, origin: _Origin, reuse: bool
    ) -> tuple[_Connection, bool]:
        """An idle kept-alive connection (True) or a new, checked one (False)."""
        idle = self._idle.get(origin, [])
        now = time.monotonic()
        while reuse and idle:
            connection = idle.pop()
            if connection.usable and now - connection.idle_since < self.keepalive_seconds:
                return connection, True
            connection.close()
        reader, writer = await self.guard.connect(target, self._tls(target.scheme))
        return _Connection(reader, writer, h11.Connection(h11.CLIENT)), False

    async def _exchange(
        self,
        target: Target,
        origin: _Origin,
        request: h11.Request,
        content: bytes,
        reuse: bool,
    ) -> OutboundResponse:
        connection, reused = await self._connection(target, origin, reuse)
        keep = False
        try:
            protocol = connection.protocol
            data = protocol.send(request) or b""
            if content:
                data += protocol.send(h11.Data(data=content)) or b""
            data += protocol.send(h11.EndOfMessage()) or b""
            connection.writer.write(data)
            await connection.writer.drain()
            response, body, truncated = await self._read_response(connection, reused)
            keep = not truncated and self._recycle(connection)
        finally:
            if keep:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(connection)
            else:
                connection.close()
        reply_headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in response.headers
        }
        return OutboundResponse(response.status_code, reply_headers, body, truncated)

    async def _read_response(
        self, connection: _Connection, reused: bool
    ) -> tuple[h11.Response, bytes, bool]:
        protocol = connection.protocol
        response: h11.Response | None = None
        body = bytearray()
        got_bytes = False
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                chunk = await connection.reader.read(65536)
                if not chunk and not got_bytes and reused:
                    raise _StaleConnection
                got_bytes = got_bytes or bool(chunk)
                protocol.receive_data(chunk)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_response_bytes:
                    del body[self.max_response_bytes :]
                    assert response is not None
                    return response, bytes(body), True
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                if response is None:
                    raise OutboundError("the connection closed before a response")
                return response, bytes(body), False

    @staticmethod
    def _recycle(connection: _Connection) -> bool:
        protocol = connection.protocol
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            return True
        return False

    async def aclose(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """Close the idle connections (those of the running event loop), waiting at most
        ``wait`` seconds for them to close cleanly; those still open then are dropped."""
        connections = [c for idle in self._idle.values() for c in idle]
        self._idle = {}
        if not connections or self._loop is not asyncio.get_running_loop():
            return
        for connection in connections:
            connection.close()
        closing = [asyncio.ensure_future(c.writer.wait_closed()) for c in connections]
        await asyncio.wait(closing, timeout=wait)
        for connection, closed in zip(connections, closing, strict=True):
            if not closed.done():
                closed.cancel()
                connection.writer.transport.abort()
            elif not closed.cancelled():
                closed.exception()  # read, so an OSError / SSLError of a peer is not logged


def allow_list_for(settings: Settings) -> tuple[IPNetwork, ...]:
    """The configured ranges plus loopback when it is admitted (development by default)."""
    networks = parse_allow_list(settings.outbound_allow)
    return networks + LOOPBACK if settings.resolved_outbound_allow_loopback else networks


def client_for(settings: Settings, **options: Any) -> OutboundClient:
    """The outbound client configured by MOBIP_OUTBOUND_ALLOW and the environment."""
    return OutboundClient(allow=allow_list_for(settings), **options)


def refusal_before_sending(url: str, settings: Settings) -> str | None:
    """Why ``url`` can be refused now, without DNS (bad form or a refused address literal).

    For creation-time validation: a callback URL that could never be sent to is an input error
    then, not a failed delivery later. Host names are still checked at each connection.
    """
    try:
        target = parse_url(url)
    except OutboundRefused as exc:
        return str(exc).removeprefix("refused: ")
    if target.address is None:
        return None
    return AddressPolicy(allow_list_for(settings)).refusal(target.address)
