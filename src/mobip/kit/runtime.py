"""What a process runs with: settings, database, clock and the encryptor, built once, and the
per-runtime state (caches, registries, the task schedule) that must never be a module global."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy.engine import make_url

from mobip.config import Settings
from mobip.kit.clock import Clock, SystemClock
from mobip.kit.db import Database
from mobip.kit.security import Encryptor

# The data folder holds the database (customers' e-mail addresses, payment links), the
# development secret key and outbox: the running user's only, whatever the umask.
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")

T = TypeVar("T")
# The engine execution option that carries MOBIP_TIMEZONE (see Runtime.__post_init__).
TIMEZONE_OPTION = "mobip_timezone"


@dataclass
class Runtime:
    settings: Settings
    database: Database
    clock: Clock = field(default_factory=SystemClock)
    encryptor: Encryptor = field(init=False)
    # One instance per kind (see ``state``); a runtime made from another one starts afresh.
    _states: dict[type[Any], Any] = field(
        init=False, default_factory=dict, repr=False, compare=False
    )
    _states_lock: threading.Lock = field(
        init=False, default_factory=threading.Lock, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.encryptor = Encryptor(self.settings.resolved_secret_key)
        # What runs on the database's connections without the runtime (the observers of the
        # transactions' changes, e.g. stats/ filing an event under its local day) reads the
        # zone here: ``conn.get_execution_options()[TIMEZONE_OPTION]``.
        self.database.engine.update_execution_options(**{TIMEZONE_OPTION: self.settings.timezone})

    def state(self, kind: type[T]) -> T:
        """This runtime's one instance of ``kind``, made with ``kind()`` on first use.

        Where caches and registries live (the token cache, the worker's handlers, the task
        schedule), so that two runtimes in one process (two apps in a test) never share them.
        """
        found = self._states.get(kind)  # the hot path: no lock once made
        if found is None:
            with self._states_lock:  # request threads and worker threads may ask at once
                found = self._states.get(kind)
                if found is None:
                    found = self._states[kind] = kind()
        return cast(T, found)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        make_private_folder(settings.data_dir)
        url = settings.resolved_database_url
        sqlite_file = sqlite_path(url)
        if sqlite_file is not None:
            make_private_database(sqlite_file)
        return cls(settings, Database(url), clock or SystemClock())


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) if missing; make it 0700 either way."""
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    _chmod(folder, PRIVATE_FOLDER)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``path`` with mode 0600 (also when it existed with a wider mode)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), PRIVATE_FILE)
        file.write(data)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("mode") == "memory":
        return None
    return Path(parsed.database)


def make_private_database(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite opens it (SQLite gives its -wal and -shm files
    the database file's mode), and tighten the files an older version left wider."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in _SQLITE_COMPANIONS)):
        if candidate.exists():
            _chmod(candidate, PRIVATE_FILE)


def _chmod(path: Path, mode: int) -> None:
    # A folder or file owned by another user (e.g. a volume prepared by the operator) is left
    # as it is: its owner decides.
    with contextlib.suppress(PermissionError):
        os.chmod(path, mode)
