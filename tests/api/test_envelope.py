from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from factories import form, make_account
from mobip.api.envelope import Params, encode, encode_stream, ok
from mobip.auth.models import AccessToken
from mobip.kit.errors import DuplicateField, FieldTooLong, InvalidField, MissingField
from mobip.kit.runtime import Runtime

GET_TOKEN = "/api/2.0/mobip/get_token"


def credentials(runtime: Runtime) -> dict[str, str]:
    merchant = make_account(runtime)
    return {
        "api_account_id": merchant.account.api_account_id,
        "api_secret_key": merchant.api_secret_key,
    }


def tokens(runtime: Runtime) -> int:
    with runtime.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(AccessToken)) or 0


def test_get_with_a_multipart_body(client: TestClient, runtime: Runtime) -> None:
    reply = client.request("GET", GET_TOKEN, files=form(**credentials(runtime)))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["return_code"] == "0"


def test_get_with_a_query_string(client: TestClient, runtime: Runtime) -> None:
    reply = client.get(GET_TOKEN, params=credentials(runtime))
    assert reply.json()["return_code"] == "0"


def test_get_with_an_urlencoded_body(client: TestClient, runtime: Runtime) -> None:
    reply = client.request("GET", GET_TOKEN, data=credentials(runtime))
    assert reply.json()["return_code"] == "0"


def test_body_wins_over_query_string(client: TestClient, runtime: Runtime) -> None:
    creds = credentials(runtime)
    reply = client.request(
        "GET",
        GET_TOKEN,
        params={"api_secret_key": "wrong"},
        files=form(**creds),
    )
    assert reply.json()["return_code"] == "0"


def test_xml_reply_by_format_field_and_by_accept_header(
    client: TestClient, runtime: Runtime
) -> None:
    creds = credentials(runtime)
    by_field = client.request("GET", GET_TOKEN, files=form(**creds, format="xml"))
    assert by_field.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(by_field.text)
    assert root.tag == "mobip"
    assert root.findtext("return_code") == "0"
    assert (root.findtext("access_token") or "").startswith("mbt_")
    by_accept = client.request(
        "GET", GET_TOKEN, files=form(**creds), headers={"Accept": "application/xml"}
    )
    assert ET.fromstring(by_accept.text).findtext("return_code") == "0"


def test_xml_error_reply(client: TestClient) -> None:
    reply = client.request("GET", GET_TOKEN, files=form(format="xml"))
    assert reply.status_code == 400
    root = ET.fromstring(reply.text)
    assert root.findtext("return_code") == "1001"
    assert "api_account_id" in (root.findtext("return_message") or "")


def test_oversize_body_is_refused_with_413_and_nothing_changes(
    client: TestClient, runtime: Runtime
) -> None:
    creds = credentials(runtime)
    padding = "x" * (runtime.settings.max_body_bytes + 1)
    reply = client.request("GET", GET_TOKEN, files=form(**creds, padding=padding))
    assert reply.status_code == 413
    assert reply.json()["return_code"] == "6001"
    assert tokens(runtime) == 0


def test_oversize_streamed_body_without_content_length(
    client: TestClient, runtime: Runtime
) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"a=" + b"x" * 100_000 + b"&"

    reply = client.request(
        "GET",
        GET_TOKEN,
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 413


@pytest.mark.parametrize("value", ["12.50", "1e3", "abc", " 3", "3 ", "+3", "٣", "0x10"])
def test_integers_must_be_plain_digits(value: str) -> None:
    with pytest.raises(InvalidField, match="'n'"):
        Params({"n": value}).integer("n")


def test_integer_bounds_and_defaults() -> None:
    params = Params({"n": "5", "empty": ""})
    assert params.integer("n", minimum=1, maximum=5) == 5
    assert params.integer("empty", default=7) == 7
    assert params.integer("absent", default=None) is None
    with pytest.raises(InvalidField, match="at most 4"):
        params.integer("n", maximum=4)
    with pytest.raises(InvalidField, match="at least 6"):
        params.integer("n", minimum=6)
    with pytest.raises(MissingField, match="'absent'"):
        params.integer("absent", required=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("ON", True),
        ("Yes", True),
        ("0", False),
        ("false", False),
        ("off", False),
        ("no", False),
    ],
)
def test_booleans(raw: str, expected: bool) -> None:
    assert Params({"flag": raw}).boolean("flag") is expected


def test_bad_boolean_names_the_field() -> None:
    # The message lists every spelling it takes.
    with pytest.raises(InvalidField, match=r"'flag'.*on/off, yes/no"):
        Params({"flag": "perhaps"}).boolean("flag")


def test_field_length_limits() -> None:
    params = Params({"name": "x" * 11}, max_field_chars=10)
    with pytest.raises(FieldTooLong, match="'name'"):
        params.text("name")
    assert params.text("name", max_chars=11) == "x" * 11


