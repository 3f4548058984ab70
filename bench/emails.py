"""E-mails per second delivered by one worker to a local SMTP receiver, and the delay from commit
to delivery.

Run: python bench/emails.py [--messages 2000] [--database-url URL] [--latency 200]

- Receiver: aiosmtpd in a separate process on 127.0.0.1 (answers 250 at once, counts messages).
- Baseline (same run): aiosmtplib sending one pre-built e-mail of the same size, 50 at a time,
  one SMTP session per message as the worker does: the SMTP floor of this machine.
- Throughput: N payment requests committed first (a backlog), then one worker (the real handlers:
  load the transaction, render EN text + HTML, QR PNG, MIME, SMTP) drains them; e-mails/s from the
  worker's start to the last message marked done.
- Latency: requests committed one at a time at a steady rate while the worker runs; the delay from
  each commit to its arrival at the receiver, p50/p99 (the idle poll interval,
  MOBIP_WORKER_POLL_SECONDS, 0.5 s by default, dominates it).
Everything stays on loopback. SQLite by default (a fresh file in a temporary folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's folder comes first on sys.path when run as a script, and it holds scripts named
# like modules (parser.py, qr.py, api.py): drop it so imports find the real packages.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import dataclasses
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.append(str(Path(__file__).resolve().parent))  # last: for benchkit only

import aiosmtplib
from benchkit import arrival_delays, done_count, free_port, percentile, wait_for_port
from sqlalchemy import func, select

from mobip.accounts import service as accounts_service
from mobip.accounts.models import Language, Role
from mobip.config import Settings, SmtpSecurity
from mobip.delivery.handlers import register_all
from mobip.delivery.models import OutboxMessage, OutboxStatus
from mobip.delivery.worker import Worker
from mobip.kit.clock import SystemClock
from mobip.kit.migrate import upgrade
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions_service
from mobip.transactions.models import TransactionKind
from mobip.wiring import wire


def receive(port: int, count: Synchronized[int], arrivals: Any, stop: Any) -> None:
    """The receiver process: count messages and note each one's arrival time and Subject."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            head = envelope.content[:2000]
            marker = head.find(b"X-Bench: ")
            if marker >= 0:
                end = head.index(b"\r\n", marker)
                arrivals.put((head[marker + 9 : end].decode(), time.time()))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stop.wait()
    controller.stop()


def runtime_for(data_dir: Path, database_url: str | None, port: int) -> Runtime:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key="bench-" + "x" * 40,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security=SmtpSecurity.NONE,
        smtp_from="Bench <bench@mobip.example.com>",
        worker_enabled=False,
    )
    upgrade(settings.resolved_database_url)
    return Runtime.from_settings(settings, SystemClock())


def make_merchant(runtime: Runtime) -> Any:
    with runtime.database.transaction() as session:
        return accounts_service.create_account(
            session,
            name="Bench merchant",
            role=Role.MERCHANT,
            parent_uid=None,
            currency="EUR",
            language=Language.EN,
            external_id=None,
            now=runtime.clock.now(),
        ).account


def request(index: int) -> transactions_service.NewTransaction:
    return transactions_service.NewTransaction(
        kind=TransactionKind.PAYMENT_REQUEST,
        item_amount=1000 + index,
        tax_amount=200,
        item_name=f"Order {index}",
        redirect_url="https://shop.example.com/done",
        call_back_url=None,
        track_id=str(index),
        customer_name="Customer",
        customer_email=f"customer{index}@example.com",
        customer_phone=None,
        media="EMAIL",
        language="EN" if index % 2 else "FR",
        retry_period_days=0,
        retry_attempts=0,
        ttl_days=30,
    )


def create_requests(runtime: Runtime, merchant: Any, start: int, count: int) -> None:
    """``count`` payment requests in one transaction, written as the API's group commit does."""
    prepared = [
        transactions_service.prepare_create(
            merchant, request(index), runtime.settings, runtime.clock
        )
        for index in range(start, start + count)
    ]
    with runtime.database.transaction() as session:
        transactions_service.write_created(session.connection(), prepared)


