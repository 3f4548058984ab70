from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mobip.cli import app


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
