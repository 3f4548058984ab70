"""`mobip serve`'s log as an operator reads it: our access line only, never a query string."""

from __future__ import annotations

import json
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

from e2e.test_serve import wait_ready
from factories import free_port


@pytest.fixture(params=[1, 2], ids=["one-process", "two-processes"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A real `mobip serve` with its stderr (the log) in a file: base URL, banner, log path."""
    port = free_port()
    env = {
        **os.environ,
        "MOBIP_DATA_DIR": str(tmp_path / "var"),
        "MOBIP_PORT": str(port),
        "MOBIP_ENV": "development",
        "MOBIP_LOG_LEVEL": "DEBUG",
    }
    for key in ("MOBIP_DATABASE_URL", "MOBIP_SECRET_KEY", "MOBIP_BASE_URL"):
        env.pop(key, None)
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "mobip", "serve", "--workers", str(request.param)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(4))
        yield base, banner, log_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_credentials_in_the_query_string_never_reach_the_log(
    served: tuple[str, str, Path],
) -> None:
    base, banner, log_path = served
    account_id = re.search(r"api_account_id (api_\S+)", banner)
    secret = re.search(r"api_secret_key (mbs_\S+)", banner)
    assert account_id and secret, banner
    reply = httpx.get(
        f"{base}/api/2.0/mobip/get_token",
        params={"api_account_id": account_id[1], "api_secret_key": secret[1]},
        headers={"X-Request-ID": "query-string-check"},
    )
    assert reply.status_code == 200
    token = reply.json()["access_token"]
    login = httpx.post(f"{base}/api/2.0/mobip/login", params={"access_token": token})
    assert login.json() == {"return_code": "0"}

    def access_lines() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line]
        return [line for line in lines if line.get("logger") == "mobip.access"]

    # The access line is written once the reply has been sent: it may lag the reply a little.
    for _ in range(100):
        if any(line.get("request_id") == "query-string-check" for line in access_lines()):
            break
        time.sleep(0.05)
    log = log_path.read_text()
    assert secret[1] not in log
    assert token not in log
    assert "?" not in "".join(str(line.get("path")) for line in access_lines())
    # uvicorn's access logger (plain text lines like '127.0.0.1:5000 - "GET /…?… HTTP/1.1" 200')
    # wrote nothing: every line is our JSON, and only our access logger writes requests.
    assert "api_secret_key" not in log
    assert not any("uvicorn.access" in line for line in log.splitlines())
    assert any(line.get("request_id") == "query-string-check" for line in access_lines())


def test_under_someones_own_uvicorn_no_access_line_has_a_query_string(tmp_path: Path) -> None:
    """`uvicorn mobip.server:app_from_environment --factory`, uvicorn's default log config."""
    port = free_port()
    env = {**os.environ, "MOBIP_DATA_DIR": str(tmp_path / "var"), "MOBIP_ENV": "development"}
    for key in ("MOBIP_DATABASE_URL", "MOBIP_SECRET_KEY", "MOBIP_BASE_URL"):
        env.pop(key, None)
    subprocess.run([sys.executable, "-m", "mobip", "migrate"], env=env, check=True)
    log_path = tmp_path / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "mobip.server:app_from_environment", "--factory"]
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    secret = "mbs_" + "NotInTheLog" * 4
    try:
        wait_ready(base, process)
        reply = httpx.get(
            f"{base}/api/2.0/mobip/get_token",
            params={"api_account_id": "api_someone", "api_secret_key": secret},
            headers={"X-Request-ID": "own-uvicorn"},
        )
        assert reply.status_code == 401
        for _ in range(100):
            if "own-uvicorn" in log_path.read_text():
                break
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    log = log_path.read_text()
    assert "own-uvicorn" in log  # our access line
    assert secret not in log and "api_secret_key" not in log
