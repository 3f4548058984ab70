"""Stats tests' helpers: histories of transactions made through transactions.service at chosen
times (creation, payment, refunds, cancellation, expiry, denial, error), each in its own unit of
work as the API and the checkout make them, so the observer files them as in production."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from factories import make_transaction
from mobip.accounts.models import Account
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions
from mobip.transactions.models import Transaction


class History:
    """Makes things happen to one runtime's transactions at given times (its ManualClock)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        clock = runtime.clock
        assert isinstance(clock, ManualClock)
        self.clock = clock

    def create(self, merchant: Account, at: datetime, **overrides: Any) -> str:
        """A PENDING transaction of ``merchant`` created at ``at``; its trid."""
        self.clock.set(at)
        return make_transaction(self.runtime, merchant, **overrides).trid

    def _change(self, trid: str, at: datetime, change: Any) -> None:
        self.clock.set(at)
        with self.runtime.database.transaction() as session:
            found = transactions.get_for_worker(session, trid)
            assert found is not None
            assert change(session, found[0], found[1])

    def pay(self, trid: str, at: datetime) -> None:
        settings = self.runtime.settings
        self._change(
            trid, at, lambda s, t, _: transactions.mark_paid(s, t, now=at, settings=settings)
        )

    def deny(self, trid: str, at: datetime) -> None:
        self._change(trid, at, lambda s, t, _: transactions.deny(s, t, reason="declined", now=at))

    def fail(self, trid: str, at: datetime) -> None:
        self._change(trid, at, lambda s, t, _: transactions.fail(s, t, reason="provider", now=at))

    def cancel(self, trid: str, at: datetime) -> None:
        def cancel(session: Any, transaction: Transaction, merchant: Account) -> bool:
            transactions.cancel(session, merchant, transaction.trid, self.clock)
            return True

        self._change(trid, at, cancel)

    def expire(self, trid: str, at: datetime) -> None:
        """Expire it at ``at`` (which must be past its expiry), as the worker does."""
        self._change(trid, at, lambda s, t, _: transactions.expire_if_due(s, t, self.clock))

    def refund(self, trid: str, amount: int | None, at: datetime) -> int:
        """A refund of ``amount`` (None: all that is left) at ``at``, reserved then completed as
        refund_transaction makes one; the amount refunded."""
        self.clock.set(at)
        with self.runtime.database.transaction() as session:
            found = transactions.get_for_worker(session, trid)
            assert found is not None
            reserved = transactions.reserve_refund(
                session, found[1], trid, amount, provider="sandbox", clock=self.clock
            )
        with self.runtime.database.transaction() as session:
            transactions.complete_refund(
                session, reserved, f"sandbox_{reserved.refund_id}", self.clock
            )
        return reserved.amount
