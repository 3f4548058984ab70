"""The operator's CLI while `mobip serve` takes ≥ 200 creates/s: every command must succeed.

A real server process on loopback, a load generator (a few threads with httpx, keep-alive)
sending create_one_use_qr on a paced schedule, and real `mobip` subprocesses against the same
database meanwhile. On SQLite every create batch, worker claim and CLI write competes for the one
write lock; a command that began as a reader and then wrote failed at once with "database is
locked" (issue 9, finding 4). create_one_use_qr queues no message, so the two shared cores go to
the server and the CLI rather than to the worker's e-mails; the write contention is the same.

The load is offered at 320 creates/s. The window must see 200/s or more, or, on a machine too busy
for that, an API kept saturated: on average at least three quarters of the generator's 16 creates
waiting on the server, so that every moment the server was writing as fast as it could. Either way
the CLI met the busiest write lock this machine can produce; how many creates a second that is
depends on the machine (the CI one reached 198/s on PostgreSQL once), which is a figure for
`bench/`, not a pass/fail line.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from e2e.serving import Served, serve

API = "/api/2.0/mobip"
BOUNDARY = "mobip-load-boundary"
QR_FIELDS = {
    "item_name": "Mug",
    "item_amount_in_cents": "1250",
    "tax_amount_in_cents": "250",
    "call_back_url": "https://shop.example/callback",
    "redirect_url": "https://shop.example/thanks",
    "track_id": "load",
}
# The load: paced above the floor so that a short stall does not pull the average under it.
TARGET_RATE = 320
FLOOR_RATE = 200
THREADS = 16  # in flight at most: enough to keep the pace when replies slow down
SATURATED = 0.75  # mean share of THREADS waiting on the server that counts as a saturated API
SAMPLE_SECONDS = 0.005
# The load runs until the last command ends; these bound it whatever happens (a command that
# hangs fails on CLI_TIMEOUT first).
MAX_SECONDS = 90
MAX_CREATES = MAX_SECONDS * TARGET_RATE
CLI_TIMEOUT = 60
CREATE_COMMANDS = 4
ROTATE_COMMANDS = 4


def multipart(fields: dict[str, str]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


@dataclass
class Load:
    """Creates sent on a paced schedule by a few threads (httpx, keep-alive) until stopped."""

    base: str
    token: str
    stop: threading.Event = field(default_factory=threading.Event)
    done_at: list[float] = field(default_factory=list)  # monotonic time of each successful create
    failures: list[str] = field(default_factory=list)
    # (monotonic time, creates waiting on the server), sampled every SAMPLE_SECONDS
    in_flight_samples: list[tuple[float, int]] = field(default_factory=list)
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sent: Iterator[int] = field(default_factory=itertools.count)
    _started: float = field(default_factory=time.monotonic)

    def start(self) -> list[threading.Thread]:
        self._started = time.monotonic()
        threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]
        threads.append(threading.Thread(target=self._sample, daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def _sample(self) -> None:
        while not self.stop.wait(SAMPLE_SECONDS):
            self.in_flight_samples.append((time.monotonic(), self._in_flight))

    def _run(self) -> None:
        body = multipart({**QR_FIELDS, "access_token": self.token})
        headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                number = next(self._sent)  # itertools.count is atomic under the GIL
                due = self._started + number / TARGET_RATE
                if number >= MAX_CREATES or due - self._started > MAX_SECONDS:
                    return
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self._create(client, body, headers)

    def _create(self, client: httpx.Client, body: bytes, headers: dict[str, str]) -> None:
        with self._lock:
            self._in_flight += 1
        try:
            reply = client.post(f"{API}/create_one_use_qr", content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.failures.append(repr(exc))
            return
        finally:
            with self._lock:
                self._in_flight -= 1
        if reply.status_code == 200 and reply.json().get("return_code") == "0":
            self.done_at.append(time.monotonic())
        else:
            self.failures.append(f"{reply.status_code} {reply.text[:200]}")

    def rate_between(self, start: float, end: float) -> float:
        return sum(start <= t <= end for t in self.done_at) / (end - start)

    def saturation_between(self, start: float, end: float) -> float:
        """The mean share of THREADS that were waiting on the server between start and end."""
        counts = [n for t, n in self.in_flight_samples if start <= t <= end]
        return sum(counts) / len(counts) / THREADS if counts else 0.0


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[Served]:
    with serve(tmp_path / "var", database_url=db_url) as served:
        yield served


def mobip(env: dict[str, str], *args: str) -> str:
    """Run one CLI command; fails the test with its output unless it exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "mobip", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"mobip {' '.join(args)} exited {result.returncode}:\n{result.stderr[-2000:]}"
    )
    return result.stdout


def test_cli_commands_succeed_while_the_api_takes_200_creates_a_second(
    server: Served, tmp_path: Path
) -> None:
    base, env = server.base, server.env
    load = Load(base, server.token())
    generators = load.start()
    document = tmp_path / "kbis.pdf"
    document.write_bytes(b"%PDF-1.4 test")
    errors: list[str] = []
    try:
        time.sleep(2)  # the load reaches its pace before the first command
        window_start = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:

            def attempt(*args: str) -> str:
                try:
                    return mobip(env, *args)
                except AssertionError as exc:
                    errors.append(str(exc))
                    return ""

            created = list(
                pool.map(
                    lambda i: attempt("account", "create", "--name", f"Shop {i}", "--json"),
                    range(CREATE_COMMANDS),
                )
            )
            uids = [json.loads(out)["uid"] for out in created if out]
            assert uids, errors
            targets = [uids[i % len(uids)] for i in range(ROTATE_COMMANDS)]
            list(pool.map(lambda uid: attempt("account", "rotate-secret", uid), targets))
            uid = uids[0]
            others = [
                ("account", "set-provider", uid, "--provider", "stripe", "--private-key", "sk_x"),
                ("account", "callback-secret", uid, "--rotate"),
                ("account", "add-document", uid, str(document), "--name", "kbis.pdf"),
                ("outbox", "list", "--limit", "5"),
            ]
            list(pool.map(lambda args: attempt(*args), others))
        window_end = time.monotonic()
    finally:
        load.stop.set()
        for thread in generators:
            thread.join(timeout=60)
    rate = load.rate_between(window_start, window_end)
    saturation = load.saturation_between(window_start, window_end)
    print(
        f"creates/s while the CLI ran: {rate:.0f} over {window_end - window_start:.1f}s, "
        f"{saturation:.0%} of the generator's creates waiting on the server on average"
    )
    assert not errors, "\n\n".join(errors)
    assert not load.failures, load.failures[:5]
    assert rate >= FLOOR_RATE or saturation >= SATURATED, (
        f"the load reached only {rate:.0f} creates/s (floor {FLOOR_RATE}) with on average "
        f"{saturation:.0%} of the generator's creates waiting on the server "
        f"(a saturated API: {SATURATED:.0%}): "
        "the CLI was not tested under the contention the issue describes"
    )
