"""What a process runs with: settings, database, clock and the encryptor, built once."""

from __future__ import annotations

from dataclasses import dataclass, field

from mobip.config import Settings
from mobip.kit.clock import Clock, SystemClock
from mobip.kit.db import Database
from mobip.kit.security import Encryptor


@dataclass
class Runtime:
    settings: Settings
    database: Database
    clock: Clock = field(default_factory=SystemClock)
    encryptor: Encryptor = field(init=False)

    def __post_init__(self) -> None:
        self.encryptor = Encryptor(self.settings.resolved_secret_key)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(settings, Database(settings.resolved_database_url), clock or SystemClock())