def test_duplicate_field_in_one_source_is_refused() -> None:
    with pytest.raises(DuplicateField, match="'a'"):
        Params.from_pairs([("a", "1"), ("a", "2")], [], 100)


def test_duplicate_field_over_http(client: TestClient) -> None:
    reply = client.request(
        "GET",
        GET_TOKEN,
        content=b"a=1&a=2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (reply.status_code, reply.json()["return_code"]) == (400, "1006")


def test_unsupported_content_type(client: TestClient) -> None:
    reply = client.post(
        "/api/2.0/mobip/login",
        content=json.dumps({"access_token": "x"}),
        headers={"Content-Type": "application/json"},
    )
    assert (reply.status_code, reply.json()["return_code"]) == (415, "1005")


def test_malformed_multipart(client: TestClient) -> None:
    reply = client.post(
        "/api/2.0/mobip/login",
        content=b'--b\r\nContent-Disposition: form-data; name="access_token"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert (reply.status_code, reply.json()["return_code"]) == (400, "1004")


def test_wrong_method_is_405_in_the_envelope(client: TestClient) -> None:
    # A write answers POST only; a read GET, HEAD and POST (tests/api/test_read_methods.py).
    reply = client.get("/api/2.0/mobip/send_payment_request", params={"item_name": "a"})
    assert reply.status_code == 405
    assert reply.json()["return_code"] == "4005"
    assert reply.headers["allow"] == "POST"
    reply = client.put(GET_TOKEN, files=form(api_account_id="a"))
    assert reply.status_code == 405
    assert reply.json()["return_code"] == "4005"
    assert reply.headers["allow"] == "GET, HEAD, POST"


def test_unknown_endpoint_is_404_in_the_envelope(client: TestClient) -> None:
    reply = client.get("/api/2.0/mobip/no_such_thing")
    assert reply.status_code == 404
    assert reply.json()["return_code"] == "4001"


def test_every_reply_has_a_request_id(client: TestClient) -> None:
    assert len(client.get("/healthz").headers["x-request-id"]) >= 8
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )


# Every character XML 1.0 cannot carry, even as a character reference (§2.2): inputs are refused
# before they get here, but a reply must parse whatever it holds (defence in depth).
XML_ILLEGAL = [
    "\x00",
    "\x01",
    "\x08",
    "\x0b",
    "\x0c",
    "\x1f",
    "\ud800",
    "\udfff",
    "\ufffe",
    "\uffff",
]


@pytest.mark.parametrize("char", XML_ILLEGAL)
def test_xml_replies_parse_whatever_the_values_hold(char: str) -> None:
    body, _ = encode({"return_code": "0", "desc": f"a{char}b", "list": [f"{char}"]}, xml=True)
    root = ET.fromstring(body)
    assert root.findtext("desc") == "a\ufffdb"
    assert root.findtext("list/item") == "\ufffd"


def test_xml_keeps_tabs_line_breaks_and_astral_characters() -> None:
    value = "a\tb\nc\rd 👍 \u0085 \u202e"
    body, _ = encode({"desc": value}, xml=True)
    # A parser normalises a raw CR to LF (XML 1.0 §2.11): CR travels as a character reference.
    assert ET.fromstring(body).findtext("desc") == value


@pytest.mark.parametrize(
    ("value", "sent"),
    [("\ud800", "\ufffd"), ("a\udfffb", "a\ufffdb"), ("\x00\x1b", "\x00\x1b"), ("é👍", "é👍")],
)
def test_json_replies_are_utf8_whatever_the_values_hold(value: str, sent: str) -> None:
    # A lone surrogate cannot be UTF-8: it goes out as U+FFFD rather than as a 500.
    body, media_type = encode({"return_code": "0", "desc": value}, xml=False)
    assert media_type == "application/json"
    assert json.loads(body.decode("utf-8"))["desc"] == sent


# Values as replies hold them: strings (any character, lone surrogates and XML-illegal ones
# included), and dicts of them.
_texts = st.text(st.characters(codec=None), max_size=8)
_items = st.dictionaries(st.sampled_from(["a", "b", "c d", "x1"]), _texts, max_size=3)


@settings(max_examples=200, database=None, deadline=None)
@given(
    fields=st.dictionaries(st.sampled_from(["n", "m"]), _texts, max_size=2),
    pages=st.lists(st.lists(_items, max_size=3), min_size=1, max_size=4),
    xml=st.booleans(),
)
def test_a_streamed_reply_has_the_bytes_of_the_same_reply_held_whole(
    fields: dict[str, str], pages: list[list[dict[str, str]]], xml: bool
) -> None:
    """encode_stream (api/routing's Streamed) is encode in pieces: one per page."""
    pieces, media_type = encode_stream(ok(fields), "lines", iter(pages), xml=xml)
    chunks = list(pieces)
    assert len(chunks) >= 2  # the head (sent before any page is read), ..., the tail
    whole = ok({**fields, "lines": [item for page in pages for item in page]})
    assert (b"".join(chunks), media_type) == encode(whole, xml=xml)
