"""A real `mobip serve` process for end-to-end tests: on loopback, in its own data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from e2e.test_serve import wait_ready
from factories import free_port


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT
    port: int
    env: dict[str, str]  # the server's environment, for CLI commands against the same data
    banner: str  # the demo merchant's credentials, as printed at start-up


@contextmanager
def serve(data_dir: Path, **settings: str) -> Iterator[Served]:
    """`mobip serve` (one process, development) with MOBIP_<NAME> settings; stopped after."""
    port = free_port()
    env = {
        **os.environ,
        "MOBIP_DATA_DIR": str(data_dir),
        "MOBIP_PORT": str(port),
        "MOBIP_ENV": "development",
        "MOBIP_LOG_LEVEL": "WARNING",
    }
    for key in ("MOBIP_DATABASE_URL", "MOBIP_SECRET_KEY", "MOBIP_BASE_URL"):
        env.pop(key, None)
    env |= {f"MOBIP_{name.upper()}": value for name, value in settings.items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "mobip", "serve"],
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
        yield Served(base, port, env, banner)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
