"""`mobip invoices issue` (an early close, default the start of the current month) and
`mobip invoices pdf ID -o FILE`, on the real clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from billing.support import invoices, merchant, pay
from mobip.billing.service import month_start
from mobip.cli import app
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    monkeypatch.setenv("MOBIP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MOBIP_DATABASE_URL", db_url)
    monkeypatch.setenv("MOBIP_SECRET_KEY", "test-secret-key-" + "x" * 32)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_issue_closes_last_month_then_a_merchant_now_and_pdf_writes_it(
    env: None, runtime: Runtime, clock: ManualClock, tmp_path: Path
) -> None:
    this_month = month_start(datetime.now(UTC), runtime.settings.zone)
    last_month = month_start(this_month - timedelta(days=1), runtime.settings.zone)
    clock.set(last_month + timedelta(days=1))
    shop = merchant(runtime).account
    other = merchant(runtime, name="Other").account
    pay(runtime, shop, 10_000, last_month + timedelta(days=2))
    pay(runtime, other, 5_000, last_month + timedelta(days=2))
    pay(runtime, shop, 3_000, this_month + timedelta(seconds=1))

    code, output = run("invoices", "issue", "--json")
    assert code == 0, output
    year = this_month.year
    numbers = [f"MOBIP-{year}-000001", f"MOBIP-{year}-000002"]
    assert json.loads(output) == {"issued": numbers, "accounts": 2}
    assert run("invoices", "issue", "--json") == (0, '{"issued": [], "accounts": 2}\n')

    code, output = run("invoices", "issue", "--account", shop.uid, "--until", "now")
    assert code == 0, output
    assert output.startswith("1 invoice(s) issued for 1 merchant(s)")
    first, second = invoices(runtime, shop)
    assert (first.period_end, second.period_start) == (this_month, this_month)
    assert second.transactions_count == 1
    assert invoices(runtime, other)[-1].period_end == this_month  # not closed again

    target = tmp_path / "invoice.pdf"
    code, output = run("invoices", "pdf", first.invoice_id, "-o", str(target))
    assert code == 0, output
    text = PdfReader(target).pages[0].extract_text()
    assert first.number in text


def test_issue_refuses_a_future_end_a_bad_date_and_an_unknown_invoice(
    env: None, runtime: Runtime, tmp_path: Path
) -> None:
    code, output = run("invoices", "issue", "--until", "2999-01-01T00:00:00Z")
    assert code == 1
    assert "at least 5 minutes in the past" in output
    code, output = run("invoices", "issue", "--until", "yesterday")
    assert code == 2
    assert "not an ISO-8601" in output
    code, output = run("invoices", "issue", "--until", "2026-01-01T00:00:00")
    assert code == 2
    assert "time zone" in output
    code, output = run("invoices", "pdf", "inv_nothing", "-o", str(tmp_path / "x.pdf"))
    assert code == 1
    assert "no invoice" in output
    assert not (tmp_path / "x.pdf").exists()
