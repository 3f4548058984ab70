"""The data folder and what we write in it are the running user's only (issue 9, item 7).

The folder holds the SQLite database (payment requests, customers' e-mail addresses), the
development secret key and the development outbox (e-mails with payment links): 0700 for the
folder, 0600 for each file, whatever the process's umask.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from mobip.config import Settings
from mobip.delivery import devoutbox
from mobip.kit.runtime import TIMEZONE_OPTION, Runtime


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def sqlite_settings(data_dir: Path) -> Settings:
    """The default database: SQLite in the data folder; a secret key generated there."""
    return Settings(data_dir=data_dir, worker_enabled=False)


def test_a_new_data_folder_and_its_files_are_private(tmp_path: Path, umask: int) -> None:
    data_dir = tmp_path / "var"
    runtime = Runtime.from_settings(sqlite_settings(data_dir))
    try:
        with runtime.database.engine.begin() as conn:  # a write: the -wal and -shm files appear
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with runtime.database.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("SELECT x FROM t")).scalar() == 1
            assert mode(data_dir) == 0o700
            files = sorted(p.name for p in data_dir.iterdir())
            assert {"mobip.sqlite3", "mobip.sqlite3-wal", "mobip.sqlite3-shm"} <= set(files)
            assert "secret_key" in files
            for name in files:
                assert mode(data_dir / name) == 0o600, name
    finally:
        runtime.database.dispose()


def test_an_existing_world_readable_folder_and_database_are_tightened(tmp_path: Path) -> None:
    """What an older version left: folder 0755, database 0644."""
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    for name in ("mobip.sqlite3", "mobip.sqlite3-wal", "mobip.sqlite3-shm", "secret_key"):
        (data_dir / name).write_bytes(b"" if name != "secret_key" else b"k" * 48 + b"\n")
        os.chmod(data_dir / name, 0o644)
    runtime = Runtime.from_settings(sqlite_settings(data_dir))
    try:
        assert mode(data_dir) == 0o700
        for path in data_dir.iterdir():
            assert mode(path) == 0o600, path.name
    finally:
        runtime.database.dispose()


def test_outbox_files_and_folder_are_private(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / "var" / "outbox"
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    email_path = devoutbox.save_email(folder, devoutbox.file_stem(at, "email", 1), b"Subject: x\n")
    sms_path = devoutbox.save_sms(
        folder,
        devoutbox.file_stem(at, "sms", 2),
        to="+33600000000",
        sender="MOBIP",
        text="x",
        at=at,
    )
    assert mode(folder) == 0o700
    assert mode(email_path) == mode(sms_path) == 0o600
    # A retried message overwrites its own file: still private.
    os.chmod(email_path, 0o644)
    devoutbox.save_email(folder, devoutbox.file_stem(at, "email", 1), b"Subject: y\n")
    assert mode(email_path) == 0o600
    assert email_path.read_bytes() == b"Subject: y\n"


# --- per-runtime state (issue 10) -----------------------------------------------------------------


class Counter:
    """A stand-in for a cache or a registry kept in the runtime."""

    def __init__(self) -> None:
        self.value = 0


def test_state_is_one_instance_per_runtime_and_kind(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path / "var")
    first = Runtime.from_settings(settings)
    second = Runtime(first.settings, first.database, first.clock)
    try:
        first.state(Counter).value += 1
        first.state(Counter).value += 1
        assert first.state(Counter).value == 2
        assert second.state(Counter).value == 0  # same database, its own state
        assert first.state(Counter) is not second.state(Counter)
    finally:
        first.database.dispose()


def test_state_made_by_racing_threads_is_one_instance(tmp_path: Path) -> None:
    runtime = Runtime.from_settings(sqlite_settings(tmp_path / "var"))
    try:
        seen: list[Counter] = []
        start = threading.Barrier(8)

        def ask() -> None:
            start.wait()
            seen.append(runtime.state(Counter))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(found) for found in seen}) == 1
    finally:
        runtime.database.dispose()


def test_the_runtime_tells_its_database_connections_the_zone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k" * 40, timezone="Europe/Paris")
    runtime = Runtime.from_settings(settings)
    try:
        with runtime.database.connection() as conn:
            assert conn.get_execution_options()[TIMEZONE_OPTION] == "Europe/Paris"
    finally:
        runtime.database.dispose()
