"""Billing tests' helpers: merchants with a fee schedule, payments made PAID at a given time
through the path the checkout takes (transactions.service.mark_paid)."""

from __future__ import annotations

from datetime import datetime, timedelta

from factories import make_account, make_transaction
from mobip.accounts import service as accounts
from mobip.accounts.models import Account, Role
from mobip.accounts.service import NewCredentials
from mobip.billing import service
from mobip.billing.models import Invoice
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions


def merchant(
    runtime: Runtime,
    *,
    percent: str | None = "1.4",
    fixed: int = 25,
    parent: NewCredentials | None = None,
    name: str = "Bakery Dupont",
    external_id: str | None = None,
) -> NewCredentials:
    creds = make_account(
        runtime, role=Role.MERCHANT, parent=parent, name=name, external_id=external_id
    )
    if percent is not None:
        set_fees(runtime, creds.account.uid, percent, fixed)
    return creds


def set_fees(runtime: Runtime, uid: str, percent: str, fixed: int) -> None:
    with runtime.database.transaction() as session:
        accounts.set_fees(
            session, uid, percent=percent, fixed=fixed, clear=False, now=runtime.clock.now()
        )


def pay(runtime: Runtime, account: Account, amount: int, at: datetime) -> str:
    """A transaction of ``amount`` (item, no tax) made PAID at ``at``; its trid."""
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    clock.set(at)
    made = make_transaction(runtime, account, item_amount=amount, tax_amount=0)
    with runtime.database.transaction() as session:
        owner = session.get(Account, account.id)
        assert owner is not None
        found = transactions.get_of_account(session, owner, made.trid)
        assert found is not None
        assert transactions.mark_paid(session, found, now=at, settings=runtime.settings)
    return made.trid


def monthly(runtime: Runtime, at: datetime) -> list[str]:
    """The worker's monthly issuing run at ``at``; the numbers it gave."""
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    clock.set(at)
    with runtime.database.transaction(immediate=True) as session:
        return service.issue_due_months(session, runtime.settings, clock).numbers


def close(runtime: Runtime, at: datetime, **options: object) -> list[str]:
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    clock.set(at)
    with runtime.database.transaction(immediate=True) as session:
        return service.close(session, runtime.settings, clock, **options).numbers  # type: ignore[arg-type]


def invoices(runtime: Runtime, *accounts_: Account) -> list[Invoice]:
    with runtime.database.session() as session:
        return list(service.of_accounts(session, [a.id for a in accounts_]))


def make_invoice(runtime: Runtime, account: Account) -> str:
    """An invoice of ``account`` (fees set, one payment an hour ago, closed 10 minutes ago),
    the clock left where it was; its invoice_id."""
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    now = clock.now()
    set_fees(runtime, account.uid, "1.4", 25)
    pay(runtime, account, 1_000, now - timedelta(hours=1))
    clock.set(now)
    with runtime.database.transaction(immediate=True) as session:
        until = now - 2 * service.SETTLE
        service.close(session, runtime.settings, clock, until=until, account_uid=account.uid)
    with runtime.database.session() as session:
        return service.of_accounts(session, [account.id])[-1].invoice_id
