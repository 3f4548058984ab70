"""`mobip invoices issue` (an early close, default the start of the current month) and
`mobip invoices pdf ID -o FILE`, run as the operator runs them, with the system clock pinned
(``wall``): a CLI process reads the system clock, and a test run on the real one just after a
month began would see that month as not yet closable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from billing.support import invoices, merchant, pay
from mobip.billing.service import SETTLE, month_start
from mobip.cli import app
from mobip.kit.clock import ManualClock, SystemClock
from mobip.kit.runtime import Runtime


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    monkeypatch.setenv("MOBIP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MOBIP_DATABASE_URL", db_url)
    monkeypatch.setenv("MOBIP_SECRET_KEY", "test-secret-key-" + "x" * 32)


class Wall:
    """The system clock, pinned: what every CLI process of the test reads as now."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at = datetime(2026, 12, 15, 9, 30, tzinfo=UTC)
        monkeypatch.setattr(SystemClock, "now", lambda _: self.at)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    return Wall(monkeypatch)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_issue_closes_last_month_then_a_merchant_now_and_pdf_writes_it(
    env: None, runtime: Runtime, clock: ManualClock, wall: Wall, tmp_path: Path
) -> None:
    this_month = month_start(wall.at, runtime.settings.zone)
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
    assert second.period_end == wall.at - SETTLE  # 'now' is read on the clock
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


def test_issue_just_after_a_month_began_waits_for_it_to_settle(
    env: None, runtime: Runtime, clock: ManualClock, wall: Wall
) -> None:
    """At 00:02 on the 1st the month that just ended is not closable yet (a payment of 23:59
    may still be being recorded): the default close says from when it can run and issues
    nothing; at 00:05 it closes the month."""
    december = datetime(2026, 12, 1, tzinfo=UTC)
    clock.set(december - timedelta(days=10))
    shop = merchant(runtime).account
    pay(runtime, shop, 10_000, december - timedelta(minutes=1))
    wall.at = december + timedelta(minutes=2)
    code, output = run("invoices", "issue")
    assert code == 1
    assert "2026-12-01 00:00 UTC can be closed from 2026-12-01 00:05 UTC" in output
    assert invoices(runtime, shop) == []
    wall.at = december + SETTLE
    code, output = run("invoices", "issue", "--json")
    assert code == 0, output
    assert json.loads(output) == {"issued": ["MOBIP-2026-000001"], "accounts": 1}
    (invoice,) = invoices(runtime, shop)
    assert (invoice.period_end, invoice.transactions_count) == (december, 1)
