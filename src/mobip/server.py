"""Entry point for multi-process serving: each process builds its app from the environment."""

from __future__ import annotations

from starlette.applications import Starlette

from mobip.app import create_app
from mobip.config import Settings
from mobip.kit.logging import configure_logging
from mobip.kit.runtime import Runtime


def app_from_environment() -> Starlette:
    settings = Settings()
    settings.check()
    configure_logging(settings.log_level)
    return create_app(Runtime.from_settings(settings))
