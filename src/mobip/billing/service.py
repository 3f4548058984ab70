"""Fee invoices: issuing (monthly, or an early close), numbering, reading, the PDF's signed link.

The periods of one account form a chain: its first invoice starts at the start of the month
(in MOBIP_TIMEZONE) in which the account was created, and each next invoice starts where the last
one ended. So consecutive periods never overlap and leave no gap, and each PAID transaction's fee
(chosen by its ``paid_at``) is on exactly one invoice. A period without fees issues nothing: the
next invoice starts where the last one ended and covers it too. The sums come from one grouped
query of the transactions domain (``transactions.service.fee_totals``); nothing here loops over
transactions. See docs/billing.md.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mobip.accounts import service as accounts
from mobip.accounts.errors import AccountNotFound
from mobip.accounts.models import Account, Role
from mobip.billing import repository
from mobip.billing.errors import InvalidInvoiceClose, InvoiceNotFound
from mobip.billing.models import Invoice
from mobip.config import Settings
from mobip.kit.clock import Clock
from mobip.kit.security import new_id, secrets_equal
from mobip.transactions import service as transactions

INVOICE_ID_PREFIX = "inv"
NUMBER_PREFIX = "MOBIP"
# A payment is marked PAID with its paid_at and committed a moment later: a period is closed
# only once its end is this far in the past, so no payment can still arrive inside it.
SETTLE = timedelta(minutes=5)
PDF_LINK_LIFETIME = timedelta(hours=24)

Progress = Callable[[int], None]


# --- time --------------------------------------------------------------------------------------


def month_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """The start (UTC instant) of the calendar month of ``zone`` that holds ``moment``."""
    local = moment.astimezone(zone)
    return datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)


def next_month_start(start: datetime, zone: ZoneInfo) -> datetime:
    """The start of the month after the one that holds ``start``."""
    local = start.astimezone(zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=zone).astimezone(UTC)


def latest_closable(now: datetime) -> datetime:
    """The latest moment a period may end at ``now`` (SETTLE before it)."""
    return now - SETTLE


# --- money -------------------------------------------------------------------------------------


def vat_of(amount_excl_tax: int, rate_bp: int) -> int:
    """VAT on an invoice's total, rounded half up to the minor unit, once per invoice:
    ``round_half_up(amount_excl_tax * rate_bp / 10000)`` in integers (rate_bp 2000 = 20 %)."""
    if amount_excl_tax < 0 or rate_bp < 0:
        raise ValueError("VAT of a negative amount or rate")
    return (2 * amount_excl_tax * rate_bp + 10_000) // 20_000


def number_of(year: int, sequence: int) -> str:
    """``MOBIP-2026-000001``: the year of issue and the year's sequence number."""
    return f"{NUMBER_PREFIX}-{year}-{sequence:06d}"


# --- issuing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """What one issuing did: the numbers given, in order, and the accounts looked at."""

    numbers: list[str]
    accounts: int


def first_start(account: Account, zone: ZoneInfo) -> datetime:
    """Where an account's first invoice starts: the start of its creation month."""
    return month_start(account.created_at, zone)


def _merchants(session: Session, uid: str | None) -> list[Account]:
    if uid is None:
        return [a for a in accounts.all_accounts(session) if a.role == Role.MERCHANT]
    account = accounts.by_uid(session, uid)
    if account is None:
        raise AccountNotFound(f"No account with uid {uid!r}")
    if account.role != Role.MERCHANT:
        raise InvalidInvoiceClose(f"Account {uid!r} is a {account.role}: only merchants pay fees")
    return [account]


def _issue(
    session: Session,
    merchants: Sequence[Account],
    end: datetime,
    settings: Settings,
    now: datetime,
    *,
    progress: Progress | None = None,
    chunk: int | None = None,
    all_merchants: bool = False,
) -> list[str]:
    """Issue, for each of ``merchants`` with fees between the end of its last invoice and
    ``end``, the invoice of that period; the numbers given. The caller holds the counter lock
    (``_locked_year``) so that the chain ends read here are final."""
    zone = settings.zone
    ends = repository.chain_ends(session)
    by_start: dict[datetime, list[Account]] = defaultdict(list)
    for account in merchants:
        start = ends.get(account.id) or first_start(account, zone)
        if start < end:
            by_start[start].append(account)
        elif progress:
            progress(1)
    # One grouped query over all the accounts when every merchant's period starts at once.
    everyone = (
        all_merchants and chunk is None and [len(merchants)] == [*map(len, by_start.values())]
    )
    rows: list[dict[str, Any]] = []
    for start, group in sorted(by_start.items()):
        size = chunk or len(group)
        for first in range(0, len(group), size):
            part = group[first : first + size]
            by_id = {a.id: a for a in part}
            ids = None if everyone else sorted(by_id)
            for total in transactions.fee_totals(session, start=start, end=end, account_ids=ids):
                owner = by_id.get(total.account_id)
                if owner is not None and total.fee > 0:
                    rows.append(_invoice_row(owner, total, start, end, settings, now))
            if progress:
                progress(len(part))
    return _numbered(session, rows, settings, now)


