"""Fixtures of the delivery tests; plain helpers are in support.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callback_receiver import Receiver, running_receiver
from factories import make_account
from mobip.accounts.models import Account
from mobip.kit.runtime import Runtime


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    return make_account(runtime, name="Maison Dupré").account


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A callback receiver on loopback (test_email.py's ``receiver`` is its SMTP receiver)."""
    with running_receiver() as server:
        yield server
