"""Fixtures of the checkout tests that talk to Stripe: the local stand-in and a client of the app
pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from checkout.fake_stripe import FakeStripe
from mobip.app import create_app
from mobip.kit.runtime import Runtime


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    """A local server answering like Stripe's API."""
    with FakeStripe() as server:
        yield server


@pytest.fixture
def stripe_client(runtime: Runtime, fake: FakeStripe) -> Iterator[TestClient]:
    """The app, its Stripe API base the stand-in's, called from a public client address."""
    runtime.settings.stripe_api_base = fake.url
    with TestClient(create_app(runtime), client=("203.0.113.7", 50000)) as client:
        yield client
