"""get_stats at size: one merchant with 1,000,000 transactions in a month, and a partner with
1,000 merchants and 1,000,000 transactions between them, timed over HTTP against a real
`mobip serve` on SQLite or on PostgreSQL.

Run: python bench/stats.py [--db postgresql://postgres@127.0.0.1:5432/test] [--transactions N]
     [--merchants N] [--requests N]
(PostgreSQL: a scratch database is created on that server and dropped after. Without --db: a
SQLite file in a temporary folder.)

Seeding writes at the driver's level in batches: the transactions (kit/db.DriverInsert, created
and PAID with their fee) and, for each, its CREATED and PAID changes through the real observer
(stats.service.observe: the event log's insert and the daily aggregates' upsert, grouped per
batch as the group commit does). The merchant's transactions are spread over November 2026 with
one day holding 50,000 of them (100,000 events: the .gz file's goal); the partner's merchants
have 1,000 each over the month, by e-mail, SMS and one-use QR (90 aggregate rows a merchant).

Then `mobip serve` (another process) answers: get_stats for the month, --requests times per
caller, p50 and p95 (goal p50 < 100 ms); and get_stats with get_gz_file for the 100,000-event
day and for a 10,000-event day: the request's time, the download's, and the server's peak RSS
above its resident size before the request (Linux: /proc/<pid>/clear_refs resets the peak),
to see that memory stays flat however many lines (goal < 5 s).
"""

from __future__ import annotations

import argparse
import gzip
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import (
    load,
    on_database,
    paid_transaction_row,
    reset_peak,
    rss_mb,
    served,
    token,
)

from mobip.accounts import service as accounts
from mobip.accounts.models import Language, Role
from mobip.accounts.service import NewCredentials
from mobip.kit.db import Database, DriverInsert
from mobip.kit.migrate import upgrade
from mobip.stats import service as stats
from mobip.transactions.models import Transaction
from mobip.transactions.observers import Change, Happening

NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30
BIG_DAY = 15  # the merchant's 100,000-event day
SMALL_DAY = 16  # a 10,000-event day, for the memory comparison
BATCH = 10_000
CHANNELS = (("payment_request", "EMAIL"), ("payment_request", "SMS"), ("one_use_qr", None))


def _accounts(
    database: Database, merchants: int
) -> tuple[NewCredentials, NewCredentials, list[int]]:
    with database.transaction() as session:

        def make(role: Role, parent: str | None, n: int) -> NewCredentials:
            return accounts.create_account(
                session,
                name=f"Bench {role.value} {n}",
                role=role,
                parent_uid=parent,
                currency="EUR",
                language=Language.EN,
                external_id=f"bench-{role.value}-{n}",
                now=NOVEMBER - timedelta(days=1),
            )

        shop = make(Role.MERCHANT, None, 0)
        partner = make(Role.PARTNER, None, 0)
        ids = [make(Role.MERCHANT, partner.account.uid, n).account.id for n in range(merchants)]
    return shop, partner, ids


def _transaction(n: int, account_id: int, at: datetime, total: int, channel: int) -> dict[str, Any]:
    kind, media = CHANNELS[channel]
    return paid_transaction_row(
        n,
        account_id,
        total,
        at,
        at + timedelta(minutes=1),
        kind=kind,
        media=media,
        track_id=f"order-{n}",
        customer_name="Ada Lovelace",
        customer_email="ada@example.com",
    )


def _changes(row: dict[str, Any]) -> list[Change]:
    common = {
        "trid": row["trid"],
        "account_id": row["account_id"],
        "kind": row["kind"],
        "media": row["media"],
        "track_id": row["track_id"],
        "currency": row["currency"],
        "total_amount": row["item_amount"],
        "item_amount": row["item_amount"],
        "tax_amount": 0,
    }
    return [
        Change(happening=Happening.CREATED, at=row["created_at"], fee=0, **common),
        Change(happening=Happening.PAID, at=row["paid_at"], fee=row["fee"], **common),
    ]


def _moments(count: int, rng: random.Random, day: int | None = None) -> list[datetime]:
    """``count`` creation times in November (on ``day`` only when given), in order."""
    if day is not None:
        start, span = NOVEMBER + timedelta(days=day - 1), 24 * 3600 - 120
    else:
        start, span = NOVEMBER, DAYS * 24 * 3600 - 120
    return sorted(start + timedelta(seconds=rng.randrange(span)) for _ in range(count))


