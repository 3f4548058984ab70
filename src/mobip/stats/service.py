"""get_stats: the daily figures of a merchant or of a subtree, and a day's events as a .gz file.

The observer (``observe``, subscribed in mobip.wiring) files every happening of a transaction in
the event log and adds it to the daily aggregate of its account, local day (MOBIP_TIMEZONE),
channel and currency, in the database transaction of the change: the figures are exact and a
past day's never change. get_stats reads only the aggregates of the month (one grouped query);
the .gz file streams the day's events in pages. See docs/stats.md.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import io
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from mobip.accounts import service as accounts
from mobip.accounts.errors import AccountNotFound
from mobip.accounts.models import Account, Role
from mobip.config import Settings
from mobip.kit.db import Database
from mobip.kit.runtime import TIMEZONE_OPTION, make_private_folder
from mobip.kit.security import hash_secret, new_id, secrets_equal
from mobip.stats import repository
from mobip.stats.errors import (
    DayNeededForFile,
    DayOutsideMonth,
    InvalidDay,
    InvalidMonthPeriod,
    StatsFileExpired,
    StatsFileNotFound,
)
from mobip.transactions import service as transactions
from mobip.transactions.observers import Change, Happening

FILE_LIFETIME = timedelta(hours=24)
FILE_ID_PREFIX = "sf"
# The link's token: kit/logging masks what follows this prefix (the access log has the path).
TOKEN_PREFIX = "sft_"  # noqa: S105 (a prefix, not a secret)
FILES_FOLDER = "stats"
# Events per page of a .gz file: memory stays that of one page whatever the day's size.
PAGE = 5000
# The channels ("media") in the order replies list them; others follow, sorted.
CHANNELS = ("EMAIL", "SMS", "QR", "REUSABLE_QR", "PORTAL")

# Years 0001 to 9999 (a calendar date's), months 01 to 12: the endpoint's declared pattern.
MONTH_PATTERN = r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])"
_MONTH = re.compile(MONTH_PATTERN)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# --- the figures --------------------------------------------------------------------------------


@dataclass
class Figures:
    """The figures of one day (or month), channel and currency, as the aggregates keep them;
    ``net_amount`` = paid_amount - fees (refunds are their own column: docs/stats.md)."""

    created_count: int = 0
    created_amount: int = 0
    paid_count: int = 0
    paid_amount: int = 0
    fees: int = 0
    refunded_count: int = 0
    refunded_amount: int = 0
    cancelled_count: int = 0
    expired_count: int = 0
    denied_count: int = 0
    error_count: int = 0

    @property
    def net_amount(self) -> int:
        return self.paid_amount - self.fees

    def add(self, other: Figures) -> None:
        for name in FIGURES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def reply(self) -> dict[str, str]:
        """The reply's fields: every figure as a string (amounts in minor units)."""
        values = {name: str(getattr(self, name)) for name in FIGURES}
        return {**values, "net_amount": str(self.net_amount)}


FIGURES = tuple(f.name for f in fields(Figures))
assert FIGURES == repository.FIGURES, "Figures and the stats_daily columns differ"


def _of_change(change: Change) -> Figures:
    """What one happening adds to its day's figures."""
    happening = change.happening
    if happening is Happening.CREATED:
        return Figures(created_count=1, created_amount=change.total_amount)
    if happening is Happening.PAID:
        return Figures(paid_count=1, paid_amount=change.total_amount, fees=change.fee)
    if happening is Happening.REFUNDED:
        return Figures(refunded_count=1, refunded_amount=change.refund_amount)
    if happening is Happening.CANCELLED:
        return Figures(cancelled_count=1)
    if happening is Happening.EXPIRED:
        return Figures(expired_count=1)
    if happening is Happening.DENIED:
        return Figures(denied_count=1)
    return Figures(error_count=1)


def _amounts(change: Change) -> tuple[int, int, int]:
    """An event's (amount, fee, net): a payment's total, fee and total - fee; a refund's amount,
    0 and -amount; any other happening's total, 0 and 0."""
    if change.happening is Happening.PAID:
        return change.total_amount, change.fee, change.total_amount - change.fee
    if change.happening is Happening.REFUNDED:
        return change.refund_amount, 0, -change.refund_amount
    return change.total_amount, 0, 0


# --- the observer -------------------------------------------------------------------------------


