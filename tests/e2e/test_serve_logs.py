"""`mobip serve`'s log as an operator reads it: our access line only, never a query string."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.serving import Served, serve, server_environment, stop, wait_ready
from factories import free_port


@pytest.fixture(params=[1, 2], ids=["one-process", "two-processes"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    """A real `mobip serve` logging at DEBUG into a file: the server and the log's path."""
    log_path = tmp_path / "serve.log"
    with serve(
        tmp_path / "var", workers=request.param, log_path=log_path, log_level="DEBUG"
    ) as server:
        yield server, log_path


def test_credentials_in_the_query_string_never_reach_the_log(
    served: tuple[Served, Path],
) -> None:
    server, log_path = served
    base = server.base
    account_id, secret = server.credentials
    reply = httpx.get(
        f"{base}/api/2.0/mobip/get_token",
        params={"api_account_id": account_id, "api_secret_key": secret},
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
    assert secret not in log
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
    env = server_environment(tmp_path / "var")
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
        stop(process)
    log = log_path.read_text()
    assert "own-uvicorn" in log  # our access line
    assert secret not in log and "api_secret_key" not in log
