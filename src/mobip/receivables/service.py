"""External invoices (issue 15): importing a merchant's customers and invoices, mapping their
status codes, reading them back, asking a customer to pay, and the customer portal.

What a payment settles is in ``settlement`` (the observer of the transactions). docs/receivables.md
holds the decisions where the spec and the issue are silent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

from mobip.accounts import service as accounts
from mobip.accounts.models import Account, Role
from mobip.accounts.service import require_role
from mobip.config import Settings
from mobip.kit.clock import Clock
from mobip.kit.errors import InvalidField
from mobip.kit.validation import Refused, sendable_email
from mobip.receivables import repository
from mobip.receivables.errors import (
    ExternalCustomerNotFound,
    ExternalSourceNotFound,
    InvalidInvoiceData,
    InvalidStatusMapping,
    NothingToPay,
    TooManyInvoices,
)
from mobip.receivables.models import ExternalCustomer, ExternalInvoice, InvoiceStatus
from mobip.receivables.parsing import INVOICE_KEYS, INVOICES_KEY, read_invoices_lists
from mobip.transactions import service as transactions
from mobip.transactions.models import TransactionKind

MAX_INVOICES_PER_CALL = 10_000
# The most one invoice may be (minor units): far above any real invoice, within BIGINT.
MAX_INVOICE_AMOUNT = 10**15
MAX_ID_CHARS = 64
MAX_LABEL_CHARS = 255
# An error message names at most this many bad values.
_MAX_NAMED_ERRORS = 10
_TRACK_ID_MAX = 255
# A portal's payment left unpaid expires after a day, like a product page's.
PORTAL_PAYMENT_TTL_DAYS = 1

_CUSTOMER_KEYS = frozenset(
    {
        "CustomerId",
        "CustomerPhone",
        "CustomerEmail",
        "CustomerBalance_in_cents",
        "CustomerBalance_Date",
        INVOICES_KEY,
    }
)
_INVOICE_KEYS = INVOICE_KEYS
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"-?[0-9]{1,16}")
_OPEN = (InvoiceStatus.PENDING, InvoiceStatus.DUE, InvoiceStatus.PARTIALLY_PAID)


# --- sources --------------------------------------------------------------------------------------


def _merchant(caller: Account) -> Account:
    require_role(caller, Role.MERCHANT)
    return caller


def _source_of(session: Session, merchant: Account, source_id: str) -> Any:
    source = repository.get_source(session, merchant.id, source_id.strip())
    if source is None:
        raise ExternalSourceNotFound()
    return source


def _source_or_new(session: Session, merchant: Account, source_id: str, now: datetime) -> Any:
    """The caller's source (created when new), locked: one import or mapping of it at a time."""
    source_id = source_id.strip()
    if not source_id:
        raise InvalidField("ExternalSourceId", "must not be blank")
    return repository.locked_source(session, merchant.id, source_id, now)


# --- import ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Customer:
    customer_id: str
    phone: str | None
    email: str | None
    balance: int | None
    balance_date: date | None


@dataclass(frozen=True)
class _Invoice:
    customer_id: str
    inv_id: str
    inv_date: date | None
    due_date: date | None
    label: str | None
    amount: int
    external_status: str | None


# Where a value is: ("customer", "'c1'", "invoice", "'i2'"), formatted only for an error.
_Where = tuple[str, ...]


def _shown(where: _Where) -> str:
    return ", ".join(f"{where[i]} {where[i + 1]}" for i in range(0, len(where) - 1, 2))