def _invoice_row(
    account: Account,
    total: transactions.FeeTotal,
    start: datetime,
    end: datetime,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    if total.fee != total.fee_variable + total.fee_fixed:
        raise ValueError(f"fee totals of account {account.id} do not add up: {total}")
    rate = settings.fee_vat_basis_points
    vat = vat_of(total.fee, rate)
    return {
        "invoice_id": new_id(INVOICE_ID_PREFIX, 16),
        "account_id": account.id,
        "issued_at": now,
        "invoice_date": now.astimezone(settings.zone).date().isoformat(),
        "period_start": start,
        "period_end": end,
        "timezone": settings.timezone,
        "seller_name": settings.platform_name,
        "seller_address": settings.platform_address,
        "seller_vat_id": settings.platform_vat_id,
        "buyer_uid": account.uid,
        "buyer_name": account.name,
        "buyer_external_id": account.external_account_id or "",
        "currency": total.currency,
        "transactions_count": total.transactions,
        "transactions_amount": total.total_amount,
        "fee_variable": total.fee_variable,
        "fee_fixed": total.fee_fixed,
        "amount_excl_tax": total.fee,
        "vat_rate_bp": rate,
        "vat_amount": vat,
        "amount": total.fee + vat,
    }


def _issue_year(settings: Settings, now: datetime) -> int:
    return now.astimezone(settings.zone).year


def _numbered(
    session: Session, rows: list[dict[str, Any]], settings: Settings, now: datetime
) -> list[str]:
    """Number ``rows`` (by account, then currency) after the year's last number, and store them."""
    year = _issue_year(settings, now)
    last = repository.lock_counter(session, year)  # already ours: the caller locked it first
    rows.sort(key=lambda row: (row["account_id"], row["currency"], row["period_start"]))
    for position, row in enumerate(rows, start=last + 1):
        row["number"] = number_of(year, position)
    repository.add_many(session, rows)
    if rows:
        repository.set_counter(session, year, last + len(rows))
    return [row["number"] for row in rows]


def close(
    session: Session,
    settings: Settings,
    clock: Clock,
    *,
    until: datetime | None = None,
    account_uid: str | None = None,
    progress: Progress | None = None,
    chunk: int | None = None,
) -> Issued:
    """The operator's early close (``mobip invoices issue``): for each merchant (or only
    ``account_uid``), the invoice from the end of its last one to ``until`` (default: the start
    of the current month in MOBIP_TIMEZONE). ``until`` must be at least SETTLE in the past."""
    now = clock.now()
    end = until if until is not None else month_start(now, settings.zone)
    if end.tzinfo is None:
        raise InvalidInvoiceClose("until must carry a time zone (e.g. 2026-12-01T00:00:00Z)")
    end = end.astimezone(UTC)
    if end > latest_closable(now):
        raise InvalidInvoiceClose(
            f"until must be at least {int(SETTLE.total_seconds() // 60)} minutes in the past "
            "(a payment being recorded now must not be left out of a closed period): "
            f"{end:%Y-%m-%d %H:%M} UTC can be closed from {end + SETTLE:%Y-%m-%d %H:%M} UTC"
        )
    repository.lock_counter(session, _issue_year(settings, now))
    merchants = _merchants(session, account_uid)
    numbers = _issue(
        session,
        merchants,
        end,
        settings,
        now,
        progress=progress,
        chunk=chunk,
        all_merchants=account_uid is None,
    )
    return Issued(numbers, len(merchants))


def issue_due_months(session: Session, settings: Settings, clock: Clock) -> Issued:
    """The worker's monthly issuing: every calendar month ended (SETTLE ago) since the last run
    is issued in turn, month by month, so months missed while no worker ran are caught up.
    Running it again issues nothing new."""
    now = clock.now()
    zone = settings.zone
    due = month_start(latest_closable(now), zone)
    done = repository.issued_through(session)
    if done is not None and done >= due:
        return Issued([], 0)  # the common case, every minute: one read
    repository.lock_counter(session, _issue_year(settings, now))
    done = repository.issued_through(session)  # another worker may have done it meanwhile
    if done is not None and done >= due:
        return Issued([], 0)
    merchants = _merchants(session, None)
    if done is None:
        starts = [first_start(a, zone) for a in merchants]
        done = min(starts) if starts else due
    numbers: list[str] = []
    month_end = next_month_start(done, zone) if done < due else due
    while month_end <= due:
        numbers += _issue(session, merchants, month_end, settings, now, all_merchants=True)
        month_end = next_month_start(month_end, zone)
    repository.set_issued_through(session, due)
    return Issued(numbers, len(merchants))


# --- reading -----------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return transactions.iso(moment)


def _target(session: Session, caller: Account, uid: str | None) -> Account:
    """The caller, or the descendant ``uid`` of a partner or admin (4002 otherwise)."""
    if not uid or uid == caller.uid:
        return caller
    target = accounts.by_uid(session, uid) if caller.role != Role.MERCHANT else None
    if target is None or not (caller.role == Role.ADMIN or target.path.startswith(caller.path)):
        raise AccountNotFound()
    return target


def summary(invoice: Invoice) -> dict[str, str]:
    """get_invoice_list's item: the spec's three fields, then ours."""
    return {
        "invoice_id": invoice.invoice_id,
        "invoice_date": invoice.invoice_date,
        "amount": str(invoice.amount),
        "invoice_number": invoice.number,
        "period_start": _iso(invoice.period_start),
        "period_end": _iso(invoice.period_end),
        "currency": invoice.currency,
        "amount_excl_tax": str(invoice.amount_excl_tax),
        "vat_amount": str(invoice.vat_amount),
    }


def list_invoices(session: Session, caller: Account, uid: str | None) -> dict[str, Any]:
    """The invoices of the caller (or of its descendant ``uid``), newest first."""
    target = _target(session, caller, uid)
    invoices = repository.list_of_account(session, target.id)
    return {"invoice_data": [summary(invoice) for invoice in invoices]}


def lines(invoice: Invoice) -> list[dict[str, str]]:
    """The invoice's lines: the percentage part on the PAID transactions, and the fixed part."""
    return [
        {
            "line": "percentage",
            "transactions": str(invoice.transactions_count),
            "transactions_amount": str(invoice.transactions_amount),
            "amount": str(invoice.fee_variable),
        },
        {
            "line": "fixed",
            "transactions": str(invoice.transactions_count),
            "amount": str(invoice.fee_fixed),
        },
    ]


def details(invoice: Invoice, settings: Settings, now: datetime) -> dict[str, Any]:
    """Every field of an invoice, its lines and its PDF's signed link."""
    return {
        **summary(invoice),
        "issued_at": _iso(invoice.issued_at),
        "timezone": invoice.timezone,
        "seller_name": invoice.seller_name,
        "seller_address": invoice.seller_address,
        "seller_vat_id": invoice.seller_vat_id,
        "buyer_uid": invoice.buyer_uid,
        "buyer_name": invoice.buyer_name,
        "buyer_external_id": invoice.buyer_external_id,
        "transactions_count": str(invoice.transactions_count),
        "transactions_amount": str(invoice.transactions_amount),
        "fee_variable": str(invoice.fee_variable),
        "fee_fixed": str(invoice.fee_fixed),
        "vat_rate": _percent(invoice.vat_rate_bp),
        "lines": lines(invoice),
        "url_pdf": pdf_url(settings, invoice.invoice_id, now),
    }


def _percent(basis_points: int) -> str:
    """2000 → "20", 550 → "5.5" (exact: integers only)."""
    whole, cents = divmod(basis_points, 100)
    return str(whole) if cents == 0 else f"{whole}.{cents:02d}".rstrip("0")


def get_invoice(
    session: Session, caller: Account, invoice_id: str, settings: Settings, clock: Clock
) -> dict[str, Any]:
    """An invoice the caller's account (or one below it) was issued; others are not found."""
    invoice, merchant = open_invoice(session, invoice_id)
    if not accounts.sees(caller, merchant):
        raise InvoiceNotFound()  # the same reply as an unknown id
    return {"invoice_data": details(invoice, settings, clock.now())}


def is_invoice_id(value: str) -> bool:
    """Whether ``value`` has an invoice id's form (new_id("inv", 16)); others are not looked up."""
    return (
        value.startswith("inv_")
        and len(value) == 26
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in value[4:])
    )


