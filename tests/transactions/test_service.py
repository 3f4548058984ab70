from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy.orm import Session

from factories import make_account, make_transaction
from mobip.accounts.models import Account, Role
from mobip.config import Settings
from mobip.kit.clock import ManualClock
from mobip.kit.errors import MobipError
from mobip.kit.runtime import Runtime
from mobip.transactions import repository, service
from mobip.transactions.errors import (
    ResendLimitReached,
    TransactionAlreadyCancelled,
    TransactionAlreadyDenied,
    TransactionAlreadyPaid,
    TransactionInError,
)
from mobip.transactions.models import TRANSITIONS, Transaction, TransactionStatus

FINAL = {s for s, targets in TRANSITIONS.items() if not targets}
CONFLICT_FOR = {
    TransactionStatus.PAID: TransactionAlreadyPaid,
    TransactionStatus.CANCELLED: TransactionAlreadyCancelled,
    TransactionStatus.DENIED: TransactionAlreadyDenied,
    TransactionStatus.ERROR: TransactionInError,
}


def test_the_table_has_pending_as_the_only_non_final_status() -> None:
    assert set(TRANSITIONS) == set(TransactionStatus)
    assert set(TransactionStatus) - {TransactionStatus.PENDING} == FINAL
    assert TRANSITIONS[TransactionStatus.PENDING] == FINAL


def test_status_machine(runtime: Runtime) -> None:
    if not runtime.database.is_sqlite:
        pytest.skip("the machine explores the rules; one backend is enough for that")
    merchant = make_account(runtime).account
    clock = runtime.clock
    assert hasattr(clock, "advance")

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            # Expires within the days the machine lets pass.
            self.trid = make_transaction(runtime, merchant, ttl_days=3).trid
            self.expected = TransactionStatus.PENDING
            self.history = [TransactionStatus.PENDING]

        def load(self) -> Transaction:
            with runtime.database.transaction() as session:
                transaction, _ = service.get_for(session, merchant, self.trid, clock)
                return transaction

        @rule(outcome=st.sampled_from(sorted(FINAL)))
        def provider_outcome(self, outcome: TransactionStatus) -> None:
            with runtime.database.transaction() as session:
                transaction, _ = service.get_for(session, merchant, self.trid, clock)
                self.expected = TransactionStatus(transaction.status)
                changed = repository.change_status(
                    session, transaction, to=outcome, reason=None, now=clock.now()
                )
            legal = outcome in TRANSITIONS[self.expected]
            assert changed == legal
            if legal:
                self.expected = outcome
                self.history.append(outcome)

        @rule()
        def cancel(self) -> None:
            before = TransactionStatus(self.load().status)
            try:
                with runtime.database.transaction() as session:
                    service.cancel(session, merchant, self.trid, clock)
            except MobipError as error:
                assert before in FINAL
                assert isinstance(error, CONFLICT_FOR[before])
            else:
                assert before is TransactionStatus.PENDING
                self.expected = TransactionStatus.CANCELLED
                self.history.append(self.expected)

        @rule()
        def resend(self) -> None:
            before = TransactionStatus(self.load().status)
            try:
                with runtime.database.transaction() as session:
                    service.resend(session, merchant, self.trid, "EMAIL", runtime.settings, clock)
            except ResendLimitReached:
                assert before is TransactionStatus.PENDING
            except MobipError as error:
                assert isinstance(error, CONFLICT_FOR[before])

        @rule(days=st.integers(min_value=0, max_value=4))
        def time_passes(self, days: int) -> None:
            clock.advance(timedelta(days=days))  # type: ignore[attr-defined]
            status = TransactionStatus(self.load().status)
            if self.expected is TransactionStatus.PENDING and status is TransactionStatus.CANCELLED:
                self.expected = status
                self.history.append(status)

        @invariant()
        def status_and_history_agree(self) -> None:
            with runtime.database.transaction() as session:
                transaction, _ = service.get_for(session, merchant, self.trid, clock)
                events = [
                    TransactionStatus(e.status) for e in repository.events(session, transaction)
                ]
            assert TransactionStatus(transaction.status) == self.expected
            assert events == self.history
            assert len(events) <= 2  # PENDING, then at most one final status

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


# --- what the hosted checkout calls -------------------------------------------------------------