class _Checker:
    """Reads the values of the parsed customers, collecting an error per bad value (each naming
    the customer, the invoice and the field). The usual value takes a fast path; the messages
    are written only for a bad one."""

    def __init__(self, smtputf8: bool, country: str) -> None:
        self.errors: list[str] = []
        self.smtputf8 = smtputf8
        self.country = country  # where a national phone number is read: the merchant's

    def fail(self, where: _Where, key: str | None, message: str) -> None:
        place = _shown(where) + (f", {key}" if key else "")
        self.errors.append(f"{place}: {message}")

    def text(self, where: _Where, values: dict[str, Any], key: str, limit: int) -> str | None:
        value = values.get(key)
        if value is None:
            return None
        if type(value) is str and len(value) <= limit and value.isprintable():
            return value.strip() or None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(where, key, "must be a string")
            return None
        text = str(value).strip()
        if len(text) > limit:
            self.fail(where, key, f"longer than {limit} characters")
            return None
        if not text.isprintable():
            self.fail(where, key, "has control characters")
            return None
        return text or None

    def date(self, where: _Where, values: dict[str, Any], key: str) -> date | None:
        value = values.get(key)
        if value is None:
            return None
        text = value if type(value) is str and len(value) == 10 else None
        if text is None:
            text = self.text(where, values, key, 10)
            if text is None:
                return None
        if _DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        self.fail(where, key, f"{text!r} is not a date (YYYY-MM-DD)")
        return None

    def integer(self, where: _Where, values: dict[str, Any], key: str) -> int | None:
        value = values.get(key)
        if value is None or value == "":
            return None
        if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 16:
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value.strip())
        self.fail(where, key, f"{value!r} is not an integer (minor units)")
        return None

    def unknown(self, where: _Where, values: dict[str, Any], known: frozenset[str]) -> None:
        if known.issuperset(values):
            return
        for key in values:
            if key not in known:
                self.fail(where, None, f"unknown field {key!r}")

    def customer(self, index: int, values: Any) -> tuple[_Customer | None, list[Any]]:
        where: _Where = ("customer", f"#{index}")
        if not isinstance(values, dict):
            self.fail(where, None, "must be an object")
            return None, []
        customer_id = self.text(where, values, "CustomerId", MAX_ID_CHARS)
        if customer_id:
            where = ("customer", repr(customer_id))
        elif "CustomerId" not in values:
            self.fail(where, "CustomerId", "is missing")
        self.unknown(where, values, _CUSTOMER_KEYS)
        phone = self.text(where, values, "CustomerPhone", 32)
        if phone is not None:
            phone = self._phone(where, phone)
        email = self.text(where, values, "CustomerEmail", 320)
        if email is not None:
            try:
                email = sendable_email(email, smtputf8=self.smtputf8)
            except Refused as exc:
                self.fail(where, "CustomerEmail", str(exc))
        balance = self.integer(where, values, "CustomerBalance_in_cents")
        balance_date = self.date(where, values, "CustomerBalance_Date")
        invoices = values.get(INVOICES_KEY, [])
        if not isinstance(invoices, list):
            self.fail(where, INVOICES_KEY, "must be a list of invoices")
            invoices = []
        if customer_id is None:
            return None, invoices
        return _Customer(customer_id, phone, email, balance, balance_date), invoices

    def _phone(self, where: _Where, value: str) -> str | None:
        try:
            number = phonenumbers.parse(value, self.country)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            self.fail(where, "CustomerPhone", f"{value!r} is not a valid phone number")
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def invoice(self, customer: str, index: int, values: Any) -> _Invoice | None:
        where: _Where = ("customer", repr(customer), "invoice", f"#{index}")
        if type(values) is not dict:
            self.fail(where, None, "must be an object")
            return None
        inv_id = self.text(where, values, "InvId", MAX_ID_CHARS)
        if inv_id is None:
            if "InvId" not in values:
                self.fail(where, "InvId", "is missing")
            return None
        where = ("customer", repr(customer), "invoice", repr(inv_id))
        self.unknown(where, values, _INVOICE_KEYS)
        amount = self.integer(where, values, "Amount_in_cents")
        if amount is None:
            if "Amount_in_cents" not in values:
                self.fail(where, "Amount_in_cents", "is missing")
        elif not 0 < amount <= MAX_INVOICE_AMOUNT:
            self.fail(where, "Amount_in_cents", f"must be between 1 and {MAX_INVOICE_AMOUNT}")
            amount = None
        invoice = _Invoice(
            customer,
            inv_id,
            self.date(where, values, "InvDate"),
            self.date(where, values, "InvDueDate"),
            self.text(where, values, "InvLbl", MAX_LABEL_CHARS),
            amount or 0,
            self.text(where, values, "InvStatus", MAX_ID_CHARS),
        )
        return invoice if amount is not None else None

    def raise_if_any(self) -> None:
        if self.errors:
            shown = "; ".join(self.errors[:_MAX_NAMED_ERRORS])
            more = len(self.errors) - _MAX_NAMED_ERRORS
            if more > 0:
                shown += f"; and {more} more"
            raise InvalidInvoiceData(f"InvoicesLists: {shown}")


