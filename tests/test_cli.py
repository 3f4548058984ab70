from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from mobip.cli import app
from mobip.delivery import repository
from mobip.delivery.models import OutboxMessage
from mobip.delivery.service import enqueue
from mobip.kit.clock import SystemClock
from mobip.kit.db import Database


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> dict[str, str]:
    values = {
        "MOBIP_DATA_DIR": str(tmp_path / "data"),
        "MOBIP_DATABASE_URL": db_url,
        "MOBIP_ENV": "development",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MOBIP_SECRET_KEY", raising=False)
    return values


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_account_create_json_prints_exactly_one_object(env: dict[str, str]) -> None:
    code, output = run("account", "create", "--name", "Shop", "--currency", "usd", "--json")
    assert code == 0, output
    lines = output.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["uid"].startswith("acct_")
    assert record["api_account_id"].startswith("api_")
    assert record["api_secret_key"].startswith("mbs_")
    assert record["currency"] == "USD"
    assert record["role"] == "merchant"


def test_account_tree_and_listing(env: dict[str, str]) -> None:
    _, partner_out = run("account", "create", "--name", "Partner", "--role", "partner", "--json")
    partner = json.loads(partner_out)
    code, output = run(
        "account", "create", "--name", "Shop", "--parent", partner["uid"], "--external-id", "E1"
    )
    assert code == 0, output
    code, listing = run("account", "list")
    assert code == 0
    assert "Platform" in listing and "Partner" in listing and "Shop" in listing
    duplicate = run(
        "account", "create", "--name", "Shop2", "--parent", partner["uid"], "--external-id", "E1"
    )
    assert duplicate[0] == 1
    assert "External_AccountID" in duplicate[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--currency", "XYZ"], "currency"),
        (["--country", "XX"], "country"),
        (["--parent", "acct_nope"], "acct_nope"),
        (["--role", "partner", "--parent", "PARENT"], "parent"),
    ],
)
def test_account_create_refuses_bad_settings(
    env: dict[str, str], args: list[str], message: str
) -> None:
    _, merchant_out = run("account", "create", "--name", "M", "--json")
    merchant_uid = json.loads(merchant_out)["uid"]
    args = [merchant_uid if a == "PARENT" else a for a in args]
    code, output = run("account", "create", "--name", "X", *args)
    assert code != 0
    assert message in output


def test_an_accounts_country_is_given_at_creation_or_set_and_checked(env: dict[str, str]) -> None:
    created = run_json("account", "create", "--name", "Bäckerei", "--country", "de")
    assert created["country"] == "DE"
    code, output = run("account", "set-country", created["uid"], "Germany")
    assert code == 1 and "country" in output and "'Germany'" in output
    code, output = run("account", "create", "--name", "Nowhere", "--country", "XX")
    assert code == 1 and "country" in output
    listed = run_json("account", "list")
    assert [(a["name"], a["country"]) for a in listed] == [("Platform", "FR"), ("Bäckerei", "DE")]


def test_rotate_secret_set_provider_and_add_document(env: dict[str, str], tmp_path: Path) -> None:
    _, out = run("account", "create", "--name", "Shop", "--json")
    uid = json.loads(out)["uid"]
    code, rotated = run("account", "rotate-secret", uid)
    assert code == 0 and "mbs_" in rotated
    code, output = run(
        "account", "set-provider", uid, "--provider", "stripe", "--private-key", "sk_test_123456"
    )
    assert code == 0, output
    document = tmp_path / "kbis.pdf"
    document.write_bytes(b"%PDF")
    code, output = run("account", "add-document", uid, str(document), "--name", "kbis.pdf")
    assert code == 0, output
    assert "4 bytes" in output
    code, output = run("account", "rotate-secret", "acct_missing")
    assert code == 1
    assert "acct_missing" in output


def test_cli_refuses_a_schema_that_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBIP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MOBIP_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    code, output = run("account", "list")
    assert code == 2
    assert "mobip migrate" in output
    code, output = run("migrate")
    assert code == 0
    assert run("account", "list")[0] == 0


