from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from factories import make_account
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
from mobip.transactions.models import TRANSITIONS, Transaction, TransactionKind, TransactionStatus

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


def new_request(ttl_days: int = 3) -> service.NewTransaction:
    return service.NewTransaction(
        kind=TransactionKind.PAYMENT_REQUEST,
        item_amount=100,
        tax_amount=0,
        item_name="Thing",
        redirect_url="https://shop.example/ok",
        call_back_url="https://shop.example/cb",
        track_id=None,
        customer_name=None,
        customer_email="c@example.com",
        customer_phone="+33612345678",
        media="EMAIL",
        language=None,
        retry_period_days=0,
        retry_attempts=3,
        ttl_days=ttl_days,
    )


def test_status_machine(runtime: Runtime) -> None:
    if not runtime.database.is_sqlite:
        pytest.skip("the machine explores the rules; one backend is enough for that")
    merchant = make_account(runtime).account
    clock = runtime.clock
    assert hasattr(clock, "advance")

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            with runtime.database.transaction() as session:
                created = service.create(session, merchant, new_request(), runtime.settings, clock)
            self.trid = created.transaction.trid
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
