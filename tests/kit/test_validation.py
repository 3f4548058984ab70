"""What kit/validation makes of URLs and e-mail addresses from outside: stored values are ASCII."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobip.kit.errors import InvalidField
from mobip.kit.validation import (
    Refused,
    _labelled_host,
    ascii_host,
    email_address,
    http_url,
    stored_http_url,
)

# --- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_url", "stored"),
    [
        ("https://пример.рф/merci", "https://xn--e1afmkfd.xn--p1ai/merci"),
        ("https://例え.jp/", "https://xn--r8jz45g.jp/"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://BÜCHER.example:8443/a", "https://xn--bcher-kva.example:8443/a"),
        # Full-width letters and the ideographic full stop map to their ASCII forms (UTS #46).
        ("https://\uff53\uff48\uff4f\uff50\u3002example/", "https://shop.example/"),
        # Path, query and fragment: non-ASCII percent-encoded as UTF-8, the rest kept as given.
        (
            "https://shop.example/Café?q=é&x=%20#fin-ü",
            "https://shop.example/Caf%C3%A9?q=%C3%A9&x=%20#fin-%C3%BC",
        ),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        # ASCII URLs are stored exactly as given.
        ("https://Shop.Example/Thanks?order=7", "https://Shop.Example/Thanks?order=7"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"),
        ("http://[2001:db8::1]:8080/cb", "http://[2001:db8::1]:8080/cb"),
        ("http://127.0.0.1:9000/cb", "http://127.0.0.1:9000/cb"),
        ("https://shop.example./done", "https://shop.example./done"),
        ("https://my_shop.example/", "https://my_shop.example/"),
    ],
)
def test_urls_are_stored_in_ascii_with_an_idna_2008_host(given_url: str, stored: str) -> None:
    assert http_url("redirect_url", given_url, https_only=False) == stored
    assert stored_http_url(given_url) == stored


@pytest.mark.parametrize(
    "url",
    [
        "https://xn--a.example/",  # an A-label that does not decode
        "https://xn--bcher-kva.xn--.example/",
        "https://a☃.example/",  # U+2603 is disallowed by IDNA 2008 (IDNA 2003 took it)
        "https://-shop.example/",
        "https://ü-.example/",
        "https://a..example/",
        "https://shop!.example/",
        "https://%D0%BF.example/",
        "https://" + "a" * 64 + ".example/",
        "https://" + ".".join(["a" * 60] * 5) + "/",  # 304 characters
        "https://\u05d0a.example/",  # a left-to-right letter in a right-to-left label (bidi rule)
        "https://a\u200d.example/",  # a zero-width joiner out of its context (CONTEXTJ)
        "https://[fe80::1%25eth0]/",
        "https://[v1.x]/",
    ],
)
def test_hosts_that_are_not_valid_idna_2008_are_refused_naming_the_field(url: str) -> None:
    with pytest.raises(InvalidField) as refused:
        http_url("call_back_url", url, https_only=False)
    assert refused.value.field == "call_back_url"
    assert "'call_back_url'" in refused.value.message
    assert stored_http_url(url) is None


def test_a_lone_surrogate_in_the_path_is_refused_not_an_error() -> None:
    with pytest.raises(InvalidField):
        http_url("redirect_url", "https://shop.example/\ud800", https_only=False)


@given(st.text(max_size=40))
def test_whatever_follows_the_host_the_result_is_ascii_or_refused(tail: str) -> None:
    try:
        url = http_url("redirect_url", "https://bücher.example/" + tail, https_only=False)
    except InvalidField:
        return
    assert url.isascii()
    assert url.startswith("https://xn--bcher-kva.example/")


# --- e-mail addresses -----------------------------------------------------------------------------


def _outcome(convert: Callable[[str], str], host: str) -> str:
    try:
        return convert(host)
    except Refused:
        return "refused"


_HOST_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        "-",
        "_",
        ".",
        "xn--",
        "XN--",
        "xn--bcher-kva",
        "b\u00fccher",
        "\u3002",
        "a" * 63,
    ]
)


@settings(max_examples=500)
@given(st.lists(_HOST_PIECES, max_size=12).map("".join) | st.text(max_size=30))
def test_a_plain_ascii_host_is_settled_by_one_expression_as_label_by_label(host: str) -> None:
    """ascii_host's regular expression for the usual host gives what the label-by-label path
    gives, value or refusal (empty labels, a leading or trailing '-', A-labels, lengths)."""
    assert _outcome(ascii_host, host) == _outcome(_labelled_host, host)


@pytest.mark.parametrize(
    "host",
    [
        "shop.example",
        "Shop.Example.",
        "a_b.example",
        "a" * 63 + ".example",
        "a" * 64 + ".example",
        "ab." * 84 + "x",  # 253 characters
        "ab." * 84 + "xy",  # 254
        "ab." * 84 + "x.",
    ],
)
def test_plain_hosts_at_the_limits(host: str) -> None:
    assert _outcome(ascii_host, host) == _outcome(_labelled_host, host)


def test_an_idn_domain_is_stored_as_punycode() -> None:
    assert email_address("customer_email", "a@éxample.com") == "a@xn--xample-9ua.com"
    assert email_address("customer_email", "zoe@пример.рф") == "zoe@xn--e1afmkfd.xn--p1ai"
    assert email_address("customer_email", "Ada@Example.COM") == "Ada@example.com"


def test_a_non_ascii_local_part_needs_smtputf8() -> None:
    with pytest.raises(InvalidField) as refused:
        email_address("customer_email", "ü@example.com")
    assert "'customer_email'" in refused.value.message
    assert "SMTPUTF8" in refused.value.message
    # With the operator's word that the SMTP server takes SMTPUTF8: kept, domain in ASCII.
    assert email_address("customer_email", "ü@éxample.com", smtputf8=True) == "ü@xn--xample-9ua.com"


def test_length_limits_of_smtp() -> None:
    assert email_address("customer_email", "a" * 64 + "@example.com") == "a" * 64 + "@example.com"
    with pytest.raises(InvalidField, match="'customer_email'"):
        email_address("customer_email", "a" * 65 + "@example.com")
    domain = ".".join(["d" * 60] * 3) + ".example"  # 191 characters
    longest = "a" * (254 - len(domain) - 1) + "@" + domain
    assert len(longest) == 254
    assert email_address("customer_email", longest) == longest
    with pytest.raises(InvalidField, match="'customer_email'"):
        email_address("customer_email", "a" + longest)
    # The punycode form is what must fit: 250 characters typed, more once encoded.
    short_typed = "a" * 40 + "@" + ".".join(["é" * 40] * 5) + ".example"
    with pytest.raises(InvalidField, match="'customer_email'"):
        email_address("customer_email", short_typed)


@pytest.mark.parametrize(
    "value",
    ["not-an-email", "a@b", "Ada <ada@example.com>", '"a b"@example.com', "a@[127.0.0.1]"],
)
def test_what_is_not_a_plain_address_is_refused(value: str) -> None:
    with pytest.raises(InvalidField, match="'customer_email'"):
        email_address("customer_email", value)
