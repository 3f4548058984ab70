"""`mobip serve` as a user runs it: a real process, real HTTP on loopback, SQLite in a data dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from factories import free_port


def wait_ready(base: str, process: subprocess.Popen[str], deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not become ready")


@pytest.fixture(params=[1, 2], ids=["one-process", "two-processes"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    env = {
        **os.environ,
        "MOBIP_DATA_DIR": str(tmp_path / "var"),
        "MOBIP_PORT": str(port),
        "MOBIP_ENV": "development",
    }
    for key in ("MOBIP_DATABASE_URL", "MOBIP_SECRET_KEY", "MOBIP_BASE_URL"):
        env.pop(key, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "mobip", "serve", "--workers", str(request.param)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(4))
        yield base, banner
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_serve_creates_a_demo_merchant_that_can_log_in(served: tuple[str, str]) -> None:
    base, banner = served
    account_id = re.search(r"api_account_id (api_\S+)", banner)
    secret = re.search(r"api_secret_key (mbs_\S+)", banner)
    assert account_id and secret, banner
    reply = httpx.request(
        "GET",
        f"{base}/api/2.0/mobip/get_token",
        files={"api_account_id": (None, account_id[1]), "api_secret_key": (None, secret[1])},
    )
    assert reply.status_code == 200
    token = reply.json()["access_token"]
    login = httpx.post(f"{base}/api/2.0/mobip/login", files={"access_token": (None, token)})
    assert login.json() == {"return_code": "0"}
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/api/2.0/openapi.json").status_code == 200
