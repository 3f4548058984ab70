"""Callbacks per second delivered by one worker to a local HTTP receiver, the delay from commit to
first attempt, and a crash mode (worker processes SIGKILLed at random moments).

Run: python bench/callbacks.py [--messages 5000] [--batch 200] [--database-url URL]
     python bench/callbacks.py --crash 100 [--messages 400] [--database-url URL]

- Receiver: a separate process on 127.0.0.1 (asyncio + uvloop, HTTP/1.1 keep-alive, answers
  200 at once); it counts requests and notes the arrival time of the latency probes.
- Throughput: N callbacks committed first (a backlog), then one in-process worker (the real
  sender: per-account secret, Standard Webhooks signature, SSRF-checked client, attempt log)
  drains them; callbacks/s from the worker's start to the last message marked done.
- Latency: callbacks committed one at a time at a steady rate while the worker runs; the delay
  from each commit to its arrival at the receiver, p50/p99 (MOBIP_WORKER_POLL_SECONDS, 0.5 s by
  default, dominates it: the worker polls when idle).
- Crash: `mobip worker` processes killed with SIGKILL at random moments while delivering, then
  restarted; at the end every message must be done, every trid received, each under one
  webhook-id.
The machine's load average is printed with the figures: they are absolute, not ratios.
SQLite by default (a fresh file in a temporary folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This folder holds scripts named like modules (parser.py, qr.py): keep it off sys.path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import signal
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from multiprocessing.sharedctypes import Synchronized
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.append(str(Path(__file__).resolve().parent))  # last: for benchkit only

from benchkit import arrival_delays, done_count, free_port, load, percentile, wait_for_port

from mobip.accounts import service as accounts_service
from mobip.accounts.models import Language, Role
from mobip.config import Settings
from mobip.delivery import service
from mobip.delivery.handlers import register_all
from mobip.delivery.worker import Worker
from mobip.kit.clock import SystemClock
from mobip.kit.migrate import upgrade
from mobip.kit.runtime import Runtime

# --- the receiver process -------------------------------------------------------------------------


def receive(port: int, count: Synchronized[int], arrivals: Any, record: Any) -> None:
    """Answer 200 to every request; count them, note probes' arrival, record ids if asked."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    class Http(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].decode("latin-1")
                length = 0
                webhook_id = ""
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    lowered = name.strip().lower()
                    if lowered == "content-length":
                        length = int(value)
                    elif lowered == "webhook-id":
                        webhook_id = value.strip()
                if len(self.buffer) < end + 4 + length:
                    return
                body = self.buffer[end + 4 : end + 4 + length]
                self.buffer = self.buffer[end + 4 + length :]
                with count.get_lock():
                    count.value += 1
                trid = body.split(b"trid=", 1)[1].split(b"&", 1)[0].decode()
                if trid.startswith("lat-"):
                    arrivals.put((trid, time.time()))
                if record is not None:
                    record.put((trid, webhook_id))
                self.transport.write(reply)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_receiver(record: bool = False) -> tuple[int, Any, Synchronized[int], Any, Any]:
    ctx = multiprocessing.get_context("fork")
    port = free_port()
    count: Synchronized[int] = ctx.Value("q", 0)  # type: ignore[assignment]
    arrivals = ctx.Queue()
    records = ctx.Queue() if record else None
    process = ctx.Process(target=receive, args=(port, count, arrivals, records), daemon=True)
    process.start()
    wait_for_port(port)
    return port, process, count, arrivals, records


# --- set-up ---------------------------------------------------------------------------------------


def make_runtime(database_url: str | None, folder: Path, **settings: Any) -> Runtime:
    url = database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    upgrade(url)
    config = Settings(
        data_dir=folder,
        database_url=url,
        secret_key="bench-secret-key-" + "x" * 32,
        log_level="WARNING",
        **settings,
    )
    return Runtime.from_settings(config, SystemClock())


def make_merchant(runtime: Runtime) -> int:
    with runtime.database.transaction() as session:
        now = runtime.clock.now()
        admin, _ = accounts_service.ensure_platform_admin(session, now)
        created = accounts_service.create_account(
            session,
            name="Bench shop",
            role=Role.MERCHANT,
            parent_uid=admin.uid,
            currency="EUR",
            language=Language.EN,
            external_id=None,
            now=now,
        )
        return created.account.id


def enqueue(runtime: Runtime, account_id: int, url: str, trids: list[str]) -> list[int]:
    with runtime.database.transaction() as session:
        return [
            service.enqueue(
                session,
                kind=service.CALLBACK,
                target=url,
                payload={"trid": trid, "track_id": "t", "resp_code": "PROCESSED"},
                clock=runtime.clock,
                account_id=account_id,
                subject=trid,
                max_attempts=10_000,
            ).id
            for trid in trids
        ]


# --- throughput and latency -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def worker_running(runtime: Runtime) -> AsyncIterator[None]:
    """One worker loop with the real senders; stopped on exit, then their connections closed in
    this event loop (kept-alive connections belong to it)."""
    close_senders = register_all(runtime)
    worker = Worker.for_runtime(runtime)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        yield
    finally:
        stop.set()
        await task
        await close_senders()


