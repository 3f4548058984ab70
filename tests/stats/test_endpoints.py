"""get_stats over HTTP: the month's figures by day, currency and media (JSON and XML), the
local days of MOBIP_TIMEZONE, refunds counted on their own day, the scope of merchants, partners
and admins, every input error, and the .gz file: its CSV, its 24-hour link, its deletion."""

from __future__ import annotations

import csv
import gzip
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from factories import make_account, token_for
from mobip.accounts.models import Role
from mobip.app import create_app
from mobip.config import Settings
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime
from mobip.stats import service, tasks
from mobip.stats.models import StatsDaily, StatsEvent, StatsFile
from stats.support import History

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def get_stats(client: TestClient, token: str, **fields: str) -> Any:
    return client.get("/api/2.0/mobip/get_stats", params={"access_token": token, **fields})


def ok(reply: Any) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    assert data["return_code"] == "0", data
    stats: dict[str, Any] = data["stats"]
    return stats


def only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


def figures(item: dict[str, Any], *names: str) -> dict[str, str]:
    return {name: item[name] for name in names}


def test_a_month_by_day_currency_and_media(client: TestClient, runtime: Runtime) -> None:
    runtime.settings.default_fee_fixed = 30
    shop = make_account(runtime)
    history = History(runtime)
    paid = history.create(shop.account, NOV.replace(day=3, hour=9))  # 1500 EMAIL
    history.pay(paid, NOV.replace(day=3, hour=10))
    sms = history.create(
        shop.account,
        NOV.replace(day=3, hour=11),
        media="SMS",
        customer_phone="+33612345678",
        item_amount=800,
        tax_amount=200,
    )
    history.cancel(sms, NOV.replace(day=4, hour=8))
    history.refund(paid, 400, NOV.replace(day=5, hour=12))  # a later day: counted that day
    declined = history.create(shop.account, NOV.replace(day=5, hour=13))
    history.deny(declined, NOV.replace(day=5, hour=14))
    failed = history.create(shop.account, NOV.replace(day=5, hour=15))
    history.fail(failed, NOV.replace(day=5, hour=16))
    expiring = history.create(shop.account, NOV.replace(day=6), ttl_days=1)
    history.expire(expiring, NOV.replace(day=8))
    history.create(shop.account, datetime(2026, 12, 1, tzinfo=UTC))  # next month: not counted

    stats = ok(get_stats(client, token_for(client, shop), month_period="2026-11"))
    assert stats["month_period"] == "2026-11"
    assert [d["day"] for d in stats["days"]] == [
        "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06", "2026-11-08",
    ]  # fmt: skip
    third = only(stats["days"][0]["by_currency"])
    assert third["currency"] == "EUR"
    assert figures(third, "created_count", "created_amount", "paid_count", "paid_amount") == {
        "created_count": "2",
        "created_amount": "2500",
        "paid_count": "1",
        "paid_amount": "1500",
    }
    assert figures(third, "fees", "net_amount", "refunded_count") == {
        "fees": "30",
        "net_amount": "1470",
        "refunded_count": "0",
    }
    email, sms_media = third["by_media"]
    assert (email["media"], email["created_count"], email["paid_amount"]) == ("EMAIL", "1", "1500")
    assert (sms_media["media"], sms_media["created_amount"], sms_media["paid_count"]) == (
        "SMS",
        "1000",
        "0",
    )
    fourth = only(stats["days"][1]["by_currency"])
    assert (fourth["cancelled_count"], only(fourth["by_media"])["media"]) == ("1", "SMS")
    fifth = only(stats["days"][2]["by_currency"])
    assert figures(fifth, "refunded_count", "refunded_amount", "denied_count", "error_count") == {
        "refunded_count": "1",
        "refunded_amount": "400",
        "denied_count": "1",
        "error_count": "1",
    }
    assert only(stats["days"][4]["by_currency"])["expired_count"] == "1"
    totals = only(stats["totals"]["by_currency"])
    assert figures(
        totals,
        "created_count", "created_amount", "paid_count", "paid_amount", "fees", "net_amount",
        "refunded_count", "refunded_amount", "cancelled_count", "expired_count", "denied_count",
        "error_count",
    ) == {
        "created_count": "5", "created_amount": "7000", "paid_count": "1",
        "paid_amount": "1500", "fees": "30", "net_amount": "1470", "refunded_count": "1",
        "refunded_amount": "400", "cancelled_count": "1", "expired_count": "1",
        "denied_count": "1", "error_count": "1",
    }  # fmt: skip
    assert "day_stats" not in stats
    # Every figure is a string of an integer (no float anywhere).
    for value in totals.values():
        if isinstance(value, str) and value != "EUR":
            assert value.lstrip("-").isdigit()

    with_day = ok(
        get_stats(client, token_for(client, shop), month_period="2026-11", day="2026-11-05")
    )
    assert with_day["day_stats"] == stats["days"][2]
    quiet = ok(get_stats(client, token_for(client, shop), day="2026-11-07"))
    assert quiet["month_period"] == "2026-11"  # the month of day when month_period is empty
    assert quiet["day_stats"] == {"day": "2026-11-07", "by_currency": []}


