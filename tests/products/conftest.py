from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from callback_receiver import Receiver, running_receiver
from factories import make_account, token_for
from mobip.accounts.service import NewCredentials
from mobip.kit.runtime import Runtime
from products.support import serve_photos


@pytest.fixture
def photos() -> Iterator[Receiver]:
    """A real HTTP server on loopback serving the photo tests' files (loopback is admitted
    outside production, as for callbacks)."""
    with running_receiver() as receiver:
        serve_photos(receiver)
        yield receiver


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, name="Maison Dupré")


@pytest.fixture
def token(client: TestClient, merchant: NewCredentials) -> str:
    return token_for(client, merchant)