async def drain(runtime: Runtime, total: int) -> float:
    started = time.perf_counter()
    async with worker_running(runtime):
        while await asyncio.to_thread(done_count, runtime) < total:
            await asyncio.sleep(0.05)
        return time.perf_counter() - started


async def latency(
    runtime: Runtime, account_id: int, url: str, probes: int, rate: float, arrivals: Any
) -> list[float]:
    committed: dict[str, float] = {}
    async with worker_running(runtime):
        for i in range(probes):
            trid = f"lat-{i}"
            await asyncio.to_thread(enqueue, runtime, account_id, url, [trid])
            committed[trid] = time.time()
            await asyncio.sleep(1 / rate)
        return await arrival_delays(arrivals, committed, probes)


def run_throughput(args: argparse.Namespace) -> None:
    port, receiver, count, arrivals, _ = start_receiver()
    url = f"http://127.0.0.1:{port}/callback?shop=bench"
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as folder:
        runtime = make_runtime(
            args.database_url,
            Path(folder),
            worker_batch_size=args.batch,
            worker_poll_seconds=args.poll,
        )
        account_id = make_merchant(runtime)
        enqueue(runtime, account_id, url, [f"tr_{i}" for i in range(args.messages)])
        elapsed = asyncio.run(drain(runtime, args.messages))
        rate = args.messages / elapsed
        print(
            f"throughput: {args.messages} callbacks in {elapsed:.2f} s = {rate:,.0f} callbacks/s "
            f"(one worker, batch {args.batch}, {runtime.database.engine.dialect.name}; "
            f"receiver saw {count.value})"
        )
        delays = asyncio.run(latency(runtime, account_id, url, args.probes, args.rate, arrivals))
        if delays:
            print(
                f"commit → first attempt: p50 {percentile(delays, 0.5) * 1000:.0f} ms, "
                f"p99 {percentile(delays, 0.99) * 1000:.0f} ms over {len(delays)} callbacks "
                f"at {args.rate:g}/s (worker poll {args.poll:g} s)"
            )
        runtime.database.dispose()
    print(f"after: {load()}")
    receiver.terminate()


# --- crash mode -----------------------------------------------------------------------------------


def run_crash(args: argparse.Namespace) -> None:
    port, receiver, count, _, records = start_receiver(record=True)
    url = f"http://127.0.0.1:{port}/callback?shop=crash"
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as folder:
        runtime = make_runtime(args.database_url, Path(folder))
        account_id = make_merchant(runtime)
        ids = enqueue(runtime, account_id, url, [f"tr_{i}" for i in range(args.messages)])
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOBIP_")}
        env.update(
            MOBIP_DATA_DIR=folder,
            MOBIP_DATABASE_URL=runtime.settings.resolved_database_url,
            MOBIP_SECRET_KEY=runtime.settings.resolved_secret_key,
            MOBIP_WORKER_LEASE_SECONDS="5",
            MOBIP_WORKER_BATCH_SIZE="8",
            MOBIP_WORKER_POLL_SECONDS="0.05",
            MOBIP_SCHEDULE_INTERVAL_SECONDS="3600",
            MOBIP_LOG_LEVEL="WARNING",
        )
        rng = random.Random(args.seed)
        started = time.perf_counter()
        kills = 0
        for _ in range(args.crash):
            seen = count.value
            process = subprocess.Popen(
                [sys.executable, "-m", "mobip", "worker"], env=env, stderr=subprocess.DEVNULL
            )
            target = seen + rng.randint(1, 6)
            while count.value < target and process.poll() is None and seen < args.messages:
                time.sleep(0.005)
            if rng.random() < 0.5:
                time.sleep(rng.random() * 0.05)  # sometimes between a send and its record
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            if done_count(runtime) == args.messages:
                break
        final = subprocess.Popen(
            [sys.executable, "-m", "mobip", "worker"], env=env, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 300
        while done_count(runtime) < args.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        final.send_signal(signal.SIGTERM)
        final.wait(60)
        received: dict[str, set[str]] = defaultdict(set)
        deliveries = 0
        while True:
            try:
                trid, webhook_id = records.get(True, 1)
            except Exception:
                break
            received[trid].add(webhook_id)
            deliveries += 1
        expected = {f"tr_{i}": {f"msg_mobip_{mid}"} for i, mid in enumerate(ids)}
        ok = received == expected and done_count(runtime) == args.messages
        print(
            f"crash: {kills} SIGKILLs over {time.perf_counter() - started:.0f} s; "
            f"{done_count(runtime)}/{args.messages} done; {deliveries} deliveries "
            f"({deliveries - len(received)} duplicates, each under its message's webhook-id); "
            f"final worker exit code {final.returncode}; "
            + ("OK: none lost" if ok else "FAILED: lost or mismatched messages")
        )
        runtime.database.dispose()
    print(f"after: {load()}")
    receiver.terminate()
    if not ok:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument(
        "--database-url",
        help="a scratch database: its tables are created and filled (default: SQLite, temp dir)",
    )
    parser.add_argument("--crash", type=int, default=0, help="crash mode: this many SIGKILLs")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    if args.crash:
        args.messages = args.messages or 400
        run_crash(args)
    else:
        args.messages = args.messages or 5000
        run_throughput(args)


if __name__ == "__main__":
    main()