def test_the_current_month_by_default_and_an_empty_month(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    shop = make_account(runtime)
    History(runtime).create(shop.account, NOV.replace(day=20))
    clock.set(NOV.replace(day=25))
    stats = ok(get_stats(client, token_for(client, shop)))
    assert stats["month_period"] == "2026-11"
    assert only(stats["totals"]["by_currency"])["created_count"] == "1"
    empty = ok(get_stats(client, token_for(client, shop), month_period="2026-10"))
    assert empty == {"month_period": "2026-10", "days": [], "totals": {"by_currency": []}}


def test_a_payment_at_23_30_utc_counts_on_the_next_day_in_paris(
    settings: Settings, database: Database, clock: ManualClock
) -> None:
    paris = Runtime(settings.model_copy(update={"timezone": "Europe/Paris"}), database, clock)
    shop = make_account(paris)
    history = History(paris)
    trid = history.create(shop.account, datetime(2026, 11, 30, 22, 0, tzinfo=UTC))  # 23:00 CET
    history.pay(trid, datetime(2026, 11, 30, 23, 30, tzinfo=UTC))  # 00:30 on 1 December
    with database.session() as session:
        november = service.month_totals(session, [shop.account.id], "2026-11")
        december = service.month_totals(session, [shop.account.id], "2026-12")
        days = [event["day"] for event in service.events_of(session, [shop.account.id])]
    assert days == ["2026-11-30", "2026-12-01"]
    assert (november["EUR"].created_count, november["EUR"].paid_count) == (1, 0)
    assert (december["EUR"].created_count, december["EUR"].paid_count) == (0, 1)
    assert december["EUR"].paid_amount == 1500
    with TestClient(create_app(paris)) as client:
        stats = ok(get_stats(client, token_for(client, shop), month_period="2026-12"))
    assert [d["day"] for d in stats["days"]] == ["2026-12-01"]


def test_xml_reply(client: TestClient, runtime: Runtime) -> None:
    shop = make_account(runtime)
    History(runtime).create(shop.account, NOV.replace(day=2))
    reply = get_stats(client, token_for(client, shop), month_period="2026-11", format="xml")
    assert reply.status_code == 200
    root = ET.fromstring(reply.text)
    assert root.findtext("return_code") == "0"
    assert root.findtext("stats/month_period") == "2026-11"
    assert root.findtext("stats/days/item/day") == "2026-11-02"
    item = root.find("stats/totals/by_currency/item")
    assert item is not None
    assert (item.findtext("currency"), item.findtext("created_amount")) == ("EUR", "1500")
    assert item.findtext("by_media/item/media") == "EMAIL"
    refused = get_stats(client, token_for(client, shop), month_period="2026-13", format="xml")
    assert refused.status_code == 400
    assert ET.fromstring(refused.text).findtext("return_code") == "1030"


def test_merchants_partners_and_admins_count_their_scope(
    client: TestClient, runtime: Runtime
) -> None:
    admin = make_account(runtime, role=Role.ADMIN)
    partner = make_account(runtime, role=Role.PARTNER, parent=admin)
    shop = make_account(runtime, parent=partner)
    dollar_shop = make_account(runtime, parent=partner, currency="USD")
    stranger = make_account(runtime, parent=admin)
    loner = make_account(runtime)  # a top-level merchant: below no one, an admin still sees it
    history = History(runtime)
    history.create(loner.account, NOV.replace(day=2), item_amount=100, tax_amount=0)
    history.create(shop.account, NOV.replace(day=2))
    history.create(dollar_shop.account, NOV.replace(day=2), item_amount=700)
    history.create(stranger.account, NOV.replace(day=2), item_amount=9000, tax_amount=0)

    def totals(creds: Any, **fields: str) -> dict[str, str]:
        stats = ok(get_stats(client, token_for(client, creds), month_period="2026-11", **fields))
        return {i["currency"]: i["created_amount"] for i in stats["totals"]["by_currency"]}

    assert totals(shop) == {"EUR": "1500"}
    assert totals(stranger) == {"EUR": "9000"}
    assert totals(partner) == {"EUR": "1500", "USD": "950"}  # by_currency: several currencies
    assert totals(partner, uid=dollar_shop.account.uid) == {"USD": "950"}
    assert totals(admin) == {"EUR": "10600", "USD": "950"}
    assert totals(admin, uid=partner.account.uid) == {"EUR": "1500", "USD": "950"}
    assert totals(shop, uid=shop.account.uid) == {"EUR": "1500"}
    # Not below the caller (a merchant: anyone but itself): the accounts' 404.
    for caller, uid in (
        (partner, stranger.account.uid),
        (shop, partner.account.uid),
        (shop, dollar_shop.account.uid),
        (partner, "acc_unknown"),
    ):
        refused = get_stats(client, token_for(client, caller), uid=uid)
        assert (refused.status_code, refused.json()["return_code"]) == (404, "4002")


@pytest.mark.parametrize(
    ("fields", "code", "named"),
    [
        ({"month_period": "2026-13"}, "1030", "month_period"),
        ({"month_period": "2026-1"}, "1030", "month_period"),
        ({"month_period": "2026/11"}, "1030", "month_period"),
        ({"month_period": "0000-01"}, "1030", "month_period"),
        ({"month_period": "Nov 2026"}, "1003", "month_period"),
        ({"day": "2026-11-31"}, "1031", "day"),
        ({"day": "2026/11/03"}, "1031", "day"),
        ({"month_period": "2026-11", "day": "2026-12-01"}, "1032", "day"),
        ({"get_gz_file": "1"}, "1033", "day"),
        ({"get_gz_file": "on", "month_period": "2026-11"}, "1033", "day"),
    ],
)
def test_bad_inputs_name_the_field_and_write_nothing(
    client: TestClient, runtime: Runtime, fields: dict[str, str], code: str, named: str
) -> None:
    shop = make_account(runtime)
    History(runtime).create(shop.account, NOV.replace(day=2))
    reply = get_stats(client, token_for(client, shop), **fields)
    assert (reply.status_code, reply.json()["return_code"]) == (400, code)
    assert f"'{named}'" in reply.json()["return_message"]
    with runtime.database.session() as session:
        assert session.scalar(select(func.count()).select_from(StatsFile)) == 0


def _download(client: TestClient, url: str) -> Any:
    return client.get(urlsplit(url).path)


def _csv(body: bytes) -> list[dict[str, str]]:
    text = gzip.decompress(body).decode("utf-8")
    assert text.endswith("\r\n")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_gz_file_of_a_day_and_its_24_hour_link(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    runtime.settings.default_fee_fixed = 30
    partner = make_account(runtime, role=Role.PARTNER)
    shop = make_account(runtime, parent=partner, external_id="shop-42")
    other = make_account(runtime, parent=partner)
    stranger = make_account(runtime)
    history = History(runtime)
    paid = history.create(
        shop.account, NOV.replace(day=3, hour=9), customer_name='Ada "the Countess", Lovelace'
    )
    history.pay(paid, NOV.replace(day=3, hour=10))
    history.refund(paid, 500, NOV.replace(day=3, hour=11))
    history.create(other.account, NOV.replace(day=3, hour=12), track_id="line\nbreak")
    history.create(shop.account, NOV.replace(day=4))  # another day
    history.create(stranger.account, NOV.replace(day=3))  # not the partner's
    clock.set(NOV.replace(day=10))

    reply = get_stats(client, token_for(client, partner), day="2026-11-03", get_gz_file="true")
    data = reply.json()
    assert data["return_code"] == "0", data
    assert {"url", "expires_at", "lines"} <= set(data)
    assert data["url"].startswith(f"{runtime.settings.resolved_base_url}/stats/sf_")
    assert data["lines"] == "4"
    assert data["expires_at"] == "2026-11-11T00:00:00Z"
    download = _download(client, data["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/gzip"
    rows = _csv(download.content)
    assert [(r["event"], r["trid"]) for r in rows[:3]] == [
        ("CREATED", paid), ("PAID", paid), ("REFUNDED", paid),
    ]  # fmt: skip
    created, payment, refund, other_line = rows
    assert list(created) == list(service.HEADER)
    assert created["customer_name"] == 'Ada "the Countess", Lovelace'  # RFC 4180 quoting
    assert created["customer_email"] == "ada@example.com"
    assert (created["merchant_uid"], created["merchant_external_id"]) == (
        shop.account.uid,
        "shop-42",
    )
    assert (created["time"], created["day"], created["status"]) == (
        "2026-11-03T09:00:00Z",
        "2026-11-03",
        "PAID",
    )
    assert (payment["amount"], payment["fee"], payment["net_amount"]) == ("1500", "30", "1470")
    assert (refund["amount"], refund["fee"], refund["net_amount"]) == ("500", "0", "-500")
    assert refund["refund_id"] and refund["media"] == "EMAIL"
    assert (other_line["track_id"], other_line["merchant_uid"]) == (
        "line\nbreak",
        other.account.uid,
    )

    # A merchant's file is its own lines only.
    mine = get_stats(client, token_for(client, shop), day="2026-11-03", get_gz_file="1").json()
    assert [r["trid"] for r in _csv(_download(client, mine["url"]).content)] == [paid] * 3

    # Altered token or id: 404; the token is stored only as a hash.
    path = urlsplit(data["url"]).path
    file_id, token = path.split("/")[2], path.split("/")[3].removesuffix(".csv.gz")
    assert client.get(f"/stats/{file_id}/{token[:-1]}x.csv.gz").status_code == 404
    assert client.get(f"/stats/sf_nothere/{token}.csv.gz").status_code == 404
    with runtime.database.session() as session:
        stored = session.scalars(select(StatsFile).where(StatsFile.file_id == file_id)).one()
    assert token not in stored.token_hash and len(stored.token_hash) == 64

    # 24 hours later the link answers 410; the worker's job deletes the file and its row.
    clock.advance(hours=23, minutes=59)
    assert _download(client, data["url"]).status_code == 200
    assert tasks.delete_expired(runtime) == 0
    clock.advance(minutes=1)
    gone = _download(client, data["url"])
    assert gone.status_code == 410
    folder = service.files_folder(runtime.settings)
    assert (folder / stored.path).exists()
    assert tasks.delete_expired(runtime) == 2
    assert not (folder / stored.path).exists()
    assert [p.name for p in folder.iterdir()] == []
    assert _download(client, data["url"]).status_code == 404


def test_an_empty_day_gives_a_file_with_only_the_header(
    client: TestClient, runtime: Runtime
) -> None:
    shop = make_account(runtime)
    data = get_stats(client, token_for(client, shop), day="2026-11-03", get_gz_file="1").json()
    assert (data["return_code"], data["lines"]) == ("0", "0")
    body = gzip.decompress(_download(client, data["url"]).content).decode()
    assert body == ",".join(service.HEADER) + "\r\n"


def test_each_event_is_in_exactly_one_day_and_the_aggregates_add_up(
    runtime: Runtime,
) -> None:
    shop = make_account(runtime)
    history = History(runtime)
    start = datetime(2026, 10, 31, 20, tzinfo=UTC)
    for hour in range(0, 60, 7):
        trid = history.create(shop.account, start + timedelta(hours=hour))
        history.pay(trid, start + timedelta(hours=hour + 3))
    with runtime.database.session() as session:
        events = session.scalars(select(StatsEvent)).all()
        rows = session.scalars(select(StatsDaily)).all()
        october = service.month_totals(session, [shop.account.id], "2026-10")["EUR"]
        november = service.month_totals(session, [shop.account.id], "2026-11")["EUR"]
    assert len(events) == 18
    for event in events:
        assert event.day == event.at.date().isoformat()  # UTC here
    assert october.created_count + november.created_count == 9
    assert october.paid_count + november.paid_count == 9
    own = [r for r in rows if r.account_id == shop.account.id]
    assert sum(r.created_count + r.paid_count for r in own) == 18
    # Each row counts a subtree: the shop's figures are in its own rows and in each ancestor's.
    assert len(rows) % len(own) == 0


def test_the_file_reads_the_day_page_by_page_without_losing_a_line(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "PAGE", 2)  # 7 events of one shop: pages of 2, 2, 2, 1
    partner = make_account(runtime, role=Role.PARTNER)
    shops = [make_account(runtime, parent=partner) for _ in range(2)]
    history = History(runtime)
    made = []
    for hour in range(7):
        trid = history.create(shops[hour % 2].account, NOV.replace(day=3, hour=hour))
        made.append((shops[hour % 2].account.uid, trid))
    history.pay(made[0][1], NOV.replace(day=3, hour=20))
    data = get_stats(client, token_for(client, partner), day="2026-11-03", get_gz_file="1").json()
    rows = _csv(_download(client, data["url"]).content)
    assert data["lines"] == "8" and len(rows) == 8
    # By merchant (in account order), then in event order; every event once.
    first, second = shops[0].account.uid, shops[1].account.uid
    assert [r["merchant_uid"] for r in rows] == [first] * 5 + [second] * 3
    assert sorted(int(r["event_id"]) for r in rows) == sorted({int(r["event_id"]) for r in rows})
    assert [r["trid"] for r in rows if r["event"] == "CREATED"] == [
        trid for uid, trid in sorted(made, key=lambda m: m[0] != first)
    ]