def _checked(text: str, smtputf8: bool, country: str) -> tuple[list[_Customer], list[_Invoice]]:
    """The customers and invoices of an InvoicesLists value, all checked (InvalidInvoiceData
    naming every bad value, up to ten), or MalformedInvoicesLists naming line and column."""
    parsed = read_invoices_lists(text)
    count = sum(
        len(c.get(INVOICES_KEY) or [])
        if isinstance(c, dict) and isinstance(c.get(INVOICES_KEY), list)
        else 0
        for c in parsed
    )
    if count > MAX_INVOICES_PER_CALL:
        raise TooManyInvoices(
            f"InvoicesLists: {count} invoices; at most {MAX_INVOICES_PER_CALL} per call"
        )
    checker = _Checker(smtputf8, country)
    customers: list[_Customer] = []
    invoices: list[_Invoice] = []
    customer_ids: set[str] = set()
    inv_ids: set[str] = set()
    for index, values in enumerate(parsed, start=1):
        customer, raw_invoices = checker.customer(index, values)
        name = customer.customer_id if customer else f"#{index}"
        if customer is not None:
            if customer.customer_id in customer_ids:
                checker.fail(("customer", repr(name)), "CustomerId", "given twice in this call")
            customer_ids.add(customer.customer_id)
            customers.append(customer)
        for inv_index, raw in enumerate(raw_invoices, start=1):
            invoice = checker.invoice(name, inv_index, raw)
            if invoice is None:
                continue
            if invoice.inv_id in inv_ids:
                checker.fail(
                    ("customer", repr(name), "invoice", repr(invoice.inv_id)),
                    "InvId",
                    "given twice in this call",
                )
            inv_ids.add(invoice.inv_id)
            invoices.append(invoice)
    checker.raise_if_any()
    return customers, invoices


def set_external_invoices(
    session: Session,
    caller: Account,
    source_id: str,
    batch_id: str | None,
    invoices_lists: str,
    settings: Settings,
    clock: Clock,
) -> dict[str, Any]:
    """Import (create or update) a source's customers and invoices, all or nothing; the same
    BatchId again for the source is answered as the first time, changing nothing."""
    merchant = _merchant(caller)
    now = clock.now()
    batch = batch_id.strip() if batch_id else None
    # Locked first: a BatchId sent twice at once is imported once and replayed once.
    source = _source_or_new(session, merchant, source_id, now)
    if batch:
        stored = repository.batch_reply(session, source.id, batch)
        if stored is not None:
            return dict(json.loads(stored))
    customers, invoices = _checked(invoices_lists, settings.smtp_smtputf8, merchant.country)
    customer_pks = _write_customers(session, merchant, source.id, customers, now)
    created, updated = _write_invoices(
        session, merchant, source.id, invoices, customer_pks, batch, now
    )
    reply = {
        "ExternalSourceId": source.source_id,
        "BatchId": batch or "",
        "customers": str(len(customers)),
        "invoices": str(len(invoices)),
        "invoices_created": str(created),
        "invoices_updated": str(updated),
        "invoices_unchanged": str(len(invoices) - created - updated),
    }
    if batch:
        repository.add_batch(session, source.id, batch, json.dumps(reply), now)
    return reply


