"""Registers the handler of every outbox kind with the worker (called once per worker process)."""

from __future__ import annotations

from mobip.kit.runtime import Runtime


def register_all(runtime: Runtime) -> None:
    """Register each kind's sender; each sender module adds its own line here."""
    del runtime  # used by the senders once they are registered