def open_invoice(session: Session, invoice_id: str) -> tuple[Invoice, Account]:
    """An invoice and its merchant by id alone (the signed PDF link, the operator's command)."""
    invoice = repository.by_invoice_id(session, invoice_id) if is_invoice_id(invoice_id) else None
    merchant = (
        accounts.by_ids(session, [invoice.account_id]).get(invoice.account_id) if invoice else None
    )
    if invoice is None or merchant is None:
        raise InvoiceNotFound()
    return invoice, merchant


def of_accounts(session: Session, account_ids: Sequence[int]) -> Sequence[Invoice]:
    """Every invoice of these accounts, in number order."""
    return repository.of_accounts(session, account_ids)


# --- the PDF's signed link ---------------------------------------------------------------------


def _signature(secret_key: str, invoice_id: str, expires: int) -> str:
    message = f"mobip/invoice-pdf/v1:{invoice_id}:{expires}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def pdf_path(invoice_id: str) -> str:
    return f"/invoices/{invoice_id}.pdf"


def pdf_url(settings: Settings, invoice_id: str, now: datetime) -> str:
    """The PDF's link, signed with the server's secret key, valid PDF_LINK_LIFETIME from ``now``."""
    expires = int((now + PDF_LINK_LIFETIME).timestamp())
    signature = _signature(settings.resolved_secret_key, invoice_id, expires)
    path = pdf_path(invoice_id)
    return f"{settings.resolved_base_url}{path}?expires={expires}&signature={signature}"


def pdf_link_valid(
    settings: Settings, invoice_id: str, expires: str, signature: str, now: datetime
) -> bool:
    """Whether a PDF link's ``expires`` and ``signature`` are ours and not yet past."""
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
        return False
    expected = _signature(settings.resolved_secret_key, invoice_id, int(expires))
    return secrets_equal(expected, signature) and int(expires) > now.timestamp()
