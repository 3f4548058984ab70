"""The declared-inputs step of api/routing: unknown fields, control characters, declared lengths.

It runs right after the body is parsed, before authentication and on every path (the thread,
SQLite's fast reads, the group-committed creates), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import sqlite3
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import pytest
from anyio import CapacityLimiter
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.testclient import TestClient

from callback_receiver import running_receiver
from checkout.support import pay_by_card
from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.accounts.service import NewCredentials
from mobip.api.batch import GroupCommit
from mobip.api.envelope import Params
from mobip.api.routing import (
    Access,
    Call,
    Endpoint,
    Field,
    Streamed,
    build_route,
    check_inputs,
)
from mobip.app import ENDPOINTS
from mobip.auth import endpoints as auth_endpoints
from mobip.kit.characters import refused_character
from mobip.kit.errors import FieldTooLong, InvalidField, UnknownField
from mobip.kit.runtime import Runtime
from mobip.kit.validation import MAX_EMAIL_CHARS, email_address, http_url, international_phone
from mobip.transactions.endpoints import EMAIL_PATTERN, HTTP_URL_PATTERN, PHONE_PATTERN
from products.support import reusable_qr, serve_photos
from receivables.support import SPEC_EXAMPLE
from transactions.support import counts, one_use_qr, valid_request

API = "/api/2.0/mobip"

# Characters no single-line text field takes: C0 controls, DEL, C1 controls, bidi embeddings,
# overrides and isolates (a right-to-left override spoofs what a payment page shows).
REFUSED = [
    "\x00",
    "\x01",
    "\x07",
    "\x1b",
    "\t",
    "\n",
    "\r",
    "\x7f",
    "\x85",
    "\x9f",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
]


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime)


@pytest.fixture
def token(client: TestClient, merchant: NewCredentials) -> str:
    return token_for(client, merchant, api_ttl=720)


# Each endpoint's path by name (most are below /mobip, the partner feed's below /neosystems).
PATHS = {endpoint.name: endpoint.full_path for endpoint in ENDPOINTS}


def post(client: TestClient, name: str, **fields: Any) -> Any:
    return client.post(PATHS.get(name, f"{API}/{name}"), files=form(**fields))


def get(client: TestClient, name: str, **fields: Any) -> Any:
    return client.request("GET", PATHS.get(name, f"{API}/{name}"), files=form(**fields))


def refused(reply: Any, code: str, *names: str) -> None:
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["return_code"] == code
    for name in names:
        assert f"'{name}'" in body["return_message"]


# --- control and bidi characters -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["item_name", "customer_name", "track_id"])
def test_a_nul_in_a_create_field_is_a_400_naming_it_and_nothing_is_stored(
    client: TestClient, runtime: Runtime, token: str, field: str
) -> None:
    # Before: PostgreSQL refused the NUL with a 500 (9001); SQLite stored it.
    reply = post(
        client,
        "send_payment_request",
        access_token=token,
        **valid_request(**{field: "Blue\x00mug"}),
    )
    refused(reply, "1002", field)
    assert counts(runtime) == (0, 0)


@pytest.mark.parametrize("char", REFUSED)
def test_control_and_bidi_characters_are_refused_in_item_name(
    client: TestClient, runtime: Runtime, token: str, char: str
) -> None:
    reply = post(
        client, "create_one_use_qr", access_token=token, **one_use_qr(item_name=f"Mug{char}x")
    )
    refused(reply, "1002", "item_name")
    assert counts(runtime) == (0, 0)


def test_ordinary_unicode_text_is_kept(client: TestClient, runtime: Runtime, token: str) -> None:
    name = "Café « crème » — 東京 👍 \u00a0 ١٢٣ עברית"
    reply = post(client, "create_one_use_qr", access_token=token, **one_use_qr(item_name=name))
    assert reply.status_code == 200, reply.text
    status = get(client, "is_valid", access_token=token, trid=reply.json()["trid"])
    assert status.json()["desc"] == name


def test_a_nul_in_is_valid_trid_is_a_400(client: TestClient, token: str) -> None:
    # The token is cached after get_token, so on SQLite this takes the fast read.
    for _ in range(2):
        refused(get(client, "is_valid", access_token=token, trid="tr_\x00x"), "1002", "trid")
    xml_reply = get(client, "is_valid", access_token=token, trid="tr_\x00x", format="xml")
    assert xml_reply.status_code == 400
    assert ET.fromstring(xml_reply.text).findtext("return_code") == "1002"


def test_a_nul_in_get_token_is_a_400_before_any_authentication(
    client: TestClient, merchant: NewCredentials
) -> None:
    reply = get(
        client,
        "get_token",
        api_account_id=merchant.account.api_account_id + "\x00",
        api_secret_key=merchant.api_secret_key,
    )
    refused(reply, "1002", "api_account_id")


def test_control_characters_in_the_access_token_and_format_are_refused(
    client: TestClient, token: str
) -> None:
    refused(
        get(client, "is_valid", access_token=token + "\x00", trid="tr_x"), "1002", "access_token"
    )
    refused(
        get(client, "is_valid", access_token=token, trid="tr_x", format="x\x1b"), "1002", "format"
    )


@pytest.mark.parametrize("value", ["html", "xlm", " json", "json "])
def test_format_is_json_or_xml(client: TestClient, token: str, value: str) -> None:
    # Before: anything but xml meant JSON without a word, so a typo went unnoticed.
    refused(
        get(client, "is_valid", access_token=token, trid="tr_x", format=value), "1002", "format"
    )


def test_format_in_any_case(client: TestClient, token: str) -> None:
    reply = get(client, "is_valid", access_token=token, trid="tr_x", format="XML")
    assert ET.fromstring(reply.text).findtext("return_code") == "4010"
    reply = get(client, "is_valid", access_token=token, trid="tr_x", format="Json")
    assert reply.json()["return_code"] == "4010"


def test_a_field_refused_in_the_query_string_too(client: TestClient, token: str) -> None:
    reply = client.get(f"{API}/is_valid", params={"access_token": token, "trid": "tr_\x1b"})
    refused(reply, "1002", "trid")


# --- unknown fields ------------------------------------------------------------------------------


def test_an_unknown_field_is_refused_with_1007_naming_it_and_nothing_is_stored(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    # Before: currency=USD on a EUR account was silently ignored (200).
    reply = post(
        client, "send_payment_request", access_token=token, currency="USD", **valid_request()
    )
    refused(reply, "1007", "currency")
    assert counts(runtime) == (0, 0)


def test_every_unknown_field_is_named(client: TestClient, token: str) -> None:
    reply = get(client, "is_valid", access_token=token, trid="tr_x", colour="red", size="9")
    refused(reply, "1007", "colour", "size")


def test_unknown_fields_are_refused_before_authentication(client: TestClient) -> None:
    refused(get(client, "is_valid", access_token="mbt_nope", trid="tr_x", x="1"), "1007", "x")


def test_access_token_and_format_are_always_allowed(
    client: TestClient, merchant: NewCredentials
) -> None:
    reply = get(
        client,
        "get_token",
        api_account_id=merchant.account.api_account_id,
        api_secret_key=merchant.api_secret_key,
        access_token="ignored",
        format="json",
    )
    assert reply.status_code == 200, reply.text


def test_an_unknown_field_name_with_control_characters_is_named_safely(
    client: TestClient, token: str
) -> None:
    for fmt in ("json", "xml"):
        reply = client.get(
            f"{API}/is_valid",
            params={"access_token": token, "trid": "tr_x", "a\x00\u202eb": "1", "format": fmt},
        )
        assert reply.status_code == 400
        if fmt == "xml":
            message = ET.fromstring(reply.text).findtext("return_message") or ""
        else:
            message = reply.json()["return_message"]
        assert "a\\x00\\u202eb" in message


# --- declared lengths ----------------------------------------------------------------------------


def test_a_declared_length_is_enforced_before_authentication(client: TestClient) -> None:
    # Before: the handler's own check came after the token's (2002).
    reply = post(
        client,
        "send_payment_request",
        access_token="mbt_nope",
        **valid_request(item_name="x" * 256),
    )
    refused(reply, "1003", "item_name")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_every_declared_length_is_the_one_the_handler_accepts(
    client: TestClient, token: str, endpoint: Endpoint
) -> None:
    """A value of exactly max_length is never 'too long'; one more character is, naming it."""
    for declared in endpoint.inputs:
        if declared.max_length is None:
            continue
        call = post if endpoint.method == "POST" else get
        fields = {"access_token": token, declared.name: "a" * declared.max_length}
        reply = call(client, endpoint.name, **fields)
        assert reply.json()["return_code"] != "1003", (declared.name, reply.text)
        fields[declared.name] += "a"
        refused(call(client, endpoint.name, **fields), "1003", declared.name)


# --- the check itself ----------------------------------------------------------------------------


def _endpoint(*inputs: Field) -> Endpoint:
    return Endpoint("/mobip/x", "POST", "x", lambda call: {}, inputs=inputs)


def test_multiline_fields_take_tab_and_line_breaks_and_nothing_else() -> None:
    endpoint = _endpoint(Field("item_message", "string", "m", multiline=True, max_length=20))
    check_inputs(endpoint, Params({"item_message": "one\r\ntwo\tthree\n"}))
    for char in ("\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\u202e"):
        with pytest.raises(InvalidField, match="'item_message'"):
            check_inputs(endpoint, Params({"item_message": f"a{char}b"}))


def test_lone_surrogates_are_refused() -> None:
    # Strict UTF-8 decoding never yields one (tests/api/test_formdata.py), but a Params built
    # any other way must not carry one into the database or a reply.
    endpoint = _endpoint(Field("name", "string", "n"))
    for value in ("\ud800", "a\udfffb", "\udc80"):
        with pytest.raises(InvalidField, match="'name'"):
            check_inputs(endpoint, Params({"name": value}))


def test_unknown_fields_come_before_bad_characters_and_lengths() -> None:
    endpoint = _endpoint(Field("name", "string", "n", max_length=3))
    with pytest.raises(UnknownField, match="'other'"):
        check_inputs(endpoint, Params({"name": "\x00" * 9, "other": "1"}))
    with pytest.raises(FieldTooLong, match="'name'"):
        check_inputs(endpoint, Params({"name": "abcd"}))
    check_inputs(endpoint, Params({"name": "abc", "access_token": "t", "format": "xml"}))


def test_a_long_list_of_unknown_fields_gives_a_bounded_message() -> None:
    endpoint = _endpoint()
    params = Params({f"f{i}": "1" for i in range(500)})
    with pytest.raises(UnknownField) as caught:
        check_inputs(endpoint, params)
    assert "'f0'" in caught.value.message
    assert len(caught.value.message) < 2000


# --- declared ranges and enums are the handlers' ----------------------------------------------


def _accepted_request(
    client: TestClient, merchant: NewCredentials, token: str, endpoint: Endpoint, photo_url: str
) -> dict[str, Any]:
    """Fields ``endpoint`` accepts (a 200), to vary one at a time."""
    if endpoint.name == "get_token":
        return {
            "api_account_id": merchant.account.api_account_id,
            "api_secret_key": merchant.api_secret_key,
        }
    if endpoint.name == "send_payment_request":
        return {"access_token": token, **valid_request()}
    if endpoint.name == "create_one_use_qr":
        return {"access_token": token, **one_use_qr()}
    if endpoint.name == "create_reusable_qr":
        return {"access_token": token, **reusable_qr(photo_url)}
    if endpoint.name == "get_reusable_qr_list":
        return {"access_token": token}
    if endpoint.name == "get_mobip_transactions":  # partners and admins only
        partner = make_account(client.app.state.runtime, role=Role.PARTNER)
        return {"access_token": token_for(client, partner)}
    if endpoint.name == "request_invoices_payment":  # the due invoices of an imported customer
        source = {"access_token": token, "ExternalSourceId": "erp"}
        post(client, "set_external_invoices", **source, InvoicesLists=SPEC_EXAMPLE)
        return {**source, "CustomerId": "custom_1", "media": "EMAIL"}
    created = post(client, "send_payment_request", access_token=token, **valid_request()).json()
    if endpoint.name == "refund_transaction":  # a PAID transaction, paid on its page
        pay_by_card(client, urlsplit(created["url_checkout"]).path)
    return {"access_token": token, "trid": created["trid"]}


BOUNDED = [
    (endpoint, field)
    for endpoint in ENDPOINTS
    for field in endpoint.inputs
    if field.minimum is not None or field.maximum is not None or field.enum
]


def test_the_bounded_fields_are_the_ones_checked_here() -> None:
    assert {(e.name, f.name) for e, f in BOUNDED} == {
        ("get_token", "api_ttl"),
        *(
            (name, field)
            for name in ("send_payment_request", "create_one_use_qr")
            for field in ("item_amount_in_cents", "transaction_ttl", "language")
        ),
        ("send_payment_request", "tax_amount"),
        ("send_payment_request", "retry_period"),
        ("send_payment_request", "retry_attempts"),
        ("send_payment_request", "media"),
        ("create_one_use_qr", "tax_amount_in_cents"),
        ("resend", "media"),
        ("create_reusable_qr", "item_amount"),
        ("create_reusable_qr", "tax_amount"),
        ("create_reusable_qr", "language"),
        ("get_reusable_qr_list", "limit"),
        ("get_mobip_transactions", "limit"),
        ("refund_transaction", "amount_in_cents"),
        ("request_invoices_payment", "media"),
        ("request_invoices_payment", "transaction_ttl"),
    }


@pytest.mark.parametrize(
    ("endpoint", "declared"), BOUNDED, ids=[f"{e.name}.{f.name}" for e, f in BOUNDED]
)
def test_declared_ranges_and_enums_are_what_the_server_enforces(
    client: TestClient,
    merchant: NewCredentials,
    token: str,
    endpoint: Endpoint,
    declared: Field,
) -> None:
    """Each bound and each listed value is accepted; one past a bound, or another value, is not."""
    call = post if endpoint.method == "POST" else get
    with running_receiver() as photo_site:  # create_reusable_qr downloads its photo
        serve_photos(photo_site)
        fields = _accepted_request(client, merchant, token, endpoint, photo_site.url("/photo.png"))
        _check_bounds(client, call, endpoint, declared, fields)


def _check_bounds(
    client: TestClient, call: Any, endpoint: Endpoint, declared: Field, fields: dict[str, Any]
) -> None:
    accepted = [*declared.enum, *(value.lower() for value in declared.enum)]
    refused_values = ["XX"] if declared.enum else []
    if declared.minimum is not None:
        accepted.append(str(declared.minimum))
        refused_values.append(str(declared.minimum - 1))
    if declared.maximum is not None:
        accepted.append(str(declared.maximum))
        refused_values.append(str(declared.maximum + 1))
    for value in accepted:
        reply = call(client, endpoint.name, **{**fields, declared.name: value})
        assert reply.status_code == 200, (value, reply.text)
    for value in refused_values:
        reply = call(client, endpoint.name, **{**fields, declared.name: value})
        refused(reply, "1002", declared.name)


URLISH = st.tuples(
    st.sampled_from(["http://", "https://", "HTTPS://", "http:/", "ftp://", "//", ""]),
    st.text(st.sampled_from("ab.:/@?#[]%1 \t\x00\u202eé"), max_size=16),
).map("".join)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(URLISH)
def test_every_url_the_service_accepts_matches_the_declared_pattern(value: str) -> None:
    """The URL fields' declared pattern is a necessary condition of the service's URL check."""
    try:
        http_url("redirect_url", value, https_only=False)
    except InvalidField:
        return
    assert re.fullmatch(HTTP_URL_PATTERN, value), value


PHONEISH = st.text(
    st.sampled_from("+0123456789 ()-.a\t\u00a0\u202e"), max_size=18
) | st.sampled_from(["+33 6 12 34 56 78", " +1 650 253 0000", "+1 800 FLOWERS", "0033612345678"])


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(PHONEISH)
def test_every_phone_the_service_accepts_matches_the_declared_pattern(value: str) -> None:
    try:
        international_phone("customer_phone", value)
    except InvalidField:
        return
    if refused_character(value) is None:  # the input check refuses it first otherwise
        assert re.fullmatch(PHONE_PATTERN, value), value


# --- a unit of work that meets a busy SQLite -----------------------------------------------------


def test_a_unit_of_work_that_meets_a_busy_sqlite_runs_again(runtime: Runtime) -> None:
    """SQLite: "database is locked" rolls the request back and runs it again (kit/db.retry_busy);
    PostgreSQL has no such error, so the same failure there is one attempt and a 500."""
    calls: list[int] = []

    def handler(call: Call) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
        return {"attempts": str(len(calls))}

    endpoint = Endpoint("/mobip/busy_probe", "POST", "probe", handler, access=Access.ANONYMOUS)
    group_commit = GroupCommit(runtime.database, delay=0)
    route = build_route(
        endpoint, runtime, auth_endpoints.AUTHENTICATION, CapacityLimiter(2), group_commit
    )
    try:
        with TestClient(Starlette(routes=[route])) as probe:
            reply = probe.post("/api/2.0/mobip/busy_probe")
    finally:
        group_commit.close()
    if runtime.database.is_sqlite:
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"return_code": "0", "attempts": "2"}
    else:
        assert reply.status_code == 500
        assert reply.json()["return_code"] == "9001"
        assert calls == [1]


EMAILISH = st.tuples(
    st.text(st.sampled_from('ab.+"@ é'), min_size=0, max_size=66),
    st.sampled_from(["@", "@@", ""]),
    st.sampled_from(
        ["shop.example", "x.TEST", "Test", "a.localhost.", "onion", "b.invalid", "testing.com"]
    ),
).map("".join)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(EMAILISH)
def test_every_email_the_service_accepts_matches_the_declared_pattern(value: str) -> None:
    """customer_email's pattern (64 before the @, no special-use domain in any case) is a
    necessary condition of the service's e-mail rule."""
    try:
        email_address("customer_email", value, smtputf8=True)
    except InvalidField:
        return
    assert re.fullmatch(EMAIL_PATTERN, value), value
    assert len(value) <= MAX_EMAIL_CHARS or not value.isascii()