def test_production_refuses_to_start_without_secret_or_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBIP_ENV", "production")
    monkeypatch.setenv("MOBIP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MOBIP_SECRET_KEY", raising=False)
    code, output = run("migrate")
    assert code == 2
    assert "MOBIP_SECRET_KEY" in output
    monkeypatch.setenv("MOBIP_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("MOBIP_BASE_URL", "http://pay.example.com")
    code, output = run("migrate")
    assert code == 2
    assert "https" in output


def test_development_secret_key_is_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mobip.config import Settings

    monkeypatch.delenv("MOBIP_SECRET_KEY", raising=False)
    first = Settings(data_dir=tmp_path).resolved_secret_key
    second = Settings(data_dir=tmp_path).resolved_secret_key
    assert first == second and len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_gives_uvicorn_the_keep_alive_setting(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """Both ways of serving close idle keep-alive connections after MOBIP_KEEP_ALIVE_SECONDS."""
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    monkeypatch.setattr("mobip.cli.configure_logging", lambda level: None)
    # serve writes these into os.environ; setting them here has monkeypatch restore them.
    for name, value in {"WORKER_ENABLED": "false", "HOST": "127.0.0.1", "PORT": "8000"}.items():
        monkeypatch.setenv(f"MOBIP_{name}", value)
    monkeypatch.setenv("MOBIP_KEEP_ALIVE_SECONDS", "7")
    code, output = run("serve", "--workers", workers)
    assert code == 0, output
    assert [call["timeout_keep_alive"] for call in calls] == [7]


# --- output for people (tables with headers) and for scripts (--json) ---------------------------


def run_json(*args: str) -> Any:
    code, output = run(*args, "--json")
    assert code == 0, output
    return json.loads(output)


ACCOUNT_KEYS = {
    "uid",
    "api_account_id",
    "name",
    "role",
    "parent_uid",
    "currency",
    "language",
    "country",
    "external_account_id",
    "is_test",
    "created_at",
}


def test_every_account_command_prints_json(env: dict[str, str], tmp_path: Path) -> None:
    created = run_json("account", "create", "--name", "Shop", "--language", "FR", "--test")
    assert set(created) == ACCOUNT_KEYS | {"api_secret_key"}
    uid = created["uid"]
    listed = run_json("account", "list")
    assert isinstance(listed, list) and [a["name"] for a in listed] == ["Platform", "Shop"]
    assert all(set(account) == ACCOUNT_KEYS for account in listed)  # never a secret
    platform, shop = listed
    assert (shop["parent_uid"], platform["parent_uid"]) == (platform["uid"], None)
    assert (shop["language"], shop["is_test"]) == ("FR", True)

    rotated = run_json("account", "rotate-secret", uid)
    assert set(rotated) == {"uid", "api_account_id", "api_secret_key"}
    assert rotated["api_secret_key"].startswith("mbs_")
    assert rotated["api_secret_key"] != created["api_secret_key"]

    provider = run_json(
        "account", "set-provider", uid, "--provider", "stripe", "--private-key", "sk_test_123456"
    )
    assert provider == {
        "uid": uid,
        "provider": "stripe",
        "public_key": None,
        "login": None,
        "private_key_set": True,
    }

    document = tmp_path / "kbis.pdf"
    document.write_bytes(b"%PDF")
    stored = run_json("account", "add-document", uid, str(document), "--name", "kbis.pdf")
    assert stored == {
        "uid": uid,
        "name": "kbis.pdf",
        "content_type": "application/pdf",
        "size": 4,
        "sha256": hashlib.sha256(b"%PDF").hexdigest(),
    }

    assert created["country"] == "FR"  # the default
    assert run_json("account", "set-country", uid, "de") == {"uid": uid, "country": "DE"}

    secret = run_json("account", "callback-secret", uid)
    assert set(secret) == {"uid", "callback_secret", "rotated"}
    assert secret["callback_secret"].startswith("whsec_") and secret["rotated"] is False
    replaced = run_json("account", "callback-secret", uid, "--rotate")
    assert replaced["rotated"] is True
    assert replaced["callback_secret"] not in (secret["callback_secret"], "")


def test_account_list_has_a_header_and_shows_language_and_test_flag(env: dict[str, str]) -> None:
    run("account", "create", "--name", "Boutique", "--language", "FR", "--test")
    code, output = run("account", "list")
    assert code == 0, output
    header, *rows = output.splitlines()
    assert header.split() == [
        "NAME",
        "ROLE",
        "UID",
        "API_ACCOUNT_ID",
        "CURRENCY",
        "LANGUAGE",
        "TEST",
        "EXTERNAL_ACCOUNT_ID",
    ]
    [boutique] = [row for row in rows if "Boutique" in row]
    assert boutique.split()[1:] == [
        "merchant",
        boutique.split()[2],
        boutique.split()[3],
        "EUR",
        "FR",
        "yes",
    ]
    # Each value stands under its header (read at the header's column: a random uid may hold
    # "FR" too, and once did).
    for column, value in (("LANGUAGE", "FR"), ("TEST", "yes"), ("CURRENCY", "EUR")):
        at = header.index(column)
        assert boutique[at : at + len(value)] == value, (column, header, boutique)
        assert boutique[at - 2 : at] == "  "  # the value starts there


def test_a_terminal_gets_the_whole_table(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a terminal (rich), the table keeps every column and never cuts an id short."""
    monkeypatch.setattr("mobip.cli._is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal
    created = run_json("account", "create", "--name", "Shop")
    code, output = run("account", "list")
    assert code == 0, output
    for header in ("NAME", "UID", "API_ACCOUNT_ID", "LANGUAGE", "TEST", "EXTERNAL_ACCOUNT_ID"):
        assert header in output
    assert created["uid"] in output and created["api_account_id"] in output
    assert "…" not in output


def add_messages(db_url: str) -> dict[str, int]:
    """Three messages as the worker leaves them: an e-mail delivered at the second attempt (its
    first failed without an HTTP status), a callback that failed for good, a pending callback."""
    clock = SystemClock()
    database = Database(db_url)
    now = clock.now()
    try:
        with database.transaction() as session:
            mail = enqueue(
                session,
                kind="receipt",
                target="zoe@example.com",
                payload={},
                clock=clock,
                subject="tr_mail",
                max_attempts=8,
            ).id
            failed = enqueue(
                session,
                kind="callback",
                target="https://shop.example.com/cb?order=1",
                payload={},
                clock=clock,
                subject="tr_failed",
                max_attempts=12,
            ).id
            pending = enqueue(
                session,
                kind="callback",
                target="https://shop.example.com/cb?order=2",
                payload={},
                clock=clock,
                subject="tr_pending",
                max_attempts=12,
                not_before=now + timedelta(hours=1),
            ).id
            states = {
                mail: {"status": "done", "attempts": 2, "delivered_at": now},
                failed: {"status": "failed", "attempts": 12, "last_error": "HTTP 500"},
                pending: {"attempts": 1, "last_error": "HTTP 503"},
            }
            for message_id, values in states.items():
                session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
                )
            attempt = {"worker_id": "w1", "started_at": now, "duration_ms": 35, "error": None}
            repository.add_attempts(
                session,
                [
                    attempt
                    | {
                        "message_id": mail,
                        "number": 1,
                        "outcome": "retry",
                        "status_code": None,
                        "response_excerpt": None,
                        "error": "SMTP connection refused",
                    },
                    attempt
                    | {
                        "message_id": mail,
                        "number": 2,
                        "outcome": "delivered",
                        "status_code": None,
                        "response_excerpt": None,
                    },
                    attempt
                    | {
                        "message_id": failed,
                        "number": 12,
                        "outcome": "failed",
                        "status_code": 500,
                        "response_excerpt": "oops",
                        "error": "HTTP 500",
                    },
                    attempt
                    | {
                        "message_id": pending,
                        "number": 1,
                        "outcome": "retry",
                        "status_code": 503,
                        "response_excerpt": None,
                        "error": "HTTP 503",
                    },
                ],
            )
    finally:
        database.dispose()
    return {"mail": mail, "failed": failed, "pending": pending}


MESSAGE_KEYS = {
    "id",
    "kind",
    "status",
    "attempts",
    "max_attempts",
    "subject",
    "target",
    "created_at",
    "next_attempt_at",
    "delivered_at",
    "last_error",
    "attempt_log",
}
ATTEMPT_KEYS = {
    "number",
    "started_at",
    "outcome",
    "duration_ms",
    "status_code",
    "response_excerpt",
    "error",
    "worker_id",
}


def test_outbox_list_json(env: dict[str, str], db_url: str) -> None:
    ids = add_messages(db_url)
    listed = run_json("outbox", "list")
    assert [m["id"] for m in listed] == [ids["pending"], ids["failed"], ids["mail"]]
    assert all(set(m) == MESSAGE_KEYS for m in listed)
    pending, failed, mail = listed
    assert mail["target"] == "z***@example.com"  # a customer's address stays masked
    assert failed["target"] == "https://shop.example.com/cb?order=1"
    assert (failed["status"], failed["attempts"], failed["max_attempts"]) == ("failed", 12, 12)
    assert pending["next_attempt_at"] is not None and failed["next_attempt_at"] is None
    assert [a["outcome"] for a in mail["attempt_log"]] == ["retry", "delivered"]
    assert all(set(a) == ATTEMPT_KEYS for m in listed for a in m["attempt_log"])
    assert [m["id"] for m in run_json("outbox", "list", "--failed")] == [ids["failed"]]


def test_outbox_list_explains_attempts_and_prints_no_placeholders(
    env: dict[str, str], db_url: str
) -> None:
    ids = add_messages(db_url)
    code, output = run("outbox", "list", "--attempts")
    assert code == 0, output
    messages, attempts = output.split("\n\n")
    header, *rows = messages.splitlines()
    assert "ATTEMPTS (made/allowed)" in header
    assert header.split()[:3] == ["ID", "KIND", "STATUS"]
    [failed] = [row for row in rows if row.startswith(f"{ids['failed']} ")]
    assert "12/12" in failed and "gave up" in failed and "HTTP 500" in failed
    [pending] = [row for row in rows if row.startswith(f"{ids['pending']} ")]
    assert "1/12" in pending and "next attempt" in pending
    title, attempt_header, *attempt_rows = attempts.splitlines()
    assert title.startswith("Attempts")
    assert attempt_header.split()[:4] == ["MESSAGE", "ATTEMPT", "STARTED", "OUTCOME"]
    assert "HTTP STATUS" in attempt_header and "REPLY" in attempt_header
    assert len(attempt_rows) == 4
    for row in attempt_rows:
        assert "''" not in row and " - " not in row and "None" not in row
    smtp_failure = next(row for row in attempt_rows if "SMTP" in row)
    assert "failed, will retry" in smtp_failure
    http_failure = next(row for row in attempt_rows if "oops" in row)
    assert "500" in http_failure and "failed, gave up" in http_failure
    assert http_failure[attempt_header.index("HTTP STATUS") :].startswith("500 ")


def test_outbox_retry_gives_a_failed_message_fresh_attempts_and_a_pending_one_none(
    env: dict[str, str], db_url: str
) -> None:
    ids = add_messages(db_url)
    code, output = run("outbox", "retry", str(ids["pending"]))
    assert code == 0, output
    assert "it was pending; the attempts allowed are unchanged" in output
    assert "next is attempt 2 of 12" in output
    [pending] = [m for m in run_json("outbox", "list") if m["id"] == ids["pending"]]
    assert (pending["status"], pending["max_attempts"]) == ("pending", 12)
    assert datetime.fromisoformat(pending["next_attempt_at"]) <= datetime.now(UTC)

    retried = run_json("outbox", "retry", str(ids["failed"]))
    assert retried == retried | {
        "id": ids["failed"],
        "kind": "callback",
        "previous_status": "failed",
        "status": "pending",
        "attempts": 12,
        "max_attempts": 24,
    }
    # Retried again while pending: due now, still 24 allowed (no budget growing at each retry).
    again = run_json("outbox", "retry", str(ids["failed"]))
    assert (again["previous_status"], again["max_attempts"]) == ("pending", 24)

    code, output = run("outbox", "retry", str(ids["mail"]))
    assert code == 1 and "already delivered" in output


def test_outbox_retry_help_says_what_it_does_to_a_pending_message() -> None:
    code, output = run("outbox", "retry", "--help")
    assert code == 0
    text = " ".join(output.split())
    assert "A pending message" in text and "allowed attempts stay as they are" in text


# --- the settings the CLI reads ------------------------------------------------------------------


def test_without_the_servers_settings_the_cli_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MOBIP_DATA_DIR", "MOBIP_DATABASE_URL", "MOBIP_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    for command in (["account", "list"], ["outbox", "list"], ["account", "create", "--name", "X"]):
        code, output = run(*command)
        assert code == 2
        assert f"no MOBIP database at {tmp_path / 'var' / 'mobip.sqlite3'}" in output
        assert "MOBIP_DATA_DIR" in output and "mobip migrate" in output
    assert list(tmp_path.iterdir()) == []  # no ./var, no database, no secret key


def test_an_empty_database_is_named_with_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    monkeypatch.setenv("MOBIP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MOBIP_DATABASE_URL", f"sqlite:///{empty}")
    code, output = run("account", "list")
    assert code == 2
    assert f"the database at sqlite:///{empty} (as MOBIP_DATABASE_URL says) has no MOBIP" in output
    assert "run 'mobip migrate'" in output


# --- account branding ----------------------------------------------------------------------------


def _logo_png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (40, 20), (26, 127, 55)).save(path, "PNG")
    return path


def test_account_branding_round_trip_with_json(env: dict[str, str], tmp_path: Path) -> None:
    uid = run_json("account", "create", "--name", "Shop")["uid"]
    empty = {
        "uid": uid,
        "accent_colour": None,
        "logo_content_type": None,
        "logo_size": None,
        "logo_sha256": None,
        "logo_version": None,
    }
    assert run_json("account", "branding", uid) == empty

    logo = _logo_png(tmp_path / "logo.png")
    changed = run_json("account", "branding", uid, "--logo", str(logo), "--accent", "#1A7F37")
    assert changed["accent_colour"] == "#1a7f37"
    assert changed["logo_content_type"] == "image/png"
    assert changed["logo_version"] == changed["logo_sha256"][:16]
    assert changed["logo_size"] > 0
    # Shown again without options; the stored logo is the re-encoded one, not the file.
    assert run_json("account", "branding", uid) == changed

    assert run_json("account", "branding", uid, "--clear-logo") == {
        **changed,
        **empty,
        "accent_colour": "#1a7f37",
    }
    assert run_json("account", "branding", uid, "--clear-accent") == empty


def test_account_branding_table_and_refusals(env: dict[str, str], tmp_path: Path) -> None:
    uid = run_json("account", "create", "--name", "Shop")["uid"]
    code, output = run("account", "branding", uid, "--accent", "#1a7f37")
    assert code == 0, output
    header, row = output.strip().splitlines()
    assert header.split() == ["UID", "ACCENT_COLOUR", "LOGO", "LOGO_BYTES", "LOGO_VERSION"]
    assert row.split()[:3] == [uid, "#1a7f37", "(none)"]

    code, output = run("account", "branding", uid, "--accent", "#ffff00")
    assert code == 1
    assert "contrast ratio of 1.07:1, below the 4.5:1 minimum" in output

    script = tmp_path / "logo.svg"
    script.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><script>alert(1)</script></svg>'
    )
    code, output = run("account", "branding", uid, "--logo", str(script))
    assert code == 1
    assert "<script> is not allowed" in output

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000)
    code, output = run("account", "branding", uid, "--logo", str(huge), "--accent", "#000")
    assert code == 1
    assert "300,008 bytes; a logo may be at most 262,144 bytes" in output

    # Nothing of the refused commands was stored.
    assert run_json("account", "branding", uid)["accent_colour"] == "#1a7f37"
    assert run_json("account", "branding", uid)["logo_content_type"] is None

    code, output = run("account", "branding", "acct_missing")
    assert code == 1
    assert "acct_missing" in output


def test_stats_rebuild_runs_in_the_configured_zone(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild itself is tested in tests/stats; here the command, its zone and its output."""
    run("account", "create", "--name", "Shop")  # the database exists, at the current schema
    assert run_json("stats", "rebuild") == {
        "timezone": "UTC",
        "events": 0,
        "moved": 0,
        "daily_rows": 0,
    }
    monkeypatch.setenv("MOBIP_TIMEZONE", "Europe/Paris")
    code, output = run("stats", "rebuild")
    assert code == 0, output
    assert (
        output.strip()
        == "0 event(s) on their day in Europe/Paris (0 moved); 0 daily row(s) recounted"
    )