def local_day(moment: datetime, zone: ZoneInfo) -> str:
    """The calendar day of ``zone`` that holds ``moment``, "YYYY-MM-DD"."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date().isoformat()


def observe(conn: Connection, changes: Sequence[Change]) -> None:
    """File ``changes`` (transactions/observers.py) in the event log and add them to the daily
    aggregates of their account and of each of its ancestors (a row counts a subtree), on
    ``conn``: the lineage of each account of the batch (accounts.service.lineages: one small
    query each, compiled once), then two statements (one row per event, one per key)."""
    zone = ZoneInfo(conn.get_execution_options().get(TIMEZONE_OPTION, "UTC"))
    lineages = accounts.lineages(conn, sorted({change.account_id for change in changes}))
    events: list[dict[str, Any]] = []
    own: list[tuple[tuple[int, str, str, str], Figures]] = []
    for change in changes:
        day = local_day(change.at, zone)
        channel = change.channel
        amount, fee, net = _amounts(change)
        events.append(
            {
                "account_id": change.account_id,
                "trid": change.trid,
                "refund_id": change.refund_id,
                "happening": change.happening.value,
                "at": change.at,
                "day": day,
                "channel": channel,
                "currency": change.currency,
                "amount": amount,
                "fee": fee,
                "net": net,
            }
        )
        own.append(((change.account_id, day, channel, change.currency), _of_change(change)))
    repository.add_events(conn, events, _spread(own, lineages))


def _spread(
    own: Iterable[tuple[tuple[int, str, str, str], Figures]], lineages: Mapping[int, list[int]]
) -> list[dict[str, Any]]:
    """The aggregate rows of figures keyed (account, day, channel, currency): each added to its
    account's row and to each ancestor's (a row counts a subtree), one row per key."""
    daily: dict[tuple[int, str, str, str], Figures] = {}
    for (account_id, day, channel, currency), figures in own:
        for owner in lineages.get(account_id, (account_id,)):
            key = (owner, day, channel, currency)
            found = daily.get(key)
            if found is None:
                daily[key] = Figures(**{name: getattr(figures, name) for name in FIGURES})
            else:
                found.add(figures)
    return [
        {
            "account_id": key[0],
            "day": key[1],
            "channel": key[2],
            "currency": key[3],
            **{name: getattr(figures, name) for name in FIGURES},
        }
        for key, figures in daily.items()
    ]


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The month asked for ("YYYY-MM") and, optionally, one day of it ("YYYY-MM-DD")."""

    month: str
    day: str | None

    @property
    def first_day(self) -> str:
        return f"{self.month}-01"

    @property
    def last_day(self) -> str:
        year, month = map(int, self.month.split("-"))
        return f"{self.month}-{calendar.monthrange(year, month)[1]:02d}"


def _parse_day(value: str) -> str:
    if _DAY.fullmatch(value) is None:
        raise InvalidDay()
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InvalidDay(f"Invalid value for field 'day': {value} is not a calendar date") from None
    return value


def period_of(month_period: str | None, day: str | None, now: datetime, zone: ZoneInfo) -> Period:
    """The period get_stats reads: ``month_period`` (the current month of ``zone`` when empty;
    the month of ``day`` when only ``day`` is given); ``day`` must lie in it."""
    parsed_day = _parse_day(day) if day else None
    if month_period:
        if _MONTH.fullmatch(month_period) is None:
            raise InvalidMonthPeriod()
        month = month_period
    elif parsed_day is not None:
        month = parsed_day[:7]
    else:
        month = local_day(now, zone)[:7]
    if parsed_day is not None and parsed_day[:7] != month:
        raise DayOutsideMonth(
            f"Invalid value for field 'day': {parsed_day} is not in month_period {month}"
        )
    return Period(month, parsed_day)


def require_day(period: Period) -> str:
    """The day of a .gz file: get_gz_file without ``day`` writes nothing (1033, naming day)."""
    if period.day is None:
        raise DayNeededForFile()
    return period.day


# --- the scope ----------------------------------------------------------------------------------


def _target(session: Session, caller: Account, uid: str | None) -> Account:
    """The caller, or its descendant ``uid`` (AccountNotFound for anyone else; a merchant may
    name only itself)."""
    if not uid or uid == caller.uid:
        return caller
    found = accounts.visible_by_uid(session, caller, uid)
    if caller.role == Role.MERCHANT or found is None:
        raise AccountNotFound()
    return found


def scope_ids(session: Session, caller: Account, uid: str | None) -> list[int]:
    """Every account whose events the caller reads (the .gz file): a merchant its own; a
    partner or an admin its subtree, or the subtree of ``uid`` below it."""
    target = _target(session, caller, uid)
    if target.role == Role.MERCHANT:
        return [target.id]
    return accounts.subtree_ids(session, target)