def seed(database: Database, transactions: int, merchants: int) -> dict[str, Any]:
    """Both scenarios; what the timing needs (credentials, the days)."""
    shop, partner, ids = _accounts(database, merchants)
    insert = DriverInsert(Transaction.__table__)  # type: ignore[arg-type]
    rng = random.Random(14)
    # The merchant: 50,000 on BIG_DAY (100,000 events), 5,000 on SMALL_DAY, the rest spread
    # over the other days.
    big, small = 50_000, 5_000
    rest = max(0, transactions - big - small)
    spread = [
        at for at in _moments(int(rest * 1.1) + 10, rng) if at.day not in (BIG_DAY, SMALL_DAY)
    ][:rest]
    shop_moments = sorted(_moments(big, rng, BIG_DAY) + _moments(small, rng, SMALL_DAY) + spread)
    plan = [(shop.account.id, at) for at in shop_moments]
    # The partner's merchants: round robin, spread over the month.
    plan += [(ids[n % len(ids)], at) for n, at in enumerate(_moments(transactions, rng))]
    started = time.perf_counter()
    for first in range(0, len(plan), BATCH):
        rows = [
            _transaction(first + i, account_id, at, rng.randint(100, 50_000), (first + i) % 3)
            for i, (account_id, at) in enumerate(plan[first : first + BATCH])
        ]
        with database.connection() as conn, conn.begin():
            insert.execute(conn, rows)
            stats.observe(conn, [change for row in rows for change in _changes(row)])
    return {
        "shop": shop,
        "partner": partner,
        "seconds": time.perf_counter() - started,
        "rows": len(plan),
    }


# --- the server ----------------------------------------------------------------------------------


def get_stats(client: httpx.Client, access_token: str, **fields: str) -> tuple[float, Any]:
    started = time.perf_counter()
    reply = client.post(
        "/api/2.0/mobip/get_stats",
        headers={"Authorization": f"Bearer {access_token}"},
        files={name: (None, value) for name, value in fields.items()},
    )
    seconds = time.perf_counter() - started
    data = reply.json()
    if data.get("return_code") != "0":
        raise RuntimeError(reply.text)
    return seconds, data


def time_month(client: httpx.Client, access_token: str, requests: int) -> tuple[float, float, Any]:
    get_stats(client, access_token, month_period="2026-11")  # warm
    times = []
    data: Any = None
    for _ in range(requests):
        seconds, data = get_stats(client, access_token, month_period="2026-11")
        times.append(seconds * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], data


def time_file(client: httpx.Client, pid: int, access_token: str, day: int) -> str:
    before = rss_mb(pid, "VmRSS")
    reset_peak(pid)
    seconds, data = get_stats(client, access_token, day=f"2026-11-{day:02d}", get_gz_file="1")
    peak = rss_mb(pid, "VmHWM")
    started = time.perf_counter()
    body = client.get(urlsplit(data["url"]).path).content
    download = time.perf_counter() - started
    lines = gzip.decompress(body).count(b"\r\n") - 1
    assert str(lines) == data["lines"], (lines, data["lines"])
    return (
        f"day 2026-11-{day:02d}: {lines:,} lines, {len(body) / 1e6:.1f} MB gzip'd, written in "
        f"{seconds:.2f} s (goal < 5 s), downloaded in {download:.2f} s; server RSS "
        f"{before:.0f} MB before, peak {peak:.0f} MB ({peak - before:+.0f} MB)"
    )


def run(url: str, data_dir: Path, transactions: int, merchants: int, requests: int) -> None:
    name = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    upgrade(url)
    database = Database(url)
    seeded = seed(database, transactions, merchants)
    database.dispose()
    print(
        f"{name}: seeded {seeded['rows']:,} transactions ({2 * seeded['rows']:,} events, through "
        f"stats.service.observe) in {seeded['seconds']:.0f} s; {load()}"
    )
    with (
        served(data_dir, url=url) as (server, base),
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        for label, creds in (
            (f"one merchant, {transactions:,} transactions", seeded["shop"]),
            (f"a partner with {merchants:,} merchants", seeded["partner"]),
        ):
            p50, p95, data = time_month(client, token(client, creds), requests)
            totals = data["stats"]["totals"]["by_currency"][0]
            print(
                f"  get_stats month, {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
                f"(goal p50 < 100 ms; {requests} requests); paid_count "
                f"{int(totals['paid_count']):,}, {len(data['stats']['days'])} days"
            )
        shop_token = token(client, seeded["shop"])
        for day in (SMALL_DAY, BIG_DAY):
            print("  get_gz_file, " + time_file(client, server.pid, shop_token, day))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", default="", help="postgresql://… (default: SQLite)")
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    on_database(
        args.db,
        lambda url, data_dir: run(url, data_dir, args.transactions, args.merchants, args.requests),
    )


if __name__ == "__main__":
    main()