def test_get_by_checkout_token_gives_the_transaction_and_its_merchant(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    made = make_transaction(runtime, merchant)
    for for_update in (False, True):
        with runtime.database.transaction() as session:
            found = service.get_by_checkout_token(
                session, made.checkout_token, for_update=for_update
            )
            assert found is not None
            transaction, owner = found
            assert (transaction.trid, owner.uid) == (made.trid, merchant.uid)
            assert (
                service.get_by_checkout_token(session, "ck_unknown", for_update=for_update) is None
            )
            assert service.get_by_checkout_token(session, made.trid) is None


def test_get_of_account_is_the_account_itself_only(runtime: Runtime) -> None:
    partner = make_account(runtime, role=Role.PARTNER)
    shop = make_account(runtime, parent=partner).account
    other = make_account(runtime).account
    made = make_transaction(runtime, shop)
    with runtime.database.transaction() as session:
        found = service.get_of_account(session, shop, made.trid)
        assert found is not None and found.id == made.id
        assert service.get_of_account(session, other, made.trid) is None
        assert service.get_of_account(session, partner.account, made.trid) is None
        assert service.get_of_account(session, shop, "tr_unknown") is None
        locked = service.get_of_account(session, shop, made.trid, for_update=True)
        assert locked is not None and locked.id == made.id


def reread(session: Session, merchant: Account, made: Transaction) -> Transaction:
    """``made`` as this session reads it."""
    transaction = service.get_of_account(session, merchant, made.trid)
    assert transaction is not None
    return transaction


def test_set_payment_method(runtime: Runtime, clock: ManualClock) -> None:
    merchant = make_account(runtime).account
    made = make_transaction(runtime, merchant)
    clock.advance(minutes=5)
    with runtime.database.transaction() as session:
        transaction = reread(session, merchant, made)
        service.set_payment_method(session, transaction, "card", clock.now())
        assert (transaction.payment_method, transaction.updated_at) == ("card", clock.now())
    with runtime.database.session() as session:
        stored = repository.get_with_merchant_by_trid(session, made.trid)
        assert stored is not None and stored[0].payment_method == "card"


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        (
            lambda s, t, now: service.mark_paid(s, t, now=now, settings=Settings()),
            TransactionStatus.PAID,
            None,
        ),
        (
            lambda s, t, now: service.deny(s, t, reason="DECLINED", now=now),
            TransactionStatus.DENIED,
            "DECLINED",
        ),
        (
            lambda s, t, now: service.fail(s, t, reason="PROVIDER_ERROR", now=now),
            TransactionStatus.ERROR,
            "PROVIDER_ERROR",
        ),
    ],
)
def test_each_outcome_changes_a_pending_transaction_once(
    runtime: Runtime,
    clock: ManualClock,
    change: Callable[[Session, Transaction, datetime], bool],
    status: TransactionStatus,
    reason: str | None,
) -> None:
    merchant = make_account(runtime).account
    made = make_transaction(runtime, merchant)
    clock.advance(minutes=1)
    with runtime.database.transaction() as session:
        transaction = reread(session, merchant, made)
        assert change(session, transaction, clock.now())
        assert (transaction.status, transaction.reason) == (status, reason)
        assert transaction.status_changed_at == clock.now()
        # Final: the same change, or any other, changes nothing now.
        assert not change(session, transaction, clock.now())
        assert not service.mark_paid(
            session, transaction, now=clock.now(), settings=runtime.settings
        )
        assert not service.fail(session, transaction, reason=None, now=clock.now())
        history = [(e.status, e.reason) for e in repository.events(session, transaction)]
    assert history == [("PENDING", None), (status, reason)]


def test_an_outcome_on_a_stale_read_loses_to_the_change_made_first(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    made = make_transaction(runtime, merchant)
    now = runtime.clock.now()
    with runtime.database.session() as session:
        stale = reread(session, merchant, made)
    with runtime.database.transaction() as session:
        assert service.deny(session, reread(session, merchant, made), reason="DECLINED", now=now)
    with runtime.database.transaction() as session:
        seen = session.merge(stale, load=False)
        assert seen.status == TransactionStatus.PENDING
        assert not service.mark_paid(session, seen, now=now, settings=runtime.settings)
        assert (seen.status, seen.reason) == (TransactionStatus.DENIED, "DECLINED")
