"""A real `mobip serve` process for end-to-end tests: on loopback, in its own data dir."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from factories import free_port

API = "/api/2.0/mobip"


def api(base: str, method: str, name: str, **fields: str) -> dict[str, Any]:
    """One call to the API served at ``base`` (form fields), which must answer 200 with
    return_code "0"; its JSON reply."""
    reply = httpx.request(method, f"{base}{API}/{name}", data=fields, timeout=30)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    assert body["return_code"] == "0", body
    return body


def wait_ready(base: str, process: subprocess.Popen[Any], deadline: float = 60) -> None:
    """Until ``/readyz`` answers 200; fails the test if the process exits or time runs out."""
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


def server_environment(data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment for a development server in ``data_dir``, with
    MOBIP_<NAME> ``settings``; nothing of the caller's own MOBIP database or keys leaks in."""
    env = {**os.environ, "MOBIP_DATA_DIR": str(data_dir), "MOBIP_ENV": "development"}
    for key in ("MOBIP_DATABASE_URL", "MOBIP_SECRET_KEY", "MOBIP_BASE_URL"):
        env.pop(key, None)
    return env | {f"MOBIP_{name.upper()}": value for name, value in settings.items()}


# The first start's banner (cli._create_demo_merchant): a title, the demo merchant's uid,
# api_account_id and api_secret_key, the platform admin's line.
BANNER_LINES = 5


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT
    port: int
    env: dict[str, str]  # the server's environment, for CLI commands against the same data
    banner: str  # the demo merchant's and the admin's credentials, as printed at first start

    @property
    def credentials(self) -> tuple[str, str]:
        """The demo merchant's api_account_id and api_secret_key, read off the banner."""
        account_id = re.search(r"api_account_id (api_\S+)", self.banner)
        secret = re.search(r"api_secret_key (mbs_\S+)", self.banner)
        assert account_id and secret, self.banner
        return account_id[1], secret[1]

    def token(self) -> str:
        """A fresh access token of the demo merchant."""
        account_id, secret = self.credentials
        reply = httpx.request(
            "GET",
            f"{self.base}/api/2.0/mobip/get_token",
            files={"api_account_id": (None, account_id), "api_secret_key": (None, secret)},
        )
        assert reply.status_code == 200, reply.text
        token: str = reply.json()["access_token"]
        return token


@contextmanager
def serve(
    data_dir: Path,
    *,
    workers: int = 1,
    log_path: Path | None = None,
    log_level: str = "WARNING",
    **settings: str,
) -> Iterator[Served]:
    """`mobip serve --workers N` (development) with MOBIP_<NAME> settings; its log (stderr)
    goes to ``log_path`` or nowhere. Stopped with SIGTERM after."""
    port = free_port()
    env = server_environment(data_dir, port=str(port), log_level=log_level, **settings)
    log_file = log_path.open("w") if log_path is not None else None
    process = subprocess.Popen(
        [sys.executable, "-m", "mobip", "serve", "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log_file or subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    if log_file is not None:
        log_file.close()  # the child has its own copy of the descriptor
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(BANNER_LINES))
        yield Served(base, port, env, banner)
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM to the process group (serve's worker processes too), SIGKILL after 30 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def sqlite_db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A ``db_url`` for tests whose subject does not depend on the database (how pages and
    e-mails look, a browser's flow already run on both elsewhere): a copy of the migrated
    SQLite template only. A module takes it with ``db_url = sqlite_db_url``."""
    path = tmp_path / "mobip.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"
