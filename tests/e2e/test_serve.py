"""`mobip serve` as a user runs it: a real process, real HTTP on loopback, SQLite in a data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.serving import Served, serve


@pytest.fixture(params=[1, 2], ids=["one-process", "two-processes"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path / "var", workers=request.param, log_level="INFO") as server:
        yield server


def test_serve_creates_a_demo_merchant_that_can_log_in(served: Served) -> None:
    base = served.base
    token = served.token()
    login = httpx.post(f"{base}/api/2.0/mobip/login", files={"access_token": (None, token)})
    assert login.json() == {"return_code": "0"}
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/api/2.0/openapi.json").status_code == 200