async def baseline(port: int, messages: int) -> float:
    """aiosmtplib alone: e-mails/s of one pre-built message, 50 sessions at a time."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "bench@mobip.example.com"
    message["To"] = "customer@example.com"
    message["Subject"] = "baseline"
    message.set_content("x" * 2000)
    message.add_alternative("<p>" + "x" * 8000 + "</p>", subtype="html")
    semaphore = asyncio.Semaphore(50)

    async def one() -> None:
        async with semaphore:
            await aiosmtplib.send(message, hostname="127.0.0.1", port=port, start_tls=False)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(messages)))
    return messages / (time.perf_counter() - started)


def first_error(runtime: Runtime) -> str | None:
    with runtime.database.session() as session:
        return session.scalar(
            select(OutboxMessage.last_error).where(OutboxMessage.last_error.is_not(None)).limit(1)
        )


async def drain(runtime: Runtime, total: int) -> float:
    """Run one worker until ``total`` messages are done; seconds taken. A failed attempt stops
    the bench: its figures would be those of the retry delays, not of sending."""
    worker = Worker.for_runtime(runtime, "bench-worker")
    started = time.perf_counter()
    while True:
        await worker.run_once()
        if await asyncio.to_thread(done_count, runtime) >= total:
            return time.perf_counter() - started
        error = await asyncio.to_thread(first_error, runtime)
        if error:
            raise SystemExit(f"an e-mail failed, the bench is void: {error}")


async def latency(
    runtime: Runtime, merchant: Any, count: int, rate: float, arrivals: Any, first_index: int
) -> list[float]:
    """Commit ``count`` requests at ``rate``/s while a worker polls; commit→arrival delays."""
    worker = Worker.for_runtime(runtime, "bench-latency")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    committed: dict[str, float] = {}
    for n in range(count):
        index = first_index + n
        await asyncio.to_thread(create_requests, runtime, merchant, index, 1)
        committed[f"Order {index}"] = time.time()
        await asyncio.sleep(1 / rate)
    delays = await arrival_delays(arrivals, committed, count)
    stop.set()
    await task
    return delays


def first_attempt_share(runtime: Runtime) -> tuple[int, int]:
    """(messages done at their first attempt, messages done): arrival = first attempt only if so."""
    with runtime.database.session() as session:
        done = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.DONE.value)
        )
        first = int(session.scalar(done.where(OutboxMessage.attempts == 1)) or 0)
        return first, int(session.scalar(done) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=200, help="messages for the delay figure")
    parser.add_argument("--rate", type=float, default=20.0, help="commits/s for the delay figure")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a scratch database: its tables are created and filled (default: SQLite, temp dir)",
    )
    args = parser.parse_args()

    port = free_port()
    context = multiprocessing.get_context("spawn")
    count = context.Value("i", 0)
    arrivals = context.Queue()
    stop = context.Event()
    receiver = context.Process(target=receive, args=(port, count, arrivals, stop), daemon=True)
    receiver.start()
    wait_for_port(port)

    # Tag each bench e-mail with its item name so the receiver can time its arrival.
    from mobip.delivery import email as email_module

    compose = email_module.compose

    def tagged(rendered: Any, **kwargs: Any) -> Any:
        mail = compose(rendered, **kwargs)
        subject = str(rendered.subject)
        tag = f"X-Bench: {subject[subject.rindex('Order') :]}\r\n".encode()
        return dataclasses.replace(mail, data=tag + mail.data)

    email_module.compose = tagged  # type: ignore[assignment]

    try:
        with tempfile.TemporaryDirectory() as folder:
            runtime = runtime_for(Path(folder), args.database_url, port)
            register_all(wire(runtime))
            merchant = make_merchant(runtime)
            raw = asyncio.run(baseline(port, min(args.messages, 2000)))
            print(f"baseline  aiosmtplib alone, 50 concurrent sessions: {raw:8.0f} e-mails/s")

            for start in range(0, args.messages, 500):
                create_requests(runtime, merchant, start, min(500, args.messages - start))
            while not arrivals.empty():
                arrivals.get()
            seconds = asyncio.run(drain(runtime, args.messages))
            rate = args.messages / seconds
            print(
                f"worker    {args.messages} payment requests (text + HTML + QR): "
                f"{rate:8.0f} e-mails/s  ({rate / raw:.2f} x baseline)"
            )
            while not arrivals.empty():
                arrivals.get()
            delays = asyncio.run(
                latency(runtime, merchant, args.latency, args.rate, arrivals, args.messages)
            )
            if delays:
                print(
                    f"delay     commit -> first attempt received, {len(delays)} "
                    f"at {args.rate:g}/s: "
                    f"p50 {percentile(delays, 0.5) * 1000:.0f} ms, "
                    f"p99 {percentile(delays, 0.99) * 1000:.0f} ms, "
                    f"mean {statistics.fmean(delays) * 1000:.0f} ms "
                    f"(poll interval {runtime.settings.worker_poll_seconds:g} s)"
                )
            first, done = first_attempt_share(runtime)
            print(f"attempts  {first} of {done} e-mails delivered at their first attempt")
            runtime.database.dispose()
    finally:
        stop.set()
        receiver.join(10)
    print(f"receiver  {count.value} messages received in all")


if __name__ == "__main__":
    main()
