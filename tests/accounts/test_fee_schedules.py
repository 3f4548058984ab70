"""get_account shows the fee schedule in force (issue 13), and mobip account set-fees sets it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.accounts.service import NewCredentials
from mobip.cli import app
from mobip.kit.runtime import Runtime

GET_ACCOUNT = "/api/2.0/mobip/get_account"


def fee_rows(client: TestClient, caller: NewCredentials, uid: str) -> dict[str, str]:
    reply = client.request(
        "GET", GET_ACCOUNT, files=form(access_token=token_for(client, caller), uid=uid)
    )
    assert reply.status_code == 200, reply.text
    return {
        row["attribute_name"]: row["attribute_value"]
        for row in reply.json()["account_data"]
        if row["attribute_name"].startswith("fee_")
    }


def set_fees(uid: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["account", "set-fees", uid, *args])
    return result.exit_code, result.output


def test_get_account_shows_the_inherited_then_own_schedule(
    runtime: Runtime, client: TestClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI reads its settings from the environment: the test's database.
    monkeypatch.setenv("MOBIP_DATABASE_URL", db_url)
    monkeypatch.setenv("MOBIP_DATA_DIR", str(runtime.settings.data_dir))
    runtime.settings.default_fee_percent = Decimal("0.5")
    admin = make_account(runtime, role=Role.ADMIN)
    partner = make_account(runtime, role=Role.PARTNER, parent=admin)
    shop = make_account(runtime, parent=partner)
    uid = shop.account.uid
    assert fee_rows(client, partner, uid) == {
        "fee_percent": "0.50",
        "fee_fixed_in_cents": "0",
        "fee_schedule_from": "settings",
    }
    code, output = set_fees(partner.account.uid, "--percent", "1.4", "--fixed", "25")
    assert code == 0, output
    assert "1.40 % + 25 (its own)" in output
    assert fee_rows(client, partner, uid) == {
        "fee_percent": "1.40",
        "fee_fixed_in_cents": "25",
        "fee_schedule_from": partner.account.uid,
    }
    code, output = set_fees(uid, "--fixed", "10", "--json")
    assert code == 0, output
    assert json.loads(output) == {
        "uid": uid,
        "percent": "0.00",
        "basis_points": 0,
        "fixed": 10,
        "from": uid,
    }
    code, output = set_fees(uid, "--clear")
    assert code == 0 and f"inherited from {partner.account.uid}" in output
    # Bad input: a clear message naming the option, nothing changed.
    for bad in (["--percent", "1.405"], ["--percent", "101"], ["--fixed", "-1"], []):
        code, output = set_fees(uid, *bad)
        assert code == 1, (bad, output)
        assert "percent" in output or "fixed" in output
    code, output = set_fees(uid, "--clear", "--percent", "1")
    assert code == 1 and "clear" in output
    assert fee_rows(client, partner, uid)["fee_schedule_from"] == partner.account.uid
    code, output = set_fees("acct_missing", "--percent", "1")
    assert code == 1 and "acct_missing" in output
