"""Per-process state lives in the runtime (issue 10): two apps in one process share neither the
token cache nor the worker's handlers, and wiring a runtime registers each domain's part once."""

from __future__ import annotations

from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.app import create_app
from mobip.auth import service as auth_service
from mobip.delivery.handlers import register_all
from mobip.delivery.service import CALLBACK, PAYMENT_REQUEST, RECEIPT
from mobip.delivery.worker import Handlers
from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule
from mobip.wiring import wire


def twin(runtime: Runtime) -> Runtime:
    """Another runtime on the same settings, database and clock: a second app in the process."""
    return Runtime(runtime.settings, runtime.database, runtime.clock)


def cached(runtime: Runtime, token: str) -> bool:
    tokens = runtime.state(auth_service.TokenCache)
    found = auth_service.cached_account(runtime.settings, token, runtime.clock.now(), tokens=tokens)
    return found is not None


def test_two_apps_do_not_share_the_token_cache(client: TestClient, runtime: Runtime) -> None:
    other = twin(runtime)
    other_client = TestClient(create_app(other), client=("203.0.113.8", 50000))
    merchant = make_account(runtime)
    token = token_for(client, merchant)
    login = {"files": form(access_token=token)}
    assert client.post("/api/2.0/mobip/login", **login).json() == {"return_code": "0"}
    assert cached(runtime, token)
    assert not cached(other, token)  # the other app has not seen it: it asks its database
    assert other_client.post("/api/2.0/mobip/login", **login).json() == {"return_code": "0"}
    assert cached(other, token)
    # Emptying one app's cache leaves the other's alone.
    runtime.state(auth_service.TokenCache).clear()
    assert not cached(runtime, token)
    assert cached(other, token)


def test_two_runtimes_do_not_share_the_worker_handlers(runtime: Runtime) -> None:
    other = twin(runtime)
    register_all(wire(runtime))
    for kind in (PAYMENT_REQUEST, RECEIPT, CALLBACK):
        assert runtime.state(Handlers).registration(kind) is not None, kind
        assert other.state(Handlers).registration(kind) is None, kind
    register_all(other)  # not wired: only delivery's own kind
    assert other.state(Handlers).registration(CALLBACK) is not None
    assert other.state(Handlers).registration(PAYMENT_REQUEST) is None
    assert runtime.state(Handlers).registration(CALLBACK) is not (
        other.state(Handlers).registration(CALLBACK)
    )


def test_wiring_registers_each_domain_once_in_order(runtime: Runtime) -> None:
    assert wire(runtime) is runtime
    wire(runtime)  # a second call changes nothing (and raises no duplicate)
    assert runtime.state(Schedule).names == [
        "expired",
        "reminders queued",
        "tokens purged",
        "login throttle counters purged",
        "stale refunds settled",
        "page starts deleted",
        "fee invoices issued",
        "stats files deleted",
    ]
    assert twin(runtime).state(Schedule).names == []