def scope_roots(session: Session, caller: Account, uid: str | None) -> list[int]:
    """The accounts whose aggregate rows (each its subtree's) make the caller's figures: the
    caller or ``uid``; an admin's whole reach, every top-level account (disjoint subtrees)."""
    target = _target(session, caller, uid)
    if target.role == Role.ADMIN:
        return accounts.root_ids(session)
    return [target.id]


# --- reading the aggregates ---------------------------------------------------------------------


@dataclass
class _Bucket:
    """One day's (or the month's) figures of one currency, with its channels'."""

    figures: Figures
    channels: dict[str, Figures]

    def add(self, channel: str, figures: Figures) -> None:
        self.figures.add(figures)
        found = self.channels.get(channel)
        if found is None:
            self.channels[channel] = Figures(**{n: getattr(figures, n) for n in FIGURES})
        else:
            found.add(figures)

    def reply(self, currency: str) -> dict[str, Any]:
        order = {channel: position for position, channel in enumerate(CHANNELS)}
        channels = sorted(self.channels, key=lambda c: (order.get(c, len(order)), c))
        return {
            "currency": currency,
            **self.figures.reply(),
            "by_media": [{"media": c, **self.channels[c].reply()} for c in channels],
        }


def _by_currency(buckets: Mapping[str, _Bucket]) -> list[dict[str, Any]]:
    return [buckets[currency].reply(currency) for currency in sorted(buckets)]


def _bucket() -> _Bucket:
    return _Bucket(Figures(), {})


def daily_figures(
    session: Session, account_ids: Sequence[int], first_day: str, last_day: str
) -> dict[tuple[str, str, str], Figures]:
    """The figures of the subtrees of ``account_ids`` (give disjoint subtrees: e.g. merchants,
    or one partner) summed by (day, channel, currency), days from ``first_day`` to
    ``last_day`` included."""
    rows = repository.daily_sums(session, account_ids, first_day, last_day)
    return {(row[0], row[1], row[2]): Figures(*(int(v or 0) for v in row[3:])) for row in rows}


def stats_reply(figures: Mapping[tuple[str, str, str], Figures], period: Period) -> dict[str, Any]:
    """get_stats' ``stats``: the month, its days that have any figure, its totals, and the
    asked day's figures."""
    days: dict[str, dict[str, _Bucket]] = {}
    totals: dict[str, _Bucket] = {}
    for (day, channel, currency), value in sorted(figures.items()):
        days.setdefault(day, {}).setdefault(currency, _bucket()).add(channel, value)
        totals.setdefault(currency, _bucket()).add(channel, value)
    reply: dict[str, Any] = {
        "month_period": period.month,
        "days": [{"day": day, "by_currency": _by_currency(days[day])} for day in sorted(days)],
        "totals": {"by_currency": _by_currency(totals)},
    }
    if period.day is not None:
        reply["day_stats"] = {
            "day": period.day,
            "by_currency": _by_currency(days.get(period.day, {})),
        }
    return reply


def get_stats(session: Session, caller: Account, uid: str | None, period: Period) -> dict[str, Any]:
    """get_stats' JSON/XML reply for the caller's scope (see ``scope_ids``)."""
    roots = scope_roots(session, caller, uid)
    figures = daily_figures(session, roots, period.first_day, period.last_day)
    return {"stats": stats_reply(figures, period)}


def month_totals(session: Session, account_ids: Sequence[int], month: str) -> dict[str, Figures]:
    """The month's ("YYYY-MM", in MOBIP_TIMEZONE) totals of the subtrees of ``account_ids``
    (disjoint: e.g. the merchants, or one partner) by currency, from the aggregates: what
    get_stats' ``totals`` says (the money-integrity checks compare it)."""
    period = period_of(month, None, datetime.now(UTC), ZoneInfo("UTC"))
    totals: dict[str, Figures] = {}
    for (_, _, currency), value in daily_figures(
        session, account_ids, period.first_day, period.last_day
    ).items():
        totals.setdefault(currency, Figures()).add(value)
    return totals


def _figures_of(happening: str, count: int, amount: Any, fee: Any) -> Figures:
    """The figures of ``count`` events of one kind whose amounts and fees sum to these."""
    change = Happening(happening)
    if change is Happening.CREATED:
        return Figures(created_count=count, created_amount=int(amount))
    if change is Happening.PAID:
        return Figures(paid_count=count, paid_amount=int(amount), fees=int(fee))
    if change is Happening.REFUNDED:
        return Figures(refunded_count=count, refunded_amount=int(amount))
    return Figures(**{f"{change.value}_count": count})


