"""transactions/observers: every happening is told once, in the unit of work that made it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import Connection, select
from starlette.testclient import TestClient

from checkout.support import pay_by_card, pay_path
from factories import form, make_account, make_transaction, token_for
from mobip.kit.runtime import Runtime
from mobip.transactions import observers, service
from mobip.transactions.models import Transaction
from mobip.transactions.observers import Change, Happening


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.fail_on: Happening | None = None

    def __call__(self, conn: Connection, changes: Sequence[Change]) -> None:
        for change in changes:
            if change.happening is self.fail_on:
                raise RuntimeError("observer refused")
        self.changes.extend(changes)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recording = Recorder()
    observers.subscribe(recording)
    observers.subscribe(recording)  # twice changes nothing
    try:
        yield recording
    finally:
        observers.unsubscribe(recording)
    assert recording not in observers.subscribed()


def test_each_happening_is_told_once_with_its_amounts(
    runtime: Runtime, client: TestClient, recorder: Recorder
) -> None:
    runtime.settings.default_fee_fixed = 30
    creds = make_account(runtime)
    paid = make_transaction(runtime, creds.account)  # 1500, EMAIL
    pay_by_card(client, pay_path(paid))
    token = token_for(client, creds)
    reply = client.post(
        "/api/2.0/mobip/refund_transaction",
        files=form(access_token=token, trid=paid.trid, amount_in_cents="400"),
    )
    assert reply.json()["return_code"] == "0", reply.text
    cancelled = make_transaction(runtime, creds.account)
    reply = client.post(
        "/api/2.0/mobip/cancel_transaction",
        files=form(access_token=token, trid=cancelled.trid),
    )
    assert reply.json()["return_code"] == "0", reply.text
    expiring = make_transaction(runtime, creds.account, ttl_days=1)
    runtime.clock.advance(days=2)  # type: ignore[attr-defined]
    with runtime.database.transaction() as session:
        row = session.get(Transaction, expiring.id)
        assert row is not None
        assert service.expire_if_due(session, row, runtime.clock)

    seen = [(c.happening, c.trid) for c in recorder.changes]
    assert seen == [
        (Happening.CREATED, paid.trid),
        (Happening.PAID, paid.trid),
        (Happening.REFUNDED, paid.trid),
        (Happening.CREATED, cancelled.trid),
        (Happening.CANCELLED, cancelled.trid),
        (Happening.CREATED, expiring.trid),
        (Happening.EXPIRED, expiring.trid),
    ]
    paid_change, refund_change = recorder.changes[1], recorder.changes[2]
    assert paid_change.total_amount == 1500 and paid_change.fee == 30
    assert paid_change.channel == "EMAIL" and paid_change.currency == "EUR"
    assert refund_change.refund_amount == 400 and refund_change.fee == 0
    assert refund_change.refund_id is not None and refund_change.refund_id.startswith("rf_")


def test_an_observer_that_fails_undoes_the_change(
    runtime: Runtime, client: TestClient, recorder: Recorder
) -> None:
    creds = make_account(runtime)
    recorder.fail_on = Happening.CREATED
    with pytest.raises(RuntimeError):
        make_transaction(runtime, creds.account)
    with runtime.database.session() as session:
        assert session.scalars(select(Transaction)).all() == []
    recorder.fail_on = Happening.CANCELLED
    kept = make_transaction(runtime, creds.account)
    reply = client.post(
        "/api/2.0/mobip/cancel_transaction",
        files=form(access_token=token_for(client, creds), trid=kept.trid),
    )
    assert reply.status_code == 500
    with runtime.database.session() as session:
        row = session.get(Transaction, kept.id)
        assert row is not None and row.status == "PENDING"


def test_channels() -> None:
    def channel(kind: str, media: str | None) -> str:
        return Change(
            Happening.CREATED,
            "tr",
            1,
            None,
            kind,
            media,
            None,
            "EUR",
            1,
            1,
            0,
            0,  # type: ignore[arg-type]
        ).channel

    assert channel("payment_request", "SMS") == "SMS"
    assert channel("payment_request", "EMAIL") == "EMAIL"
    assert channel("one_use_qr", None) == "QR"
    assert channel("product_payment", None) == "REUSABLE_QR"
    assert channel("invoice_portal", None) == "PORTAL"
