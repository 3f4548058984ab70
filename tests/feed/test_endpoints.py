"""get_mobip_transactions and set_mobip_transactions over HTTP, on SQLite and PostgreSQL: the
subtree's pending lines oldest first (a partner its own, an admin all, a merchant 403), JSON and
XML, the limit, every line without one (page after page), acknowledgement (removed, already
removed, unknown or not yours; idempotent; a later refund comes back), bad input changing
nothing, and two pullers at once."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import xml.etree.ElementTree as ET
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from billing.support import merchant
from factories import TRANSACTION, make_account, token_for
from feed.support import ack, lines, paid, pull, refund
from mobip.accounts import service as accounts
from mobip.accounts.models import Account, Language, Role
from mobip.accounts.service import NewCredentials
from mobip.feed import repository, service
from mobip.kit.runtime import Runtime
from mobip.kit.security import new_id
from mobip.transactions import repository as transactions_repository
from mobip.transactions import service as transactions


def tree(runtime: Runtime) -> tuple[NewCredentials, NewCredentials, NewCredentials]:
    """A partner, its merchant (fees 1.4 % + 25) and a stranger outside its subtree."""
    partner = make_account(runtime, role=Role.PARTNER, name="Partner")
    shop = merchant(runtime, parent=partner, name="Bakery Dupont", external_id="shop-42")
    stranger = merchant(runtime, name="Stranger")
    return partner, shop, stranger


def test_a_partner_pulls_its_subtrees_lines_oldest_first_with_every_field(
    client: TestClient, runtime: Runtime
) -> None:
    partner, shop, stranger = tree(runtime)
    first = paid(runtime, shop.account, item=1_000, tax=200, customer_phone="+33612345678")
    paid(runtime, stranger.account)
    runtime.clock.advance(minutes=5)  # type: ignore[attr-defined]
    refund(runtime, shop.account, first, 600)
    got = lines(client, token_for(client, partner))
    assert [(line["type"], line["trid"]) for line in got] == [
        ("PAYMENT", first),
        ("REFUND", first),
    ]
    payment, back = got
    assert int(payment["id_flux"]) < int(back["id_flux"])
    assert payment == {
        "id_flux": payment["id_flux"],
        "type": "PAYMENT",
        "trid": first,
        "refund_id": "",
        "track_id": "order-7",
        "merchant_name": "Bakery Dupont",
        "mobip_merchant_id": shop.account.uid,
        "external_accountid": "shop-42",
        "amount": "1200",
        "item_amount": "1000",
        "tax_amount": "200",
        "fees": "42",  # 1.4 % of 1,200 = 16.8 → 17, + 25
        "net_amount": "1158",
        "currency": "EUR",
        "customer_name": "Ada Lovelace",
        "customer_email": "ada@example.com",
        "customer_phone": "+33612345678",
        "payment_method": "",
        "event_datetime": payment["event_datetime"],
        "isRefunded": "false",  # partly refunded only
    }
    assert payment["event_datetime"].endswith("Z")
    assert back["event_datetime"] > payment["event_datetime"]
    assert (back["amount"], back["item_amount"], back["tax_amount"]) == ("-600", "-500", "-100")
    assert (back["fees"], back["net_amount"], back["refund_id"][:3]) == ("0", "-600", "rf_")
    # The feed balances: what the merchant keeps is the sum of the lines' net amounts.
    assert sum(int(line["net_amount"]) for line in got) == 1_200 - 42 - 600


def test_an_admin_pulls_every_line_and_a_merchant_is_refused(
    client: TestClient, runtime: Runtime
) -> None:
    _, shop, stranger = tree(runtime)
    admin = make_account(runtime, role=Role.ADMIN)
    trids = {paid(runtime, shop.account), paid(runtime, stranger.account)}
    assert {line["trid"] for line in lines(client, token_for(client, admin))} == trids
    for reply in (
        pull(client, token_for(client, shop)),
        ack(client, token_for(client, shop), *trids),
    ):
        assert reply.status_code == 403
        assert reply.json()["return_code"] == "3001"


def test_the_xml_reply_holds_the_same_lines(client: TestClient, runtime: Runtime) -> None:
    partner, shop, _ = tree(runtime)
    trids = [paid(runtime, shop.account, customer_name="Zoë <&>") for _ in range(3)]
    reply = pull(client, token_for(client, partner), format="xml")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(reply.content)
    assert root.findtext("return_code") == "0"
    items = root.findall("transactions_list/item")
    assert [item.findtext("trid") for item in items] == trids
    assert {item.findtext("customer_name") for item in items} == {"Zoë <&>"}
    empty = ET.fromstring(
        pull(
            client, token_for(client, make_account(runtime, role=Role.PARTNER)), format="xml"
        ).content
    )
    assert empty.find("transactions_list") is not None and not empty.findall(
        "transactions_list/item"
    )


def test_the_limit_caps_the_lines_and_is_checked(client: TestClient, runtime: Runtime) -> None:
    partner, shop, _ = tree(runtime)
    trids = [paid(runtime, shop.account) for _ in range(3)]
    token = token_for(client, partner)
    assert [line["trid"] for line in lines(client, token, limit="2")] == trids[:2]
    assert [line["trid"] for line in lines(client, token, limit="10000")] == trids
    for bad in ("0", "10001", "-1", "two", "1.5"):
        reply = pull(client, token, limit=bad)
        assert reply.status_code == 400, bad
        data = reply.json()
        assert data["return_code"] == "1002" and "limit" in data["return_message"]


def test_without_a_limit_every_line_comes_page_after_page(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "PAGE", 3)
    partner, shop, _ = tree(runtime)
    trids = [paid(runtime, shop.account, item=100 + i) for i in range(10)]
    token = token_for(client, partner)
    got = lines(client, token)
    assert [line["trid"] for line in got] == trids
    assert [line["amount"] for line in got] == [str(100 + 200 + i) for i in range(10)]
    assert [line["trid"] for line in lines(client, token, limit="7")] == trids[:7]
    assert [line["trid"] for line in lines(client, token, limit="6")] == trids[:6]  # 2 pages


def test_acknowledging_removes_lines_once_and_a_later_refund_comes_back(
    client: TestClient, runtime: Runtime
) -> None:
    partner, shop, stranger = tree(runtime)
    token = token_for(client, partner)
    one, two = paid(runtime, shop.account), paid(runtime, shop.account)
    theirs = paid(runtime, stranger.account)
    reply = ack(client, token, one, "tr_unknown", theirs, one)
    assert reply.status_code == 200
    assert reply.json() == {
        "return_code": "0",
        "removed_transactions_list": [one],
        "not_removed_list": [
            {"trid": "tr_unknown", "reason": "unknown or not yours"},
            {"trid": theirs, "reason": "unknown or not yours"},  # the same words: no oracle
        ],
    }
    assert [line["trid"] for line in lines(client, token)] == [two]
    again = ack(client, token, one).json()  # idempotent: nothing removed the second time
    assert again["removed_transactions_list"] == []
    assert again["not_removed_list"] == [{"trid": one, "reason": "already removed"}]
    refund(runtime, shop.account, one, 100)
    assert [(line["trid"], line["type"]) for line in lines(client, token)] == [
        (two, "PAYMENT"),
        (one, "REFUND"),
    ]
    assert ack(client, token, one, two).json()["removed_transactions_list"] == [one, two]
    assert lines(client, token) == []
    # The stranger's line is still there for an admin.
    admin = token_for(client, make_account(runtime, role=Role.ADMIN))
    assert [line["trid"] for line in lines(client, admin)] == [theirs]


def test_a_partner_with_hundreds_of_merchants_pulls_and_acknowledges_their_lines(
    client: TestClient, runtime: Runtime
) -> None:
    """A scope of 600 merchants: on SQLite more than an IN list takes (kit/db.among sends one JSON
    parameter), on PostgreSQL one array; the lines of the first and the last are found, a
    stranger's are not."""
    partner, shop, stranger = tree(runtime)
    with runtime.database.transaction() as session:
        others = [
            accounts.create_account(
                session,
                name=f"Shop {n}",
                role=Role.MERCHANT,
                parent_uid=partner.account.uid,
                currency="EUR",
                language=Language.EN,
                external_id=None,
                now=runtime.clock.now(),
            ).account
            for n in range(600)
        ]
    token = token_for(client, partner)
    mine = [paid(runtime, shop.account), paid(runtime, others[-1])]
    theirs = paid(runtime, stranger.account)
    assert [line["trid"] for line in lines(client, token)] == mine
    reply = ack(client, token, *mine, theirs).json()
    assert reply["removed_transactions_list"] == mine
    assert reply["not_removed_list"] == [{"trid": theirs, "reason": "unknown or not yours"}]
    assert lines(client, token) == []


