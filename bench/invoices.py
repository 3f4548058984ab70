"""Issuing a month's fee invoices: 1,000 merchants, 1,000,000 PAID transactions, on SQLite and on
PostgreSQL, with the time and the peak memory of the issuing alone.

Run: python bench/invoices.py [--merchants N] [--transactions N] [--postgres URL]
(PostgreSQL: a scratch database is created on that server and dropped after; default
postgresql://postgres@127.0.0.1:5432/test when it answers; --no-postgres skips it.)

The transactions are written at the driver's level in batches (kit/db.DriverInsert: the
driver's executemany), as already PAID with their fee, paid_at spread over January 2026. The
issuing then runs in a fresh process (its peak RSS is the issuing's, not the loading's):
billing.service.issue_due_months at 1 February 2026 + 1 hour, which sums every merchant's fees
with one grouped query (transactions.service.fee_totals) and writes the 1,000 invoices.
Goal (issue 13): under 30 s and under 200 MB.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchkit import ScratchPostgres, paid_transaction_row
from sqlalchemy import func, select

from mobip.accounts import service as accounts
from mobip.accounts.models import Language, Role
from mobip.billing import service as billing
from mobip.billing.models import Invoice
from mobip.config import Settings
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database, DriverInsert
from mobip.kit.migrate import upgrade
from mobip.transactions.models import Transaction

JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
ISSUE_AT = datetime(2026, 2, 1, 1, 0, tzinfo=UTC)
BATCH = 20_000


def load(url: str, merchants: int, transactions: int) -> float:
    """Merchants (created 1 January) and their PAID transactions; seconds taken."""
    started = time.perf_counter()
    database = Database(url)
    with database.transaction() as session:
        ids = [
            accounts.create_account(
                session,
                name=f"Merchant {n}",
                role=Role.MERCHANT,
                parent_uid=None,
                currency="EUR",
                language=Language.EN,
                external_id=f"m-{n}",
                now=JANUARY,
            ).account.id
            for n in range(merchants)
        ]
    insert = DriverInsert(Transaction.__table__)  # type: ignore[arg-type]
    rng = random.Random(13)
    month = 31 * 24 * 3600
    done = 0
    while done < transactions:
        rows = []
        for n in range(done, min(done + BATCH, transactions)):
            total = rng.randint(100, 50_000)
            paid_at = JANUARY + timedelta(seconds=rng.randrange(month))
            rows.append(paid_transaction_row(n, ids[n % merchants], total, paid_at, paid_at))
        with database.connection() as conn, conn.begin():
            insert.execute(conn, rows)
        done += len(rows)
    database.dispose()
    return time.perf_counter() - started


def issue(url: str, data_dir: str, report: Any) -> None:
    """In a fresh process: the month's issuing, timed; its peak RSS; the invoices' check."""
    settings = Settings(data_dir=Path(data_dir), database_url=url, secret_key="b" * 48)
    database = Database(url)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with database.transaction(immediate=True) as session:
        issued = billing.issue_due_months(session, settings, ManualClock(ISSUE_AT))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with database.session() as session:
        count, excl = session.execute(select(func.count(), func.sum(Invoice.amount_excl_tax))).one()
        fees = session.scalar(select(func.sum(Transaction.fee)))
    database.dispose()
    report.put((len(issued.numbers), seconds, before / 1024, peak / 1024, count, excl, fees))


def run(name: str, url: str, data_dir: str, merchants: int, transactions: int) -> None:
    upgrade(url)
    loading = load(url, merchants, transactions)
    context = multiprocessing.get_context("spawn")
    report = context.Queue()
    child = context.Process(target=issue, args=(url, data_dir, report))
    child.start()
    issued, seconds, rss_before, rss_peak, count, excl, fees = report.get(timeout=600)
    child.join()
    assert issued == count == merchants, (issued, count)
    assert excl == fees, (excl, fees)  # every PAID fee on exactly one invoice
    print(
        f"{name:10s} loaded {transactions:,} PAID transactions of {merchants:,} merchants in "
        f"{loading:.1f} s; issued {issued:,} invoices in {seconds:.2f} s "
        f"(goal < 30 s); peak RSS {rss_peak:.0f} MB, {rss_peak - rss_before:+.0f} MB while "
        f"issuing (goal < 200 MB); fees invoiced {excl:,} = fees paid {fees:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", type=int, default=1_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        run("SQLite", url, folder, args.merchants, args.transactions)
        if not args.no_postgres:
            with ScratchPostgres(args.postgres) as pg_url:
                run("PostgreSQL", pg_url, folder, args.merchants, args.transactions)


if __name__ == "__main__":
    main()
