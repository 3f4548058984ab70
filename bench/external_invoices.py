"""Importing external invoices (set_external_invoices, issue 15): 100,000 invoices on SQLite in
10 calls of 10,000, through the service as the endpoint runs it (one unit of work per call: the
text read by the lenient reader, every value checked, the rows written with executemany).

Run: python bench/external_invoices.py [--invoices N] [--per-call N] [--per-customer N]
        [--spec-form] [--http]

Three passes over the same invoices: the first import (all created), the same again (all
unchanged: read and compared only) and a re-import with every amount changed (updates and one
history row each). --spec-form sends the spec example's form (bare invoice arrays, keys with
trailing spaces, trailing commas: the lenient reader's own path, not json.loads).
--http sends the calls through the ASGI app (Starlette's TestClient, in process): the multipart
body's parsing and the envelope included.
Goal (issue 15): the first 100,000 under 10 s. The process's CPU time is printed beside the
wall time: steadier when other work shares the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mobip.accounts import service as accounts
from mobip.accounts.models import Account, Language, Role
from mobip.config import Settings
from mobip.kit.db import Database
from mobip.kit.migrate import upgrade
from mobip.kit.runtime import Runtime
from mobip.receivables import service

GOAL_SECONDS = 10.0


def lists(start: int, count: int, per_customer: int, amount: int) -> list[dict[str, Any]]:
    customers = []
    for first in range(start, start + count, per_customer):
        customers.append(
            {
                "CustomerId": f"cust_{first // per_customer:06d}",
                "CustomerPhone": "0607922222",
                "CustomerEmail": f"c{first}@example.com",
                "CustomerBalance_in_cents": "0",
                "CustomerBalance_Date": "2026-01-03",
                "Invoices": [
                    {
                        "InvId": f"inv_{n:07d}",
                        "InvDate": "2026-01-01",
                        "InvDueDate": "2026-02-01",
                        "InvLbl": f"Facture {n}",
                        "Amount_in_cents": str(amount + n % 100),
                        "InvStatus": "status_1",
                    }
                    for n in range(first, min(first + per_customer, start + count))
                ],
            }
        )
    return customers


def spec_form(customers: list[dict[str, Any]]) -> str:
    """The spec example's shape: the outer prefix, bare arrays, trailing spaces and commas."""
    parts = []
    for c in customers:
        fields = ",\n".join(f'"{k} ": {json.dumps(v)}' for k, v in c.items() if k != "Invoices")
        invoices = ",\n".join(
            "{ " + ", ".join(f'"{k} ": {json.dumps(v)}' for k, v in i.items()) + " }"
            for i in c["Invoices"]
        )
        parts.append("{\n" + fields + ",\n[\n" + invoices + "\n]},")
    return '"InvoicesLists":\n[' + "\n".join(parts) + "\n]\n}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--per-call", type=int, default=10_000)
    parser.add_argument("--per-customer", type=int, default=10)
    parser.add_argument("--spec-form", action="store_true")
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            data_dir=Path(folder),
            secret_key="bench-" + "x" * 40,
            worker_enabled=False,
        )
        upgrade(settings.resolved_database_url)
        runtime = Runtime(settings, Database(settings.resolved_database_url))
        with runtime.database.transaction() as session:
            creds = accounts.create_account(
                session,
                name="Bench shop",
                role=Role.MERCHANT,
                parent_uid=None,
                currency="EUR",
                language=Language.FR,
                external_id=None,
                now=runtime.clock.now(),
            )
        bodies = {
            label: [
                _text(lists(start, args.per_call, args.per_customer, amount), args.spec_form)
                for start in range(0, args.invoices, args.per_call)
            ]
            for label, amount in (("first import", 1000), ("changed", 2000))
        }
        megabytes = sum(len(b) for b in bodies["first import"]) / 1e6
        print(
            f"{args.invoices} invoices, {args.per_call} per call, {args.per_customer} per "
            f"customer, {megabytes:.1f} MB of InvoicesLists"
            f" ({'spec form' if args.spec_form else 'clean JSON'}, "
            f"{'HTTP' if args.http else 'service'})"
        )
        call = _over_http(runtime, creds) if args.http else _direct(runtime, creds.account)
        results = {}
        for label, texts in (
            ("first import", bodies["first import"]),
            ("unchanged", bodies["first import"]),
            ("all changed", bodies["changed"]),
        ):
            started, cpu_started = time.perf_counter(), time.process_time()
            replies = [call(text) for text in texts]
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            results[label] = elapsed
            done = {
                k: sum(int(r[k]) for r in replies) for k in ("invoices_created", "invoices_updated")
            }
            print(
                f"  {label:13s} {elapsed:6.2f} s (CPU {cpu:5.2f} s)  "
                f"{args.invoices / elapsed:9.0f} invoices/s  "
                f"created {done['invoices_created']}, updated {done['invoices_updated']}"
            )
        first = results["first import"]
        ratio = first / GOAL_SECONDS
        print(f"goal: first import under {GOAL_SECONDS:.0f} s: {first:.2f} s ({ratio:.0%} of it)")
        return 0 if first < GOAL_SECONDS else 1


def _text(customers: list[dict[str, Any]], spec: bool) -> str:
    return spec_form(customers) if spec else json.dumps({"InvoicesLists": customers})


def _direct(runtime: Runtime, merchant: Account) -> Any:
    def call(text: str) -> dict[str, Any]:
        with runtime.database.transaction(immediate=True) as session:
            owner = session.get(Account, merchant.id)
            assert owner is not None
            return service.set_external_invoices(
                session, owner, "erp", None, text, runtime.settings, runtime.clock
            )

    return call


def _over_http(runtime: Runtime, creds: Any) -> Any:
    from starlette.testclient import TestClient

    from mobip.app import create_app

    client = TestClient(create_app(runtime))
    client.__enter__()
    token = client.post(
        "/api/2.0/mobip/get_token",
        files={
            "api_account_id": (None, creds.account.api_account_id),
            "api_secret_key": (None, creds.api_secret_key),
        },
    ).json()["access_token"]

    def call(text: str) -> dict[str, Any]:
        reply = client.post(
            "/api/2.0/mobip/set_external_invoices",
            files={
                "access_token": (None, token),
                "ExternalSourceId": (None, "erp"),
                "InvoicesLists": ("invoices.json", text.encode(), "application/json"),
            },
        )
        data: dict[str, Any] = reply.json()
        assert data["return_code"] == "0", data
        return data

    return call


if __name__ == "__main__":
    sys.exit(main())