def test_a_bad_trid_list_is_refused_and_removes_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    partner, shop, _ = tree(runtime)
    token = token_for(client, partner)
    trid = paid(runtime, shop.account)
    for bad, code in ((f"{trid}||x", "1002"), (f"{trid}|", "1002"), (f"{trid}|a b", "1002"),
                      ("|".join([trid] + [f"t{i}" for i in range(10_000)]), "1040")):  # fmt: skip
        reply = ack(client, token, bad)
        assert reply.status_code == 400
        data = reply.json()
        assert data["return_code"] == code and "trid_list" in data["return_message"], data
    missing = client.post(
        "/api/2.0/neosystems/set_mobip_transactions", files={"access_token": (None, token)}
    )
    assert missing.status_code == 400 and missing.json()["return_code"] == "1001"
    assert [line["trid"] for line in lines(client, token)] == [trid]


def test_two_pullers_at_once_lose_and_repeat_nothing(client: TestClient, runtime: Runtime) -> None:
    """Two accounting systems (threads) pull a page and acknowledge it, again and again, while
    payments keep coming: every trid is removed by exactly one of them, none is left."""
    partner, shop, _ = tree(runtime)
    token = token_for(client, partner)
    trids = [paid(runtime, shop.account, item=i + 1) for i in range(40)]
    removed: list[list[str]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def puller(index: int) -> None:
        try:
            start.wait()
            while True:
                page = lines(client, token, limit="7")
                if not page:
                    return
                reply: Any = ack(client, token, *(line["trid"] for line in page))
                assert reply.status_code == 200, reply.text
                removed[index] += reply.json()["removed_transactions_list"]
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=puller, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    more = [paid(runtime, shop.account, item=1_000 + i) for i in range(10)]
    for thread in threads:
        thread.join()
    assert errors == []
    done = removed[0] + removed[1]
    assert len(done) == len(set(done))  # nothing removed twice
    left = [line["trid"] for line in lines(client, token)]
    assert sorted(done + left) == sorted(trids + more)  # nothing lost


def _seed(runtime: Runtime, shop: Account, count: int) -> None:
    """``count`` PENDING transactions of ``shop`` and a PAYMENT line for each, written in bulk
    at the driver's level (the observers' path would take minutes): what a pull reads."""
    with runtime.database.transaction() as session:
        owner = session.get(Account, shop.id)
        assert owner is not None
        model = transactions.prepare_create(owner, TRANSACTION, runtime.settings, runtime.clock)
    batch = 5_000
    for start in range(0, count, batch):
        rows = []
        for _ in range(min(batch, count - start)):
            trid = new_id("tr")
            rows.append({**model.transaction, "trid": trid, "checkout_token": new_id("ck")})
        with runtime.database.transaction() as session:
            conn = session.connection()
            transactions_repository.insert_created(conn, rows)
            repository.add_lines(
                conn,
                [
                    {
                        "account_id": shop.id,
                        "trid": row["trid"],
                        "type": "PAYMENT",
                        "refund_id": None,
                        "amount": 1_500,
                        "item_amount": 1_250,
                        "tax_amount": 250,
                        "fee": 0,
                        "net": 1_500,
                        "currency": "EUR",
                        "event_at": runtime.clock.now(),
                        "acked_at": None,
                    }
                    for row in rows
                ],
            )


def _peak_of_a_pull(app: Any, token: str) -> tuple[int, int, int]:
    """Pull every line through the ASGI app itself, the body counted and dropped as it comes
    (a test client would keep it whole): (status, lines, peak bytes traced during the pull)."""
    received: dict[str, Any] = {"status": 0, "lines": 0, "tail": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            received["status"] = message["status"]
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            received["lines"] += body.count(b'"id_flux"')
            received["tail"] = (received["tail"] + body)[-2:]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/2.0/neosystems/get_mobip_transactions",
        "raw_path": b"/api/2.0/neosystems/get_mobip_transactions",
        "root_path": "",
        "query_string": f"access_token={token}".encode(),
        "headers": [(b"host", b"testserver")],
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 80),
    }
    gc.collect()
    tracemalloc.start()
    try:
        anyio.run(app, scope, receive, send)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received["tail"] == b"]}"  # the whole reply went out
    return received["status"], received["lines"], peak


def test_a_pull_of_every_line_takes_the_same_memory_for_10000_lines_as_for_1000(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test of memory's shape (tracemalloc's peak), not of time: ten times the lines (10 and
    100 pages of 100) may not take anything like ten times the memory."""
    monkeypatch.setattr(service, "PAGE", 100)
    partner, shop, _ = tree(runtime)
    token = token_for(client, partner)
    app = client.app
    _seed(runtime, shop.account, 1_000)
    status, count, small = _peak_of_a_pull(app, token)
    assert (status, count) == (200, 1_000)
    _seed(runtime, shop.account, 9_000)
    status, count, large = _peak_of_a_pull(app, token)
    assert (status, count) == (200, 10_000)
    assert large < 1.5 * small, (small, large)