# --- a Streamed reply -----------------------------------------------------------------------------


def _streaming_probe(
    runtime: Runtime, pages: list[list[dict[str, str]]], fail_at: int | None = None
) -> tuple[Endpoint, list[Any]]:
    """An endpoint whose reply streams ``pages`` (the cursor is the next page's index); the page
    ``fail_at`` raises. ``seen`` gets (the handler's session, then each page's session)."""
    seen: list[Any] = []

    def page(session: Any, at: int) -> tuple[list[dict[str, str]], int | None]:
        seen.append(session)
        if at == fail_at:
            if at == 0:
                raise InvalidField("limit", "refused by the first page")
            raise RuntimeError("the database went away")
        return pages[at], (at + 1 if at + 1 < len(pages) else None)

    def handler(call: Call) -> Streamed:
        seen.append(call.session)
        return Streamed(fields={"count": "3"}, name="lines", start=0, page=page)

    return Endpoint("/mobip/stream_probe", "GET", "probe", handler, Access.ANONYMOUS), seen


def _serve(runtime: Runtime, endpoint: Endpoint, **client_options: Any) -> Any:
    group_commit = GroupCommit(runtime.database, delay=0)
    route = build_route(
        endpoint, runtime, auth_endpoints.AUTHENTICATION, CapacityLimiter(2), group_commit
    )
    return group_commit, TestClient(Starlette(routes=[route]), **client_options)


