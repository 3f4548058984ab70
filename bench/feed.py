"""The partner feed over HTTP: a partner whose merchants have N pending lines (default 200,000),
on SQLite or on PostgreSQL, against a real `mobip serve` (another process).

Run: python bench/feed.py [--db postgresql://…] [--lines N] [--merchants N] [--requests N]
(PostgreSQL: a scratch database is created on that server and dropped after. Without --db: a
SQLite file in a temporary folder.)

The transactions (PENDING, as the create endpoints write them) and one PAYMENT line each are
written in bulk through their owners' repositories (transactions' insert_created, feed's
add_lines); the observer's path is the tests'. Then it times, from the partner's side:
get_mobip_transactions with limit=10000 (p50 of --requests), the pull of every line without a
limit (streamed: time, lines, MB sent, and the server's peak RSS over its RSS before the pull —
the constant-memory claim), and set_mobip_transactions of 10,000 trids. Prints its figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchkit import load, on_database, percentile, reset_peak, rss_mb, served, token

from mobip.accounts import service as accounts
from mobip.accounts.models import Language, Role
from mobip.config import Settings
from mobip.feed import repository as feed_repository
from mobip.kit.clock import SystemClock
from mobip.kit.db import Database
from mobip.kit.migrate import upgrade
from mobip.kit.security import new_id
from mobip.transactions import repository as transactions_repository
from mobip.transactions import service as transactions
from mobip.transactions.models import TransactionKind

BATCH = 10_000


def seed(url: str, lines: int, merchants: int) -> dict[str, Any]:
    """A partner, its merchants, and ``lines`` PAID-looking transactions with a pending line."""
    started = time.perf_counter()
    database = Database(url)
    settings = Settings(database_url=url, secret_key="bench-" + "x" * 40)
    clock = SystemClock()
    with database.transaction() as session:
        now = clock.now()
        partner = accounts.create_account(
            session, name="Partner", role=Role.PARTNER, parent_uid=None, currency="EUR",
            language=Language.EN, external_id=None, now=now,
        )  # fmt: skip
        shops = [
            accounts.create_account(
                session, name=f"Merchant {n}", role=Role.MERCHANT,
                parent_uid=partner.account.uid, currency="EUR", language=Language.EN,
                external_id=f"ext-{n}", now=now,
            ).account
            for n in range(merchants)
        ]  # fmt: skip
        models = [
            transactions.prepare_create(shop, _request(), settings, clock).transaction
            for shop in shops
        ]
    for start in range(0, lines, BATCH):
        rows = []
        for n in range(start, min(lines, start + BATCH)):
            model = models[n % merchants]
            rows.append({**model, "trid": new_id("tr"), "checkout_token": new_id("ck")})
        with database.transaction() as session:
            conn = session.connection()
            transactions_repository.insert_created(conn, rows)
            feed_repository.add_lines(conn, [_line(row) for row in rows])
    database.dispose()
    return {"partner": partner, "seconds": time.perf_counter() - started}


def _request() -> transactions.NewTransaction:
    return transactions.NewTransaction(
        kind=TransactionKind.PAYMENT_REQUEST,
        item_amount=1_250, tax_amount=250, item_name="Blue mug",
        redirect_url="https://shop.example/thanks", call_back_url=None, track_id="order-7",
        customer_name="Ada Lovelace", customer_email="ada@example.com", customer_phone=None,
        media="EMAIL", language="EN", retry_period_days=0, retry_attempts=0, ttl_days=30,
    )  # fmt: skip


def _line(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": row["account_id"], "trid": row["trid"], "type": "PAYMENT",
        "refund_id": None, "amount": 1_500, "item_amount": 1_250, "tax_amount": 250,
        "fee": 46, "net": 1_454, "currency": "EUR", "event_at": row["created_at"],
        "acked_at": None,
    }  # fmt: skip


GET = "/api/2.0/neosystems/get_mobip_transactions"
SET = "/api/2.0/neosystems/set_mobip_transactions"


def run(url: str, data_dir: Path, lines: int, merchants: int, requests: int) -> None:
    name = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    upgrade(url)
    seeded = seed(url, lines, merchants)
    print(f"{name}: seeded {lines:,} lines of {merchants:,} merchants in {seeded['seconds']:.0f} s")
    print(f"  {load()}")
    with (
        served(data_dir, url=url) as (server, base),
        httpx.Client(base_url=base, timeout=600) as client,
    ):
        auth = {"Authorization": f"Bearer {token(client, seeded['partner'])}"}
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            reply = client.get(GET, params={"limit": "10000"}, headers=auth)
            times.append(time.perf_counter() - started)
            reply.raise_for_status()
        page = reply.json()["transactions_list"]
        print(
            f"  get_mobip_transactions limit=10000: p50 {percentile(times, 0.5) * 1000:.0f} ms"
            f", p95 {percentile(times, 0.95) * 1000:.0f} ms ({len(page):,} lines)"
        )
        before = rss_mb(server.pid, "VmRSS")
        reset_peak(server.pid)
        started = time.perf_counter()
        sent = counted = 0
        with client.stream("GET", GET, headers=auth) as streamed:
            for chunk in streamed.iter_bytes():
                sent += len(chunk)
                counted += chunk.count(b'"id_flux"')
        seconds = time.perf_counter() - started
        peak = rss_mb(server.pid, "VmHWM")
        print(
            f"  every line, streamed: {counted:,} lines, {sent / 1e6:.0f} MB in "
            f"{seconds:.1f} s; server RSS {before:.0f} MB before, peak {peak:.0f} MB"
        )
        trids = "|".join(line["trid"] for line in page)
        started = time.perf_counter()
        acked = client.post(SET, files={"trid_list": (None, trids)}, headers=auth)
        seconds = time.perf_counter() - started
        removed = len(json.loads(acked.content)["removed_transactions_list"])
        print(f"  set_mobip_transactions of {removed:,} trids: {seconds * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", default="", help="postgresql://… (default: SQLite)")
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    on_database(
        args.db, lambda url, data_dir: run(url, data_dir, args.lines, args.merchants, args.requests)
    )


if __name__ == "__main__":
    main()
