"""get_stats (the spec's), with the ``uid`` extension of partners and admins."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mobip.accounts.endpoints import current_account
from mobip.api.routing import ACCESS_TOKEN, Call, CallOutside, Endpoint, Field
from mobip.stats import service


def get_stats(call: Call) -> dict[str, Any] | CallOutside:
    """The month's figures (JSON or XML), or with ``get_gz_file`` a link to a day's events as a
    .gz file: written outside any database transaction, then its row stored."""
    runtime = call.runtime
    caller = current_account(call)
    period = service.period_of(
        call.text("month_period"), call.text("day"), runtime.clock.now(), runtime.settings.zone
    )
    if not call.boolean("get_gz_file"):
        return service.get_stats(call.session, caller, call.text("uid"), period)
    day = service.require_day(period)
    account_ids = service.scope_ids(call.session, caller, call.text("uid"))

    def finish(session: Session, written: service.WrittenFile) -> dict[str, Any]:
        return service.record_file(session, caller, written, runtime.settings, runtime.clock.now())

    return CallOutside(
        lambda: service.write_file(runtime.database, runtime.settings, account_ids, day), finish
    )


_FIGURES = (
    "created_count, created_amount (requests and QR payments started), paid_count, "
    "paid_amount, fees, net_amount (= paid_amount - fees; payments completed that day), "
    "refunded_count, refunded_amount, cancelled_count, expired_count, denied_count, error_count"
)

ENDPOINTS = [
    Endpoint(
        "/mobip/get_stats",
        "GET",
        "Daily statistics of the caller's transactions (a partner's or admin's: its subtree's) "
        "for a month, in JSON or XML, or a day's events as a .gz CSV file",
        get_stats,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "month_period",
                "string",
                "The month, YYYY-MM (days of MOBIP_TIMEZONE); current month if empty (the month "
                "of day when only day is given)",
                max_length=7,
                pattern=f"^{service.MONTH_PATTERN}$",
            ),
            Field(
                "day",
                "string",
                "A day of month_period, YYYY-MM-DD: its figures in day_stats; required with "
                "get_gz_file (if empty, no file is generated)",
                max_length=10,
                format="date",
            ),
            Field(
                "get_gz_file",
                "boolean",
                "1, true or on: reply with url, a link to the day's events as a gzip'd CSV "
                "file, valid 24 hours",
            ),
            Field(
                "uid",
                "string",
                "Extension. A partner's or admin's descendant whose subtree to count (default: "
                "the caller's whole subtree)",
                max_length=64,
            ),
        ],
        outputs=[
            Field(
                "stats",
                "object",
                "month_period; days (each day with any figure: day and by_currency); totals "
                "(by_currency); day_stats when day is given. A by_currency item: currency, "
                f"{_FIGURES}, and by_media (media: EMAIL, SMS, QR, REUSABLE_QR, PORTAL, with the "
                "same figures). Amounts are strings of minor units",
            ),
            Field(
                "url",
                "string",
                "With get_gz_file: the link to the stats file; it works for 24 hours (then 410). "
                "Extension: expires_at, lines",
            ),
        ],
    )
]