def recount(
    session: Session, account_ids: Sequence[int], first_day: str, last_day: str
) -> dict[tuple[str, str, str], Figures]:
    """The figures of the events of ``account_ids`` themselves (not their descendants'),
    recounted from the event log (checks: for merchants, ``daily_figures``' own)."""
    counted: dict[tuple[str, str, str], Figures] = {}
    for day, channel, currency, happening, count, amount, fee in repository.event_sums(
        session, account_ids, first_day, last_day
    ):
        value = _figures_of(happening, count, amount, fee)
        counted.setdefault((day, channel, currency), Figures()).add(value)
    return counted


@dataclass(frozen=True)
class Rebuilt:
    events: int  # events read
    moved: int  # events whose day changed
    daily_rows: int  # aggregate rows written


def rebuild(session: Session, zone: ZoneInfo) -> Rebuilt:
    """After a change of MOBIP_TIMEZONE: every event's day again from its time, in ``zone``,
    and the daily aggregates recounted from the event log (each account's figures added to its
    own row and to each ancestor's, as the observer adds them), in the caller's unit of work,
    with the tables locked so that no event is filed meanwhile. Rebuilding in the zone the
    events were filed in changes nothing."""
    repository.lock_for_rebuild(session)
    events = moved = 0
    after = 0
    while page := repository.event_days_page(session, after, PAGE):
        changed = [
            {"row_id": row_id, "new_day": new_day}
            for row_id, at, day in page
            if (new_day := local_day(at, zone)) != day
        ]
        repository.set_event_days(session, changed)
        events, moved, after = events + len(page), moved + len(changed), page[-1][0]
    repository.clear_daily(session)
    own: dict[tuple[int, str, str, str], Figures] = {}
    for (
        account_id,
        day,
        channel,
        currency,
        happening,
        count,
        amount,
        fee,
    ) in repository.event_sums_by_account(session):
        value = _figures_of(happening, count, amount, fee)
        own.setdefault((account_id, day, channel, currency), Figures()).add(value)
    lineages = accounts.lineages(session, sorted({key[0] for key in own}))
    rows = _spread(own.items(), lineages)
    repository.add_events(session.connection(), [], rows)
    return Rebuilt(events, moved, len(rows))