def _write_customers(
    session: Session,
    merchant: Account,
    source_pk: int,
    customers: Sequence[_Customer],
    now: datetime,
) -> dict[str, int]:
    """Insert the new customers and replace the values of the known ones that changed; the ids
    of all of them."""
    existing = repository.existing_customers(session, source_pk, [c.customer_id for c in customers])
    known = {customer_id: row[0] for customer_id, row in existing.items()}
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for customer in customers:
        values = (customer.phone, customer.email, customer.balance, customer.balance_date)
        old = existing.get(customer.customer_id)
        if old is None:
            new_rows.append(
                {
                    "source_pk": source_pk,
                    "account_id": merchant.id,
                    "customer_id": customer.customer_id,
                    "phone": values[0],
                    "email": values[1],
                    "balance": values[2],
                    "balance_date": values[3],
                    "credit": 0,
                    "portal_id": secrets.token_hex(10),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        elif tuple(old[1:]) != values:
            changed_rows.append(
                {
                    "row_id": old[0],
                    **dict(zip(repository.CUSTOMER_VALUES, (*values, now), strict=True)),
                }
            )
    repository.update_customers(session, changed_rows)
    repository.insert_customers(session, new_rows)
    if new_rows:
        known.update(
            repository.customer_pks(session, source_pk, [r["customer_id"] for r in new_rows])
        )
    return known


def _write_invoices(
    session: Session,
    merchant: Account,
    source_pk: int,
    invoices: Sequence[_Invoice],
    customer_pks: dict[str, int],
    batch_id: str | None,
    now: datetime,
) -> tuple[int, int]:
    """Insert the new invoices, update the changed ones (their old values into the history);
    (created, updated)."""
    existing = repository.existing_invoices(session, source_pk, [i.inv_id for i in invoices])
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for invoice in invoices:
        values = (
            customer_pks[invoice.customer_id],
            invoice.inv_date,
            invoice.due_date,
            invoice.label,
            invoice.amount,
            invoice.external_status,
        )
        columns = {
            "customer_pk": values[0],
            "inv_date": values[1],
            "due_date": values[2],
            "label": values[3],
            "amount": values[4],
            "external_status": values[5],
            "updated_at": now,
        }
        old = existing.get(invoice.inv_id)
        if old is None:
            new_rows.append(
                {
                    **columns,
                    "source_pk": source_pk,
                    "account_id": merchant.id,
                    "inv_id": invoice.inv_id,
                    "paid_amount": 0,
                    "paid_at": None,
                    "created_at": now,
                }
            )
        elif tuple(old[1:]) != values:
            changed_rows.append({**columns, "row_id": old[0]})
            history.append(
                {
                    "invoice_pk": old[0],
                    "changed_at": now,
                    "batch_id": batch_id,
                    "customer_pk": old[1],
                    "inv_date": old[2],
                    "due_date": old[3],
                    "label": old[4],
                    "amount": old[5],
                    "external_status": old[6],
                }
            )
    repository.insert_invoices(session, new_rows)
    repository.update_invoices(session, changed_rows)
    repository.insert_changes(session, history)
    return len(new_rows), len(changed_rows)


# --- status mapping -------------------------------------------------------------------------------


def set_external_invoice_status(
    session: Session,
    caller: Account,
    source_id: str,
    codes_by_status: dict[str, str],
    clock: Clock,
) -> dict[str, Any]:
    """Replace a source's mapping: each MOBIP status with its external codes (``|``-separated);
    a code may mean one MOBIP status only."""
    merchant = _merchant(caller)
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for status in InvoiceStatus:
        raw = codes_by_status.get(status.value) or ""
        codes = [code.strip() for code in raw.split("|") if code.strip()]
        if not codes:
            raise InvalidField(status.value, "give at least one external status code")
        for code in codes:
            if len(code) > MAX_ID_CHARS:
                raise InvalidField(status.value, f"a code is longer than {MAX_ID_CHARS} characters")
            other = seen.get(code)
            if other == status.value:
                continue  # the same code twice for one status: once is enough
            if other is not None:
                raise InvalidStatusMapping(
                    f"The external code {code!r} is given for both {other} and {status.value}"
                )
            seen[code] = status.value
            pairs.append((code, status.value))
    source = _source_or_new(session, merchant, source_id, clock.now())
    repository.replace_status_codes(session, source.id, pairs)
    return {"ExternalSourceId": source.source_id}


def get_external_invoices_status(
    session: Session, caller: Account, source_id: str
) -> dict[str, Any]:
    """A source's mapping: one entry per MOBIP status with its external codes."""
    merchant = _merchant(caller)
    source = _source_of(session, merchant, source_id)
    codes = repository.status_codes(session, [source.id])[source.id]
    return {
        "ExternalSourceId": source.source_id,
        "InvoiceStatusesList": [
            {
                "mobip_status": status.value,
                "external_statuses": "|".join(c for c, s in codes if s == status.value),
            }
            for status in InvoiceStatus
        ],
    }


def mobip_status(invoice: ExternalInvoice, mapping: dict[str, str], today: date) -> InvoiceStatus:
    """An invoice's MOBIP status: what MOBIP payments settled first, else its external code
    through the source's mapping, else ``due`` once its due date is past (``pending`` before)."""
    if invoice.paid_amount > 0:
        if invoice.paid_amount >= invoice.amount:
            return InvoiceStatus.FULLY_PAID
        return InvoiceStatus.PARTIALLY_PAID
    mapped = mapping.get(invoice.external_status) if invoice.external_status else None
    if mapped is not None:
        return InvoiceStatus(mapped)
    if invoice.due_date is not None and invoice.due_date < today:
        return InvoiceStatus.DUE
    return InvoiceStatus.PENDING


def remaining(invoice: ExternalInvoice, status: InvoiceStatus) -> int:
    """What is left to pay: nothing once fully paid (by MOBIP, or by the external system's
    word), else the amount less what MOBIP payments settled."""
    if status is InvoiceStatus.FULLY_PAID:
        return 0
    return max(invoice.amount - invoice.paid_amount, 0)


def _today(settings: Settings, clock: Clock) -> date:
    return clock.now().astimezone(settings.zone).date()


# --- reading --------------------------------------------------------------------------------------


def split_ids(value: str | None) -> list[str] | None:
    """``a|b|c`` as a list without blanks or repeats, or None when nothing is given."""
    if value is None:
        return None
    ids = list(dict.fromkeys(part.strip() for part in value.split("|") if part.strip()))
    return ids or None


def get_external_invoices(
    session: Session,
    caller: Account,
    source_id: str,
    inv_ids_text: str | None,
    settings: Settings,
    clock: Clock,
) -> dict[str, Any]:
    """A source's invoices (all, or those listed), with their MOBIP status, what was paid and
    by which transactions, and their customer's portal link and credit (overpayments); unknown
    ids in ``not_found``."""
    merchant = _merchant(caller)
    source = _source_of(session, merchant, source_id)
    inv_ids = split_ids(inv_ids_text)
    rows = repository.invoices_of_source(session, source.id, inv_ids)
    codes = repository.status_codes(session, [source.id])[source.id]
    mapping = {code: status for code, status in codes}
    first_code: dict[str, str] = {}
    for code, status in codes:
        first_code.setdefault(status, code)
    paid_by = repository.paid_by(session, [invoice.id for invoice, _ in rows])
    customers = repository.customers_by_pk(session, list({i.customer_pk for i, _ in rows}))
    today = _today(settings, clock)
    listed = []
    for invoice, customer_id in rows:
        status = mobip_status(invoice, mapping, today)
        settled = invoice.paid_amount > 0
        listed.append(
            {
                "CustomerId": customer_id,
                "InvId": invoice.inv_id,
                "InvDate": invoice.inv_date.isoformat() if invoice.inv_date else "",
                "InvDueDate": invoice.due_date.isoformat() if invoice.due_date else "",
                "InvLbl": invoice.label or "",
                "Amount_in_cents": str(invoice.amount),
                "InvStatus": first_code.get(status.value, invoice.external_status or "")
                if settled
                else invoice.external_status or "",
                "external_status": invoice.external_status or "",
                "mobip_status": status.value,
                "paid_amount_in_cents": str(invoice.paid_amount),
                "remaining_amount_in_cents": str(remaining(invoice, status)),
                "paid_at": invoice.paid_at.isoformat().replace("+00:00", "Z")
                if invoice.paid_at
                else "",
                "paid_by": "|".join(paid_by.get(invoice.id, [])),
                "url_portal": portal_url(
                    settings, portal_token(settings, customers[invoice.customer_pk].portal_id)
                ),
                "customer_credit_in_cents": str(customers[invoice.customer_pk].credit),
            }
        )
    found = {invoice.inv_id for invoice, _ in rows}
    return {
        "ExternalSourceId": source.source_id,
        "InvoicesList": listed,
        "not_found": "|".join(i for i in inv_ids or [] if i not in found),
    }


# --- asking a customer to pay ---------------------------------------------------------------------


def request_invoices_payment(
    session: Session,
    caller: Account,
    source_id: str,
    customer_id: str,
    media: str,
    inv_ids_text: str | None,
    ttl_days: int,
    settings: Settings,
    clock: Clock,
) -> transactions.PreparedCreate:
    """A payment request (e-mail or SMS, issue 3's) to an imported customer for what is left on
    the invoices listed (default: its ``due`` ones), with their ids as track_id and the
    customer's portal link in the message; written in the caller's unit of work."""
    merchant = _merchant(caller)
    source = _source_of(session, merchant, source_id)
    customer = repository.customer_of_account(session, merchant.id, source.id, customer_id.strip())
    if customer is None:
        raise ExternalCustomerNotFound()
    chosen = _chosen_invoices(session, customer, split_ids(inv_ids_text), settings, clock)
    track_id = _track_id(chosen, "InvoicesList")
    upper = media.strip().upper()
    if upper == "EMAIL" and not customer.email:
        raise InvalidField("media", "this customer has no CustomerEmail: use SMS")
    if upper == "SMS" and not customer.phone:
        raise InvalidField("media", "this customer has no CustomerPhone: use EMAIL")
    token = portal_token(settings, customer.portal_id)
    prepared = transactions.prepare_create(
        merchant,
        transactions.NewTransaction(
            kind=TransactionKind.PAYMENT_REQUEST,
            item_amount=sum(amount for _, amount in chosen),
            tax_amount=0,
            item_name=_item_name(chosen),
            redirect_url=portal_url(settings, token),
            call_back_url=None,
            track_id=track_id,
            customer_name=None,
            customer_email=customer.email,
            customer_phone=customer.phone,
            media=media,
            language=merchant.language,
            retry_period_days=0,
            retry_attempts=0,
            ttl_days=ttl_days,
            portal_url=portal_url(settings, token),
        ),
        settings,
        clock,
    )
    transactions.write_created(session.connection(), [prepared])
    return prepared


def _chosen_invoices(
    session: Session,
    customer: ExternalCustomer,
    inv_ids: list[str] | None,
    settings: Settings,
    clock: Clock,
    field: str = "InvoicesList",
) -> list[tuple[str, int]]:
    """(InvId, what is left to pay) of the customer's invoices ``inv_ids`` (each must be an
    open one of this customer), or of all its ``due`` ones."""
    invoices = repository.invoices_of_customer(session, customer.id)
    mapping = dict(repository.status_codes(session, [customer.source_pk])[customer.source_pk])
    today = _today(settings, clock)
    by_id = {invoice.inv_id: invoice for invoice in invoices}
    if inv_ids is None:
        chosen = [
            (i.inv_id, remaining(i, s))
            for i in invoices
            if (s := mobip_status(i, mapping, today)) is InvoiceStatus.DUE
        ]
        if not chosen:
            raise NothingToPay("This customer has no due invoice")
        return chosen
    unknown = [i for i in inv_ids if i not in by_id]
    if unknown:
        raise InvalidField(field, f"not invoices of this customer: {', '.join(unknown[:10])}")
    chosen = []
    for inv_id in inv_ids:
        invoice = by_id[inv_id]
        left = remaining(invoice, mobip_status(invoice, mapping, today))
        if left <= 0:
            raise InvalidField(field, f"{inv_id} has nothing left to pay")
        chosen.append((inv_id, left))
    return chosen


def _track_id(chosen: Sequence[tuple[str, int]], field: str) -> str:
    track_id = "|".join(inv_id for inv_id, _ in chosen)
    if len(track_id) > _TRACK_ID_MAX:
        raise InvalidField(
            field,
            f"too many invoices for one payment: their ids joined by '|' pass "
            f"{_TRACK_ID_MAX} characters",
        )
    return track_id


def _item_name(chosen: Sequence[tuple[str, int]]) -> str:
    name = ", ".join(inv_id for inv_id, _ in chosen)
    return name if len(name) <= MAX_LABEL_CHARS else name[: MAX_LABEL_CHARS - 1] + "…"


# --- the customer portal --------------------------------------------------------------------------

_PORTAL_PREFIX = "cp"
_PORTAL_ID = re.compile(r"[0-9a-f]{20}")


def _portal_signature(settings: Settings, portal_id: str) -> str:
    digest = hmac.new(
        settings.resolved_secret_key.encode(),
        f"mobip/receivables/portal/v1:{portal_id}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def portal_token(settings: Settings, portal_id: str) -> str:
    """A customer's portal token: its public id and an HMAC of it with the server's secret key
    (the token itself is stored nowhere, yet the same every time)."""
    return f"{_PORTAL_PREFIX}_{portal_id}_{_portal_signature(settings, portal_id)}"


def portal_url(settings: Settings, token: str) -> str:
    return f"{settings.resolved_base_url}/portal/{token}"


def _portal_id(settings: Settings, token: str) -> str | None:
    """The public id of a well-signed token (checked in constant time), else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != _PORTAL_PREFIX or not _PORTAL_ID.fullmatch(parts[1]):
        return None
    expected = _portal_signature(settings, parts[1])
    if not hmac.compare_digest(expected.encode(), parts[2].encode("utf-8", "replace")):
        return None
    return parts[1]


@dataclass(frozen=True)
class PortalInvoice:
    inv_id: str
    label: str
    inv_date: date | None
    due_date: date | None
    amount: int
    paid_amount: int
    remaining: int
    mobip_status: str
    paid_at: datetime | None


@dataclass(frozen=True)
class PortalView:
    """What a customer's portal shows: open invoices first (by due date), then paid ones."""

    merchant_name: str
    merchant_uid: str
    language: str  # "en" or "fr": the merchant's
    currency: str
    customer_id: str
    credit: int
    invoices: list[PortalInvoice]


def _portal_customer(
    session: Session, token: str, settings: Settings
) -> tuple[ExternalCustomer, Account] | None:
    portal_id = _portal_id(settings, token)
    if portal_id is None:
        return None
    customer = repository.customer_by_portal_id(session, portal_id)
    if customer is None:
        return None
    merchant = accounts.by_ids(session, [customer.account_id]).get(customer.account_id)
    return (customer, merchant) if merchant else None


def portal_view(
    session: Session, token: str, settings: Settings, clock: Clock
) -> PortalView | None:
    """The portal of the customer whose token this is, or None (unknown or badly signed)."""
    found = _portal_customer(session, token, settings)
    if found is None:
        return None
    customer, merchant = found
    invoices = repository.invoices_of_customer(session, customer.id)
    mapping = dict(repository.status_codes(session, [customer.source_pk])[customer.source_pk])
    today = _today(settings, clock)
    shown = []
    for invoice in invoices:
        status = mobip_status(invoice, mapping, today)
        shown.append(
            PortalInvoice(
                inv_id=invoice.inv_id,
                label=invoice.label or "",
                inv_date=invoice.inv_date,
                due_date=invoice.due_date,
                amount=invoice.amount,
                paid_amount=invoice.paid_amount,
                remaining=remaining(invoice, status),
                mobip_status=status.value,
                paid_at=invoice.paid_at,
            )
        )
    # Open ones first, by due date (none last); then the paid ones, by due date too.
    shown.sort(
        key=lambda i: (
            i.mobip_status == InvoiceStatus.FULLY_PAID,
            i.due_date is None,
            i.due_date or date.max,
            i.inv_id,
        )
    )
    return PortalView(
        merchant_name=merchant.name,
        merchant_uid=merchant.uid,
        language=merchant.language.lower(),
        currency=merchant.currency,
        customer_id=customer.customer_id,
        credit=customer.credit,
        invoices=shown,
    )


def pay_on_portal(
    session: Session, token: str, inv_ids: Sequence[str], settings: Settings, clock: Clock
) -> str:
    """A transaction for what is left on the customer's invoices ``inv_ids`` (open ones of its
    own; else InvalidField naming ``invoices``), their ids as track_id (so settlement links
    them); returns its hosted checkout's URL. ExternalCustomerNotFound for a bad token."""
    found = _portal_customer(session, token, settings)
    if found is None:
        raise ExternalCustomerNotFound()
    customer, merchant = found
    ids = list(dict.fromkeys(i.strip() for i in inv_ids if i.strip()))
    if not ids:
        raise InvalidField("invoices", "tick at least one invoice")
    chosen = _chosen_invoices(session, customer, ids, settings, clock, field="invoices")
    prepared = transactions.prepare_create(
        merchant,
        transactions.NewTransaction(
            kind=TransactionKind.INVOICE_PORTAL,
            item_amount=sum(amount for _, amount in chosen),
            tax_amount=0,
            item_name=_item_name(chosen),
            redirect_url=portal_url(settings, token),
            call_back_url=None,
            track_id=_track_id(chosen, "invoices"),
            customer_name=None,
            customer_email=customer.email,
            customer_phone=None,
            media=None,
            language=merchant.language,
            retry_period_days=0,
            retry_attempts=0,
            ttl_days=PORTAL_PAYMENT_TTL_DAYS,
        ),
        settings,
        clock,
    )
    transactions.write_created(session.connection(), [prepared])
    return prepared.url_checkout