def test_a_streamed_reply_reads_its_later_pages_each_in_a_unit_of_work_of_its_own(
    runtime: Runtime,
) -> None:
    pages = [[{"n": "1"}, {"n": "2"}], [], [{"n": "3 <&>"}]]
    endpoint, seen = _streaming_probe(runtime, pages)
    group_commit, client = _serve(runtime, endpoint)
    try:
        with client:
            reply = client.get("/api/2.0/mobip/stream_probe")
            assert reply.status_code == 200
            assert reply.json() == {
                "return_code": "0",
                "count": "3",
                "lines": [{"n": "1"}, {"n": "2"}, {"n": "3 <&>"}],
            }
            handler_session, first, *later = seen
            assert first is handler_session  # the first page: in the handler's unit of work
            assert len(later) == 2 and len({id(s) for s in [first, *later]}) == 3
            xml = client.get("/api/2.0/mobip/stream_probe", params={"format": "xml"})
            root = ET.fromstring(xml.content)
            assert [item.findtext("n") for item in root.findall("lines/item")] == [
                "1",
                "2",
                "3 <&>",
            ]
    finally:
        group_commit.close()


def test_a_streamed_replys_error_before_the_first_byte_is_an_ordinary_reply_and_later_cuts_it(
    runtime: Runtime,
) -> None:
    endpoint, _ = _streaming_probe(runtime, [[{"n": "1"}]], fail_at=0)
    group_commit, client = _serve(runtime, endpoint)
    try:
        with client:
            refused(client.get("/api/2.0/mobip/stream_probe"), "1002", "limit")
    finally:
        group_commit.close()
    endpoint, _ = _streaming_probe(runtime, [[{"n": "1"}], [{"n": "2"}]], fail_at=1)
    group_commit, client = _serve(runtime, endpoint, raise_server_exceptions=False)
    try:
        with client:
            reply = client.get("/api/2.0/mobip/stream_probe")
    finally:
        group_commit.close()
    # The status was sent with the first page: the body stops short of a whole document.
    assert reply.status_code == 200
    assert reply.content.startswith(b'{"return_code":"0","count":"3","lines":[{"n":"1"}')
    assert not reply.content.endswith(b"]}")
