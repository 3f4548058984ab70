"""The composition root: what each domain registers with the runtime's delivery and schedule,
and the observers of the transactions' changes.

Delivery sends messages and runs scheduled jobs without knowing the domains they come from; each
domain hands over its own (``transactions.messages.register``: the composers of the messages it
queues; ``*.tasks.register``: its scheduled jobs). ``wire`` is called where a worker starts (the
app's in-process worker, ``mobip worker``) and by tests that run one.
"""

from __future__ import annotations

from mobip.auth import tasks as auth_tasks
from mobip.billing import tasks as billing_tasks
from mobip.checkout import tasks as checkout_tasks
from mobip.delivery.composing import Composers
from mobip.feed import service as feed_service
from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule
from mobip.receivables import settlement as receivables_settlement
from mobip.stats import service as stats_service
from mobip.stats import tasks as stats_tasks
from mobip.transactions import messages as transactions_messages
from mobip.transactions import observers
from mobip.transactions import tasks as transactions_tasks


class _Wired:
    """Whether ``wire`` has run for a runtime (its state, like what it registered)."""

    def __init__(self) -> None:
        self.done = False


def wire(runtime: Runtime) -> Runtime:
    """Register every domain's message composers and scheduled jobs with ``runtime``, once (a
    second call changes nothing). Returns ``runtime``."""
    wired = runtime.state(_Wired)
    if wired.done:
        return runtime
    transactions_messages.register(runtime.state(Composers))
    schedule = runtime.state(Schedule)
    # The order the jobs run in: expiry before reminders (an expired request gets none).
    transactions_tasks.register(schedule)
    auth_tasks.register(schedule)
    checkout_tasks.register(schedule)
    billing_tasks.register(schedule)
    stats_tasks.register(schedule)
    wired.done = True
    return runtime


def observe() -> None:
    """Subscribe the domains that keep their tables in step with the transactions
    (transactions/observers.py), for this process; again changes nothing. Done when this module
    is imported, which every entry point does (the app, the CLI's commands, the worker)."""
    for observer in _OBSERVERS:
        observers.subscribe(observer)


# Each domain's observer, in the order they run (added by their issues: stats, feed,
# receivables).
_OBSERVERS: list[observers.Observer] = [
    stats_service.observe,
    feed_service.observe,
    receivables_settlement.observe,
]

observe()