def events_of(session: Session, account_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every filed event of these accounts, in order, as dicts (tests and checks)."""
    return [
        {
            c: getattr(event, c)
            for c in (
                "trid",
                "refund_id",
                "happening",
                "at",
                "day",
                "channel",
                "currency",
                "amount",
                "fee",
                "net",
            )
        }
        for event in repository.events_of(session, account_ids)
    ]


# --- the .gz file -------------------------------------------------------------------------------

HEADER = (
    "event_id",
    "trid",
    "track_id",
    "event",
    "time",
    "day",
    "status",
    "currency",
    "amount",
    "item_amount",
    "tax_amount",
    "fee",
    "net_amount",
    "refund_id",
    "media",
    "customer_name",
    "customer_email",
    "merchant_uid",
    "merchant_external_id",
)


@dataclass(frozen=True)
class WrittenFile:
    """A .gz file written under the data folder, before its row is stored."""

    file_id: str
    name: str
    day: str
    lines: int


def files_folder(settings: Settings) -> Path:
    return settings.data_dir / FILES_FOLDER


def _iso(moment: datetime) -> str:
    return transactions.iso(moment)


def _line(
    event: Any, transaction: transactions.TransactionSummary | None, merchant: tuple[str, str]
) -> tuple[Any, ...]:
    """One CSV line (HEADER's order) of an event row (repository.EVENT_COLUMNS)."""
    (event_id, trid, happening, at, day, currency, amount, fee, net, refund_id, channel) = event
    if transaction is None:  # never deleted; written all the same rather than dropped
        return (
            event_id,
            trid,
            "",
            happening.upper(),
            _iso(at),
            day,
            "",
            currency,
            amount,
            "",
            "",
            fee,
            net,
            refund_id or "",
            channel,
            "",
            "",
            *merchant,
        )
    return (
        event_id,
        trid,
        transaction.track_id or "",
        happening.upper(),
        _iso(at),
        day,
        transaction.status,
        currency,
        amount,
        transaction.item_amount,
        transaction.tax_amount,
        fee,
        net,
        refund_id or "",
        channel,
        transaction.customer_name or "",
        transaction.customer_email or "",
        *merchant,
    )


def event_lines(
    session: Session, account_ids: Sequence[int], day: str
) -> Iterator[tuple[Any, ...]]:
    """The CSV lines of ``day``'s events of ``account_ids``: by merchant, in event order, read
    in pages of PAGE events (keyset on the event id), each page's transactions in one query."""
    owners = repository.accounts_with_events(session, account_ids, day)
    merchants = {
        account_id: (label.uid, label.external_account_id or "")
        for account_id, label in accounts.labels_by_ids(session, owners).items()
    }
    for account_id in owners:
        merchant = merchants.get(account_id, ("", ""))
        after = 0
        while True:
            page = repository.events_page(session, account_id, day, after, PAGE)
            if not page:
                break
            found = transactions.summaries_by_trids(session, sorted({event[1] for event in page}))
            for event in page:
                yield _line(event, found.get(event[1]), merchant)
            after = page[-1][0]
            if len(page) < PAGE:
                break


def write_csv_gz(path: Path, lines: Iterable[Sequence[Any]]) -> int:
    """Write HEADER and ``lines`` to ``path`` as gzip'd CSV (UTF-8, RFC 4180: CRLF, quotes
    where needed); the number of lines written (header excluded)."""
    count = 0
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as packed,
        io.TextIOWrapper(packed, encoding="utf-8", newline="") as text,
    ):
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(HEADER)
        for line in lines:
            writer.writerow(line)
            count += 1
    return count


def write_file(
    database: Database, settings: Settings, account_ids: Sequence[int], day: str
) -> WrittenFile:
    """Write ``day``'s events of ``account_ids`` to a new .gz file under the data folder (a
    temporary name, renamed once complete), reading in its own read-only session."""
    folder = files_folder(settings)
    make_private_folder(folder)
    file_id = new_id(FILE_ID_PREFIX, 12)
    name = f"{file_id}.csv.gz"
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".part")
    os.close(handle)
    try:
        with database.session() as session:
            count = write_csv_gz(Path(temporary), event_lines(session, account_ids, day))
        os.replace(temporary, folder / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return WrittenFile(file_id, name, day, count)


def file_url(settings: Settings, file_id: str, token: str) -> str:
    return f"{settings.resolved_base_url}{file_path(file_id, token)}"


def file_path(file_id: str, token: str) -> str:
    return f"/stats/{file_id}/{token}.csv.gz"


def record_file(
    session: Session, caller: Account, written: WrittenFile, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Store a written file's row (its link's token as a hash) and get_stats' reply: ``url``
    and, as extensions, ``expires_at`` and ``lines``."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    expires_at = now + FILE_LIFETIME
    repository.add_file(
        session,
        {
            "file_id": written.file_id,
            "account_id": caller.id,
            "token_hash": hash_secret(token),
            "day": written.day,
            "path": written.name,
            "lines": written.lines,
            "created_at": now,
            "expires_at": expires_at,
        },
    )
    return {
        "url": file_url(settings, written.file_id, token),
        "expires_at": _iso(expires_at),
        "lines": str(written.lines),
    }


@dataclass(frozen=True)
class OpenedFile:
    path: Path
    day: str


def open_file(
    session: Session, settings: Settings, file_id: str, token: str, now: datetime
) -> OpenedFile:
    """The file behind a link: StatsFileNotFound unless the id and token are ours and the file
    is there, StatsFileExpired once its 24 hours are past."""
    row = repository.get_file(session, file_id) if file_id.startswith(FILE_ID_PREFIX) else None
    if row is None or not secrets_equal(row.token_hash, hash_secret(token)):
        raise StatsFileNotFound()
    if row.expires_at <= now:
        raise StatsFileExpired()
    path = files_folder(settings) / Path(row.path).name
    if not path.is_file():
        raise StatsFileNotFound()
    return OpenedFile(path, row.day)


def delete_expired_files(session: Session, settings: Settings, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` expired files and their rows; how many."""
    rows = repository.expired_files(session, now, limit)
    folder = files_folder(settings)
    for row in rows:
        (folder / Path(row.path).name).unlink(missing_ok=True)
    repository.delete_files(session, [row.id for row in rows])
    return len(rows)


def delete_left_files(session: Session, settings: Settings, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` files a crash left in the folder, older than a file's lifetime:
    a ``.part`` that was being written, or a written file whose row was never stored (the
    file is written before its row, in another unit of work); how many."""
    folder = files_folder(settings)
    if not folder.is_dir():
        return 0
    cutoff = (now - FILE_LIFETIME).timestamp()
    old = [path for path in folder.iterdir() if path.is_file() and path.stat().st_mtime < cutoff]
    written = {path.name.removesuffix(".csv.gz"): path for path in old if path.name.endswith(".gz")}
    known = repository.known_file_ids(session, list(written))
    left = [path for path in old if path.name.endswith(".part")]
    left += [path for file_id, path in written.items() if file_id not in known]
    for path in left[:limit]:
        path.unlink(missing_ok=True)
    return len(left[:limit])
