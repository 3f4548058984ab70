"""What the benches share: a scratch PostgreSQL database, a free loopback port, waiting for a
receiver, commit-to-arrival delays, the count of delivered outbox messages, percentiles, the
machine's load, the row of a PAID transaction for seeding, a real `mobip serve` on loopback and
the database a bench runs on. Not a bench itself."""

from __future__ import annotations

import asyncio
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

from mobip.accounts.service import NewCredentials
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
    media: str | None = "EMAIL",
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


def start_server(
    data_dir: Path, port: int, *, url: str | None = None, worker: bool = False
) -> subprocess.Popen[bytes]:
    """`mobip serve` on 127.0.0.1:``port`` (the database at ``url``, else SQLite in
    ``data_dir``), its stdout and stderr in data_dir's server.out and server.err (a full pipe
    would block it). The environment's MOBIP_* settings are left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOBIP_")}
    env.update(
        MOBIP_DATA_DIR=str(data_dir),
        MOBIP_HOST="127.0.0.1",
        MOBIP_PORT=str(port),
        MOBIP_ENV="development",
        MOBIP_LOG_LEVEL="WARNING",
        MOBIP_WORKER_ENABLED="true" if worker else "false",
        PYTHONUNBUFFERED="1",
    )
    if url:
        env["MOBIP_DATABASE_URL"] = url
    with (data_dir / "server.out").open("wb") as out, (data_dir / "server.err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "mobip", "serve"], env=env, stdout=out, stderr=err
        )


def wait_ready(process: subprocess.Popen[bytes], base: str, data_dir: Path) -> None:
    """Until ``/readyz`` answers 200; the server's stderr if it exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = (data_dir / "server.err").read_text(errors="replace")
            raise RuntimeError(f"the server exited with {process.returncode}:\n{err}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server was not ready after 60 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def served(
    data_dir: Path, *, url: str | None = None, worker: bool = False
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A ready `mobip serve` on a free port: (its process, its base URL); stopped after."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_server(data_dir, port, url=url, worker=worker)
    try:
        wait_ready(process, base, data_dir)
        yield process, base
    finally:
        stop_server(process)


def on_database(db: str, run: Callable[[str, Path], None]) -> None:
    """``run(url, data_dir)`` in a scratch data folder, on a scratch PostgreSQL database when
    ``db`` is a postgresql:// URL, else on a SQLite file in the data folder."""
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        if db.startswith("postgresql"):
            with ScratchPostgres(db) as url:
                run(url, data_dir)
        else:
            run(f"sqlite:///{data_dir / 'mobip.sqlite3'}", data_dir)


def rss_mb(pid: int, field: str) -> float:
    """A process's VmRSS or VmHWM (its peak) in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    """Linux: VmHWM becomes the current RSS (write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def token(client: httpx.Client, creds: NewCredentials) -> str:
    """An access token of ``creds`` (get_token, 720 minutes)."""
    reply = client.post(
        "/api/2.0/mobip/get_token",
        files={
            "api_account_id": (None, creds.account.api_account_id),
            "api_secret_key": (None, creds.api_secret_key),
            "api_ttl": (None, "720"),
        },
    )
    reply.raise_for_status()
    value: str = reply.json()["access_token"]
    return value
