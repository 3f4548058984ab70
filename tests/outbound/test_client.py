"""The outbound client refuses internal addresses unconnected, and connects to what it checked."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callback_receiver import Receiver, Reply, running_receiver
from mobip.config import ConfigurationError, Environment, Settings
from mobip.outbound.client import (
    _REFUSED_IN_URL,
    LOOPBACK,
    AddressPolicy,
    OutboundClient,
    OutboundError,
    OutboundRefused,
    _Connection,
    allow_list_for,
    numeric_ipv4,
    open_tcp,
    parse_allow_list,
    parse_url,
    refusal_before_sending,
)
from tls_support import self_signed, server_context


class SpyConnector:
    """The real connector (asyncio.open_connection), recording every connection asked of it."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def __call__(
        self, ip: str, port: int, tls: ssl.SSLContext | None, server_hostname: str | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.connected.append((ip, port))
        return await open_tcp(ip, port, tls, server_hostname)


class FakeDns:
    """An injectable resolver: names map to address lists (one list per successive lookup)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        queue = self.answers.get(host)
        if not queue:
            raise socket.gaierror(f"no such name {host}")
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening loopback socket: a connection attempt would be queued for accept()."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def hostile_urls(port: int) -> list[str]:
    p = port
    return [
        f"http://127.0.0.1:{p}/cb",
        f"http://2130706433:{p}/cb",
        f"http://0177.0.0.1:{p}/cb",
        f"http://0x7f000001:{p}/cb",
        f"http://0x7f.0.0.1:{p}/cb",
        f"http://0x7f.1:{p}/cb",
        f"http://127.1:{p}/cb",
        f"http://127.0.1:{p}/cb",
        f"http://017700000001:{p}/cb",
        f"http://127.000.000.001:{p}/cb",
        f"http://127.0.0.1.:{p}/cb",
        f"http://[::1]:{p}/cb",
        f"http://[::ffff:127.0.0.1]:{p}/cb",
        f"http://[::ffff:7f00:1]:{p}/cb",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/cb",
        f"http://[::127.0.0.1]:{p}/cb",
        f"http://0.0.0.0:{p}/cb",
        f"http://0:{p}/cb",
        f"http://[::]:{p}/cb",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/cb",
        "http://172.16.0.1/cb",
        "http://192.168.1.1/cb",
        "http://100.64.0.1/cb",
        "http://198.18.0.1/cb",
        "http://224.0.0.1/cb",
        "http://255.255.255.255/cb",
        "http://[fe80::1]/cb",
        "http://[fe80::1%25eth0]/cb",
        "http://[fc00::1]/cb",
        "http://[ff02::1]/cb",
        f"http://[64:ff9b::7f00:1]:{p}/cb",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/cb",  # NAT64 of the metadata address
        f"http://[2002:7f00:1::]:{p}/cb",  # 6to4 of 127.0.0.1
        f"http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{p}/cb",  # Teredo client 127.0.0.1
        f"http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11:{p}/cb",  # fullwidth
        "http://256.256.256.256/cb",
        f"http://internal.example.test:{p}/cb",  # resolves to 10.1.2.3
        f"http://mixed.example.test:{p}/cb",  # a public and a loopback record
        f"http://localhost:{p}/cb",
        "http://metadata.google.internal/computeMetadata/v1/",
        f"http://127.0.0.1.nip.io:{p}/cb",
        f"http://v6only.example.test:{p}/cb",  # resolves to ::1
        f"http://example.com@127.0.0.1:{p}/cb",
        f"http://user:pass@example.com:{p}/cb",
        f"http://127.0.0.1:{p}\\@example.com/cb",
        f"ftp://127.0.0.1:{p}/cb",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_",
        "http://127.0.0.1:0/cb",
        "http:///cb",
    ]


DNS = {
    "internal.example.test": [["10.1.2.3"]],
    "mixed.example.test": [["93.184.216.34", "127.0.0.1"]],
    "localhost": [["127.0.0.1", "::1"]],
    "metadata.google.internal": [["169.254.169.254"]],
    "127.0.0.1.nip.io": [["127.0.0.1"]],
    "v6only.example.test": [["::1"]],
}


def test_the_hostile_corpus_is_refused_without_any_connection(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    urls = hostile_urls(port)
    assert len(urls) >= 30
    spy = SpyConnector()
    dns = FakeDns({k: [list(v) for v in answers] for k, answers in DNS.items()})

    async def run() -> list[str]:
        client = OutboundClient(resolver=dns, connector=spy, timeout=5)
        messages = []
        try:
            for url in urls:
                with pytest.raises(OutboundRefused) as refused:
                    await client.request("POST", url, content=b"resp_code=PROCESSED")
                messages.append(str(refused.value))
        finally:
            await client.aclose()
        return messages

    messages = asyncio.run(run())
    assert spy.connected == []
    with pytest.raises(BlockingIOError):
        listener.accept()
    assert all(m.startswith("refused: ") for m in messages)
    # Names were looked up, so the refusal came from their addresses, not their spelling.
    assert "internal.example.test" in dns.lookups
    assert "mixed.example.test" in dns.lookups


def test_the_spy_and_the_listener_do_see_a_connection_that_is_allowed(
    listener: socket.socket,
) -> None:
    """Control for the test above: the same instruments notice a real connection attempt."""
    port = listener.getsockname()[1]
    spy = SpyConnector()

    async def run() -> None:
        client = OutboundClient(allow=LOOPBACK, connector=spy, timeout=0.5)
        try:
            with pytest.raises(Exception, match="timed out"):
                await client.request("POST", f"http://127.0.0.1:{port}/cb", content=b"x")
        finally:
            await client.aclose()

    asyncio.run(run())
    assert spy.connected == [("127.0.0.1", port)]
    conn, _ = listener.accept()
    conn.close()


def test_the_checked_address_is_the_one_connected_and_host_stays_the_name(
    receiver: Receiver,
) -> None:
    dns = FakeDns({"merchant.example.test": [["127.0.0.1"]]})
    spy = SpyConnector()

    async def run() -> int:
        client = OutboundClient(allow=LOOPBACK, resolver=dns, connector=spy)
        try:
            url = f"http://merchant.example.test:{receiver.port}/callback?a=1"
            response = await client.request("POST", url, content=b"hello")
        finally:
            await client.aclose()
        return response.status

    assert asyncio.run(run()) == 200
    assert spy.connected == [("127.0.0.1", receiver.port)]
    [got] = receiver.requests
    assert got.headers["host"] == f"merchant.example.test:{receiver.port}"
    assert got.query == {"a": ["1"]}
    assert got.body == b"hello"


def test_every_new_connection_is_checked_again_dns_rebinding(receiver: Receiver) -> None:
    """First answer allowed, second answer (a rebinding DNS) refused on the next connection."""
    dns = FakeDns({"rebind.example.test": [["127.0.0.1"], ["127.0.0.2"]]})
    spy = SpyConnector()
    allow = (ipaddress.ip_network("127.0.0.1/32"),)
    url = f"http://rebind.example.test:{receiver.port}/callback"

    async def run() -> None:
        first = OutboundClient(allow=allow, resolver=dns, connector=spy)
        try:
            assert (await first.request("POST", url)).status == 200
        finally:
            await first.aclose()
        second = OutboundClient(allow=allow, resolver=dns, connector=spy)
        try:
            with pytest.raises(OutboundRefused, match=r"127\.0\.0\.2"):
                await second.request("POST", url)
        finally:
            await second.aclose()

    asyncio.run(run())
    assert spy.connected == [("127.0.0.1", receiver.port)]
    assert len(receiver.requests) == 1


def test_keep_alive_reuses_the_checked_connection(receiver: Receiver) -> None:
    dns = FakeDns({"merchant.example.test": [["127.0.0.1"]]})
    spy = SpyConnector()

    async def run() -> None:
        client = OutboundClient(allow=LOOPBACK, resolver=dns, connector=spy)
        try:
            for _ in range(3):
                url = f"http://merchant.example.test:{receiver.port}/callback"
                assert (await client.request("POST", url, content=b"x")).status == 200
        finally:
            await client.aclose()

    asyncio.run(run())
    assert len(receiver.requests) == 3
    assert len(spy.connected) == 1
    assert dns.lookups == ["merchant.example.test"]


def test_redirects_are_returned_not_followed(receiver: Receiver) -> None:
    receiver.reply("/callback", Reply(302, b"", {"Location": receiver.url("/elsewhere")}))

    async def run() -> int:
        client = OutboundClient(allow=LOOPBACK)
        try:
            return (await client.request("POST", receiver.url(), content=b"x")).status
        finally:
            await client.aclose()

    assert asyncio.run(run()) == 302
    assert [r.path for r in receiver.requests] == ["/callback"]


@pytest.fixture(scope="module")
def loopback_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), ips=["127.0.0.1"])


def post_over_tls(url: str, trust: ssl.SSLContext | None) -> int:
    """POST with ``trust`` (None: the system's CAs, as in production); the reply's status."""

    async def run() -> int:
        client = OutboundClient(allow=LOOPBACK, ssl_context=trust, timeout=5)
        try:
            return (await client.request("POST", url, content=b"resp_code=PROCESSED")).status
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_https_reaches_a_receiver_whose_certificate_is_trusted(
    loopback_certificate: tuple[Path, Path],
) -> None:
    with running_receiver(tls=server_context(loopback_certificate)) as receiver:
        trusted = ssl.create_default_context(cafile=str(loopback_certificate[0]))
        assert receiver.url().startswith("https://127.0.0.1:")
        assert post_over_tls(receiver.url(), trusted) == 200
        [received] = receiver.requests
        assert received.body == b"resp_code=PROCESSED"


def test_https_refuses_an_untrusted_certificate_before_sending_anything(
    loopback_certificate: tuple[Path, Path],
) -> None:
    with running_receiver(tls=server_context(loopback_certificate)) as receiver:
        with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED"):
            post_over_tls(receiver.url(), None)  # self-signed: not in the system's CAs
        assert receiver.requests == []


def test_https_checks_the_certificate_names_the_url_host(
    tmp_path: Path,
) -> None:
    # Trusted, but issued for another name than the host the URL names.
    elsewhere = self_signed(tmp_path, ips=["10.1.2.3"], dns=["shop.example"])
    with running_receiver(tls=server_context(elsewhere)) as receiver:
        trusted = ssl.create_default_context(cafile=str(elsewhere[0]))
        with pytest.raises(OutboundError, match="mismatch"):
            post_over_tls(receiver.url(), trusted)
        assert receiver.requests == []


def test_aclose_closes_idle_connections_and_waits_only_a_bounded_time(
    receiver: Receiver,
) -> None:
    class SilentPeer:
        """A writer whose peer never acknowledges the close (a TLS peer gone quiet)."""

        def __init__(self) -> None:
            self.closed = self.aborted = False
            self.transport = self

        def close(self) -> None:
            self.closed = True

        def abort(self) -> None:
            self.aborted = True

        async def wait_closed(self) -> None:
            await asyncio.Event().wait()  # never

    async def run() -> tuple[SilentPeer, bool]:
        client = OutboundClient(allow=LOOPBACK)
        await client.request("POST", receiver.url(), content=b"x")  # leaves one idle connection
        [[real]] = client._idle.values()
        silent = SilentPeer()
        client._idle[("https", "quiet.example", 443)] = [
            _Connection(asyncio.StreamReader(), silent, h11.Connection(h11.CLIENT))  # type: ignore[arg-type]
        ]
        # Bounded: without its own wait, aclose would wait for the silent peer for ever.
        await asyncio.wait_for(client.aclose(wait=0.2), timeout=30)
        return silent, real.writer.is_closing()

    silent, real_closed = asyncio.run(run())
    assert real_closed  # the real connection was closed
    receiver.wait_closed(1)  # and the receiver saw it end
    assert silent.closed and silent.aborted  # the silent one dropped after the wait


def test_the_reply_is_read_up_to_the_cap(receiver: Receiver) -> None:
    receiver.reply("/big", Reply(200, b"A" * 300_000))

    async def run() -> tuple[int, bool]:
        client = OutboundClient(allow=LOOPBACK, max_response_bytes=1000)
        try:
            response = await client.request("POST", receiver.url("/big"), content=b"x")
        finally:
            await client.aclose()
        return len(response.body), response.truncated

    assert asyncio.run(run()) == (1000, True)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0x", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
        ("example.com", None),
        ("1.example", None),
    ],
)
def test_numeric_hosts_are_read_like_browsers_do(host: str, expected: str | None) -> None:
    found = numeric_ipv4(host)
    assert (str(found) if found else None) == expected


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "1.2.3.0x100", "08.1.1.1", "1.2.3.09"])
def test_malformed_numeric_hosts_are_refused(host: str) -> None:
    with pytest.raises(OutboundRefused):
        numeric_ipv4(host)


@given(st.integers(0, 2**32 - 1), st.sampled_from(["d", "x", "o", "dotted-x", "two"]))
def test_numeric_forms_agree_with_inet_aton(value: int, form: str) -> None:
    octets = value.to_bytes(4, "big")
    if form == "d":
        host = str(value)
    elif form == "x":
        host = hex(value)
    elif form == "o":
        host = "0" + oct(value)[2:]
    elif form == "dotted-x":
        host = ".".join(hex(o) for o in octets)
    else:
        host = f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}"
    assert numeric_ipv4(host) == ipaddress.IPv4Address(socket.inet_aton(host))


def test_public_addresses_pass_and_the_allow_list_admits_chosen_private_ranges() -> None:
    strict = AddressPolicy()
    for public in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"]:
        assert strict.refusal(ipaddress.ip_address(public)) is None
    assert strict.refusal(ipaddress.ip_address("64:ff9b::5db8:d822")) is None  # NAT64, public
    assert "private" in (strict.refusal(ipaddress.ip_address("10.20.3.4")) or "")
    allowing = AddressPolicy(parse_allow_list("10.20.0.0/16, fd00:1::/64"))
    assert allowing.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert allowing.refusal(ipaddress.ip_address("::ffff:10.20.3.4")) is None
    assert allowing.refusal(ipaddress.ip_address("fd00:1::5")) is None
    assert allowing.refusal(ipaddress.ip_address("10.21.0.1")) is not None
    # The allow-list never admits addresses no host listens on.
    everything = AddressPolicy(parse_allow_list("0.0.0.0/0, ::/0"))
    for nowhere in ["0.0.0.0", "224.0.0.1", "::", "ff02::1", "255.255.255.255"]:
        assert everything.refusal(ipaddress.ip_address(nowhere)) is not None


def test_loopback_is_allowed_in_development_only(tmp_path: Path) -> None:
    dev = Settings(data_dir=tmp_path)
    prod = Settings(data_dir=tmp_path, env=Environment.PRODUCTION)
    assert set(LOOPBACK) <= set(allow_list_for(dev))
    assert allow_list_for(prod) == ()
    assert allow_list_for(Settings(data_dir=tmp_path, outbound_allow_loopback=False)) == ()
    chosen = Settings(data_dir=tmp_path, env=Environment.PRODUCTION, outbound_allow="10.9.0.0/16")
    assert allow_list_for(chosen) == (ipaddress.ip_network("10.9.0.0/16"),)


def test_a_bad_allow_list_is_a_configuration_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"MOBIP_OUTBOUND_ALLOW.*'10\.0\.0\.0/33'"):
        Settings(data_dir=tmp_path, outbound_allow="10.0.0.0/8, 10.0.0.0/33").check()


def test_parse_url_keeps_the_query_and_names_the_host_header() -> None:
    target = parse_url("https://Shop.Example.com/cb?order=7&x=%20")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "shop.example.com",
        443,
        "/cb?order=7&x=%20",
    )
    assert target.host_header == "shop.example.com"
    assert parse_url("http://[2001:db8::1]:8080/").host_header == "[2001:db8::1]:8080"


# --- IPv6 forms that lead to an IPv4 address --------------------------------------------------

TEREDO_SERVER = int(ipaddress.IPv4Address("65.54.227.120"))  # a public Teredo server


def embedding(form: str, ipv4: str) -> ipaddress.IPv6Address:
    """The IPv6 address that, in ``form``, leads to ``ipv4``."""
    v4 = int(ipaddress.IPv4Address(ipv4))
    prefixes = {
        "IPv4-mapped ::ffff:0:0/96": 0xFFFF << 32,
        "IPv4-translated ::ffff:0:0:0/96": 0xFFFF << 48,
        "NAT64 64:ff9b::/96": 0x64FF9B << 96,
    }
    if form in prefixes:
        return ipaddress.IPv6Address(prefixes[form] | v4)
    if form == "6to4 2002::/16":
        return ipaddress.IPv6Address((0x2002 << 112) | (v4 << 80))
    assert form == "Teredo 2001::/32"
    # Flags, then the port and the client address, both inverted (RFC 4380 §4).
    return ipaddress.IPv6Address(
        (0x2001 << 112)
        | (TEREDO_SERVER << 64)
        | (0x8000 << 48)
        | (0xFFFF << 32)
        | (v4 ^ 0xFFFFFFFF)
    )


EMBEDDING_FORMS = [
    "IPv4-mapped ::ffff:0:0/96",
    "IPv4-translated ::ffff:0:0:0/96",
    "NAT64 64:ff9b::/96",
    "6to4 2002::/16",
    "Teredo 2001::/32",
]


@pytest.mark.parametrize("inner", ["10.1.2.3", "127.0.0.1"])
@pytest.mark.parametrize("form", EMBEDDING_FORMS)
def test_an_ipv6_address_embedding_a_refused_ipv4_is_refused(
    form: str, inner: str, tmp_path: Path
) -> None:
    address = embedding(form, inner)
    assert inner in str(AddressPolicy().refusal(address))
    # At creation: the literal in a callback URL is refused before anything is stored.
    production = Settings(data_dir=tmp_path, env=Environment.PRODUCTION)
    assert inner in str(refusal_before_sending(f"http://[{address}]/cb", production))
    # At connection: a name resolving to it, or the literal, is refused and nothing connects.
    spy = SpyConnector()
    dns = FakeDns({"embedded.example.test": [[str(address)]]})

    async def run() -> None:
        client = OutboundClient(resolver=dns, connector=spy, timeout=5)
        try:
            for url in ["http://embedded.example.test/cb", f"http://[{address}]/cb"]:
                with pytest.raises(OutboundRefused, match=inner.replace(".", r"\.")):
                    await client.request("POST", url, content=b"x")
        finally:
            await client.aclose()

    asyncio.run(run())
    assert dns.lookups == ["embedded.example.test"]
    assert spy.connected == []


@pytest.mark.parametrize("form", EMBEDDING_FORMS)
def test_an_ipv6_address_embedding_a_public_ipv4_is_allowed(form: str) -> None:
    """Control for the test above: the forms are refused for what they embed, not as such."""
    assert AddressPolicy().refusal(embedding(form, "93.184.216.34")) is None


def test_a_url_with_any_space_control_or_backslash_is_refused_and_no_other_character() -> None:
    """parse_url's one regular expression refuses exactly str.isspace()'s characters, the C0
    controls, DEL and the backslash (every code point is tried), and parse_url says so."""
    for code in range(0x110000):
        char = chr(code)
        expected = char.isspace() or code < 32 or code == 127 or char == "\\"
        assert bool(_REFUSED_IN_URL.search(char)) == expected, f"U+{code:04X}"
    for char in (" ", "\t", "\x85", "\u3000", "\x7f", "\\"):
        with pytest.raises(OutboundRefused, match="spaces, control characters"):
            parse_url(f"https://shop.example/a{char}b")
    assert parse_url("https://shop.example/a~b").path == "/a~b"
