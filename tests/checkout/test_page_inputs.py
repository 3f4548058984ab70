"""What the hosted page is given from outside (both databases): merchants' URLs with
internationalised hosts, stored or legacy, and checkout links that are not ours."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update
from starlette.testclient import TestClient

from checkout.support import PAID, card, csrf_of, pay_path, reload
from factories import form, make_account, make_transaction, token_for
from mobip.checkout.views import is_checkout_token
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction
from transactions.support import counts, valid_request

API = "/api/2.0/mobip"


def create(client: TestClient, runtime: Runtime, **fields: Any) -> Any:
    token = token_for(client, make_account(runtime, name="Boutique"))
    return client.post(
        f"{API}/send_payment_request", files=form(access_token=token, **valid_request(**fields))
    )


def stored(runtime: Runtime) -> Transaction:
    with runtime.database.session() as session:
        found = session.query(Transaction).one()
        session.expunge(found)
        return found


def pay(client: TestClient, transaction: Transaction) -> str:
    """Pay with the sandbox's test card; where the confirmation page leads to the merchant (its
    button and its refresh), as the page writes it."""
    page = client.get(pay_path(transaction))
    paid = client.post(
        pay_path(transaction),
        data={"csrf_token": csrf_of(page.text), **card(PAID)},
        follow_redirects=False,
    )
    assert paid.status_code == 303, paid.text
    assert paid.headers["location"].startswith(pay_path(transaction) + "?")
    confirmation = client.get(paid.headers["location"])
    assert confirmation.status_code == 200
    link = re.search(r'<a class="button" id="continue" href="([^"]+)"', confirmation.text)
    assert link
    return html.unescape(link.group(1))


# --- internationalised hosts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "ascii_origin"),
    [
        ("https://пример.рф/merci?n=ü", "https://xn--e1afmkfd.xn--p1ai"),
        ("https://例え.jp/", "https://xn--r8jz45g.jp"),
        ("https://bücher.example:8443/danke", "https://xn--bcher-kva.example:8443"),
    ],
)
def test_an_idn_redirect_url_is_stored_in_punycode_and_its_page_loads(
    client: TestClient, runtime: Runtime, given: str, ascii_origin: str
) -> None:
    reply = create(client, runtime, redirect_url=given, call_back_url=given)
    assert reply.status_code == 200, reply.text
    transaction = stored(runtime)
    assert transaction.redirect_url.startswith(ascii_origin + "/")
    assert transaction.redirect_url.isascii()
    assert transaction.call_back_url == transaction.redirect_url
    page = client.get(pay_path(transaction))
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert csp.isascii()
    assert "form-action 'self';" in csp  # the card form ends on our confirmation page
    location = pay(client, transaction)
    assert location.startswith(ascii_origin + "/") and location.isascii()
    assert f"trid={transaction.trid}" in location


@pytest.mark.parametrize(
    "url",
    [
        "https://xn--a.example/",  # an A-label that does not decode
        "https://a☃.example/",  # a code point IDNA 2008 disallows
        "https://\u05d0a.example/",  # breaks the bidi rule
    ],
)
@pytest.mark.parametrize("field", ["redirect_url", "call_back_url"])
def test_a_host_that_is_not_valid_idna_2008_is_refused_naming_the_field(
    client: TestClient, runtime: Runtime, field: str, url: str
) -> None:
    reply = create(client, runtime, **{field: url})
    assert reply.status_code == 400, reply.text
    assert reply.json()["return_code"] == "1002"
    assert f"'{field}'" in reply.json()["return_message"]
    assert counts(runtime) == (0, 0)


@pytest.mark.parametrize(
    ("legacy", "location_start"),
    [
        # Stored before URLs were normalised: converted where it is used.
        ("https://пример.рф/merci", "https://xn--e1afmkfd.xn--p1ai/merci?"),
        # Not convertible at all: the page still loads, with a percent-encoded link.
        ("https://a☃.example/merci", "https://a%E2%98%83.example/merci?"),
    ],
)
def test_a_stored_non_ascii_redirect_url_never_breaks_the_page(
    client: TestClient,
    runtime: Runtime,
    legacy: str,
    location_start: str,
) -> None:
    transaction = make_transaction(runtime, make_account(runtime).account)
    with runtime.database.transaction() as session:
        session.execute(
            update(Transaction).where(Transaction.id == transaction.id).values(redirect_url=legacy)
        )
    transaction = reload(runtime, transaction)
    page = client.get(pay_path(transaction))
    assert page.status_code == 200
    assert page.headers["content-security-policy"].isascii()
    location = pay(client, transaction)
    assert location.isascii() and location.startswith(location_start)
    # The state page's link back to the merchant is the same address.
    paid_page = client.get(pay_path(transaction))
    assert paid_page.status_code == 200
    assert location.replace("&", "&amp;") in paid_page.text


# --- checkout links that are not ours ----------------------------------------------------------


@pytest.fixture
def statements(runtime: Runtime) -> Iterator[list[str]]:
    """Every SQL statement the app runs while the test runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = runtime.database.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


NOT_TOKENS = [
    "ck_%00" + "A" * 31,  # a NUL: PostgreSQL refuses it in a text parameter
    "ck_" + "A" * 31 + "%00",
    "ck_" + "A" * 31 + "%01",
    "ck_" + "A" * 31 + "%E2%80%AE",  # U+202E, right-to-left override
    "ck_" + "A" * 31 + "%ED%A0%80",  # an encoded lone surrogate: not even UTF-8
    "ck_" + "A" * 31 + "=",
    "ck_" + "A" * 31,  # one short
    "ck_" + "A" * 33,  # one long
    "tr_" + "A" * 32,  # another kind of id
    "ck_nothing_here",
]


@pytest.mark.parametrize("path", NOT_TOKENS)
def test_a_link_that_is_not_a_checkout_token_is_a_404_without_a_query(
    client: TestClient, statements: list[str], path: str
) -> None:
    for method, url in [
        ("GET", f"/pay/{path}"),
        ("HEAD", f"/pay/{path}"),
        ("GET", f"/pay/{path}/return?session_id=x"),
        ("POST", f"/pay/{path}"),
        ("POST", f"/pay/{path}/start"),
    ]:
        reply = client.request(method, url, data={"csrf_token": "0" * 64})
        assert reply.status_code == 404, (method, url, reply.text)
        if method != "HEAD":
            assert "4011" in reply.text
        assert reply.headers["content-security-policy"].startswith("default-src 'none'")
    qr = client.get(f"/qr/{path}")
    assert qr.status_code == 404
    assert statements == []


def test_a_well_formed_unknown_token_is_looked_up_and_a_404(
    client: TestClient, statements: list[str]
) -> None:
    """Control for the test above: the recorder does see the lookup of a well-formed token."""
    reply = client.get("/pay/ck_" + "A" * 32)
    assert reply.status_code == 404 and "4011" in reply.text
    assert client.get("/qr/ck_" + "A" * 32).status_code == 404
    assert sum("checkout_token" in statement for statement in statements) == 2


def test_every_token_the_server_makes_is_of_the_format_it_accepts(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    for _ in range(50):
        token = make_transaction(runtime, merchant).checkout_token
        assert is_checkout_token(token), token
