"""Helpers shared by the checkout tests (unit and e2e)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from factories import free_port
from mobip.accounts.models import Account
from mobip.checkout import repository as checkout_repository
from mobip.checkout.models import PaymentAttempt
from mobip.delivery.models import OutboxMessage
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction

PAID = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
NO_FUNDS = "4000 0000 0000 9995"
PROVIDER_ERROR = "4000 0000 0000 0119"


def pay_path(transaction: Transaction) -> str:
    return f"/pay/{transaction.checkout_token}"


def pay_by_card(client: Any, path: str, number: str = PAID) -> None:
    """Pay the checkout page at ``path`` (/pay/ck_…) with ``number`` through its card form."""
    page = client.get(path)
    reply = client.post(
        path, data={"csrf_token": csrf_of(page.text), **card(number)}, follow_redirects=False
    )
    assert reply.status_code == 303, reply.text


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def card(number: str = PAID, **overrides: str) -> dict[str, str]:
    fields = {
        "card_number": number,
        "expiry": "12/30",
        "cvc": "123",
        "name_on_card": "Ada Lovelace",
        "lang": "EN",
    }
    fields.update(overrides)
    return fields


def update_account(runtime: Runtime, account: Account, **values: Any) -> None:
    with runtime.database.transaction() as session:
        row = session.get(Account, account.id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)


def reload(runtime: Runtime, transaction: Transaction) -> Transaction:
    with runtime.database.transaction() as session:
        row = session.get(Transaction, transaction.id)
        assert row is not None
        return row


def attempts(runtime: Runtime, transaction: Transaction) -> list[PaymentAttempt]:
    with runtime.database.transaction() as session:
        return checkout_repository.attempts(session, transaction)


def outbox(runtime: Runtime, transaction: Transaction) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, target, payload) of the transaction's outbox rows, oldest first."""
    with runtime.database.transaction() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.subject == transaction.trid)
            .order_by(OutboxMessage.id)
        ).all()
        return [(row.kind, row.target, row.load_payload()) for row in rows]


def callback_codes(runtime: Runtime, transaction: Transaction) -> list[str]:
    """The ``resp_code`` of each callback queued for the transaction, oldest first."""
    return [p["resp_code"] for kind, _, p in outbox(runtime, transaction) if kind == "callback"]


def database_text(runtime: Runtime) -> str:
    """Every row of every table the database holds (not only the ones our models know), as
    text: to look for data that must never be stored."""
    from sqlalchemy import inspect

    parts: list[str] = []
    engine = runtime.database.engine
    with engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{name}"')):
                parts.append(" ".join(str(value) for value in row))
    return "\n".join(parts)


def sqlite_file_bytes(runtime: Runtime) -> bytes:
    """The raw bytes of a SQLite database and its WAL/journal files (b"" on PostgreSQL):
    free pages and the write-ahead log may hold what no SELECT shows any more."""
    url = runtime.settings.resolved_database_url
    if not url.startswith("sqlite:///"):
        return b""
    path = Path(url.removeprefix("sqlite:///"))
    files = [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-journal"))]
    return b"".join(file.read_bytes() for file in files if file.exists())


# --- real servers on loopback (e2e) --------------------------------------------------------------

import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402


@contextmanager
def serve_app(runtime: Runtime) -> Iterator[str]:
    """The whole app under a real uvicorn server in a thread, on a free loopback port that is
    also the base URL of the links it gives out; yields that URL."""
    import uvicorn

    from mobip.app import create_app

    port = free_port()
    runtime.settings.base_url = f"http://127.0.0.1:{port}"
    runtime.settings.__dict__.pop("resolved_base_url", None)  # a cached property
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_config=None, access_log=True
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class _MerchantSite(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>Thanks</title><h1>Thank you for your order</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def merchant_site() -> Iterator[str]:
    """A merchant's web site on loopback (where customers land after paying)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MerchantSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
