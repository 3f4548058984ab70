"""Two tabs paying one transaction at once, and a double-submitted form: exactly one payment.

A real uvicorn server on loopback and concurrent HTTP clients released together by a barrier.
The guard is the database's (the row lock and ``change_status``'s compare-and-set); it matters
most on PostgreSQL, where requests really run in parallel; SQLite serialises the writers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from checkout.support import (
    attempts,
    card,
    csrf_of,
    free_port,
    new_transaction,
    outbox,
    reload,
    serve_app,
)
from factories import make_account
from mobip.kit.runtime import Runtime

TABS = 6


@pytest.fixture
def base(runtime: Runtime) -> Iterator[str]:
    port = free_port()
    with serve_app(runtime, port) as url:
        yield url


def test_concurrent_payments_take_exactly_one(runtime: Runtime, base: str) -> None:
    merchant = make_account(runtime).account
    transaction = new_transaction(runtime, merchant)
    path = f"/pay/{transaction.checkout_token}"
    # Half the submissions come from separate tabs (own cookie and form), the other half are
    # the same form sent again (a double click): same cookie, same token.
    tabs = [httpx.Client(base_url=base, timeout=60) for _ in range(TABS // 2)]
    forms = [csrf_of(tab.get(path).text) for tab in tabs]
    senders = [(tab, token) for tab, token in zip(tabs, forms, strict=True)] * 2
    barrier = threading.Barrier(len(senders))

    def submit(sender: tuple[httpx.Client, str]) -> httpx.Response:
        tab, token = sender
        barrier.wait()
        return tab.post(path, data={"csrf_token": token, **card()})

    try:
        with ThreadPoolExecutor(len(senders)) as pool:
            replies = list(pool.map(submit, senders))
    finally:
        for tab in tabs:
            tab.close()

    redirected = [r for r in replies if r.status_code == 303]
    assert len(redirected) == 1, [r.status_code for r in replies]
    assert "status=PAID" in redirected[0].headers["location"]
    others = [r for r in replies if r.status_code != 303]
    assert {r.status_code for r in others} == {409}
    for reply in others:
        assert re.search(r"<h1[^>]*>Already paid</h1>", reply.text)
    assert reload(runtime, transaction).status == "PAID"
    assert [a.outcome for a in attempts(runtime, transaction)] == ["paid"]
    kinds = [kind for kind, _, _ in outbox(runtime, transaction)]
    assert kinds.count("callback") == 1 and kinds.count("receipt") == 1
