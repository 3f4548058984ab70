"""Auth's scheduled work: purging the access tokens and the login-throttle counters that can no
longer matter (run by the worker every ``MOBIP_SCHEDULE_INTERVAL_SECONDS``).

Several workers may run these at once: deleting a row twice deletes it once.
"""

from __future__ import annotations

from datetime import timedelta

from mobip.auth import repository
from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule

# The jobs' names: a schedules run logs "N tokens purged, N login throttle counters purged".
TOKENS_PURGED = "tokens purged"
THROTTLES_PURGED = "login throttle counters purged"


def purge_tokens(runtime: Runtime) -> int:
    """Delete expired access tokens; how many were deleted."""
    inactivity = timedelta(seconds=runtime.settings.token_inactivity_seconds)
    with runtime.database.transaction(immediate=True) as session:
        return repository.delete_expired_tokens(session, runtime.clock.now(), inactivity)


def purge_login_throttles(runtime: Runtime) -> int:
    """Delete get_token failure counters whose window has closed; how many were deleted.

    Counters are kept per address and per (address, api_account_id): without a purge, a client
    cycling through account ids would leave one row per id behind for good.
    """
    window = timedelta(seconds=runtime.settings.login_window_seconds)
    with runtime.database.transaction(immediate=True) as session:
        return repository.delete_closed_windows(session, runtime.clock.now(), window)


def register(schedule: Schedule) -> None:
    schedule.add(TOKENS_PURGED, purge_tokens)
    schedule.add(THROTTLES_PURGED, purge_login_throttles)
