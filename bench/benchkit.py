"""What the benches share: a scratch PostgreSQL database, a free loopback port, waiting for a
receiver, commit-to-arrival delays, the count of delivered outbox messages, percentiles, the
machine's load and the row of a PAID transaction for seeding. Not a bench itself."""

from __future__ import annotations

import asyncio
import os
import queue
import secrets
import socket
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, select, text

from mobip.delivery.models import OutboxMessage, OutboxStatus
from mobip.kit.runtime import Runtime
from mobip.transactions.service import compute_fee

FEE_BP, FEE_FIXED = 140, 25  # the seeded transactions' fee: 1.40 % + 0.25


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, seconds: float = 10) -> None:
    """Until something accepts connections on 127.0.0.1:``port`` (or ``seconds`` pass)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)


async def arrival_delays(
    arrivals: Any, committed: dict[str, float], count: int, seconds: float = 60
) -> list[float]:
    """Commit-to-arrival delays: the receiver puts (key, time) on ``arrivals`` (a multiprocessing
    queue), ``committed`` holds each key's commit time; until ``count`` delays or ``seconds``."""
    delays: list[float] = []
    deadline = time.monotonic() + seconds
    while len(delays) < count and time.monotonic() < deadline:
        try:
            key, at = await asyncio.to_thread(arrivals.get, True, 1.0)
        except queue.Empty:
            continue
        if key in committed:
            delays.append(at - committed[key])
    return delays


def done_count(runtime: Runtime) -> int:
    """Outbox messages delivered so far."""
    with runtime.database.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.DONE.value)
            )
            or 0
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


class ScratchPostgres:
    """A new database on the server of ``url``, dropped on exit."""

    def __init__(self, url: str) -> None:
        self.server = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.name = f"mobip_bench_{secrets.token_hex(4)}"

    def __enter__(self) -> str:
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        return f"{self.server.rpartition('/')[0]}/{self.name}"

    def __exit__(self, *_: object) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def paid_transaction_row(
    n: int,
    account_id: int,
    total: int,
    created_at: datetime,
    paid_at: datetime,
    *,
    kind: str = "payment_request",
    media: str = "EMAIL",
    **extra: Any,
) -> dict[str, Any]:
    """The `transactions` row of a PAID transaction, trid tr_bench<n>, with its fee (FEE_BP,
    FEE_FIXED), for a DriverInsert; extra sets other columns (track_id, customer_…)."""
    fee = compute_fee(total, FEE_BP, FEE_FIXED)
    return {
        "trid": f"tr_bench{n:010d}",
        "checkout_token": f"ck_bench{n:010d}{secrets.token_hex(2)}",
        "account_id": account_id,
        "kind": kind,
        "status": "PAID",
        "reason": None,
        "item_amount": total,
        "tax_amount": 0,
        "currency": "EUR",
        "item_name": "Bench item",
        "language": "EN",
        "redirect_url": "https://shop.example/back",
        "media": media,
        "retry_period_days": 0,
        "retry_attempts": 0,
        "automatic_resends": 0,
        "manual_resends": 0,
        "ttl_days": 30,
        "expires_at": created_at + timedelta(days=30),
        "is_refunded": False,
        "created_at": created_at,
        "updated_at": paid_at,
        "status_changed_at": paid_at,
        "quantity": 1,
        "refunded_amount": 0,
        "paid_at": paid_at,
        "fee_bp": FEE_BP,
        "fee_fixed": FEE_FIXED,
        "fee_variable": fee.variable,
        "fee_fixed_part": fee.fixed_part,
        "fee": fee.total,
        **extra,
    }
