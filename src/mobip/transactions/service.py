"""Payment requests and one-use QR codes: creation, reading, expiry, cancellation, resending."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from mobip.accounts.models import Account, Language, Role
from mobip.accounts.service import fee_schedule_of_account_id, require_role
from mobip.config import Settings
from mobip.delivery import service as delivery
from mobip.kit.clock import Clock
from mobip.kit.errors import Conflict, InvalidField, MissingField
from mobip.kit.security import new_id
from mobip.kit.validation import email_address, http_url, international_phone
from mobip.outbound import client as outbound
from mobip.qr.service import render_png
from mobip.transactions import observers, repository
from mobip.transactions.errors import (
    RefundExceedsRemaining,
    ResendLimitReached,
    TransactionAlreadyCancelled,
    TransactionAlreadyDenied,
    TransactionAlreadyPaid,
    TransactionFullyRefunded,
    TransactionInError,
    TransactionNotFound,
    TransactionNotRefundable,
)
from mobip.transactions.models import (
    Media,
    Refund,
    RefundSource,
    RefundStatus,
    Transaction,
    TransactionKind,
    TransactionStatus,
)

EXPIRED = "EXPIRED"
CANCELLED_BY_MERCHANT = "CANCELLED_BY_MERCHANT"
_NOT_PENDING: dict[str, type[Conflict]] = {
    TransactionStatus.PAID: TransactionAlreadyPaid,
    TransactionStatus.CANCELLED: TransactionAlreadyCancelled,
    TransactionStatus.DENIED: TransactionAlreadyDenied,
    TransactionStatus.ERROR: TransactionInError,
}


@dataclass(frozen=True)
class NewTransaction:
    """A create request's values, already typed by the endpoint."""

    kind: TransactionKind
    item_amount: int
    tax_amount: int
    item_name: str
    redirect_url: str
    call_back_url: str | None
    track_id: str | None
    customer_name: str | None
    customer_email: str | None
    customer_phone: str | None
    media: str | None
    language: str | None
    retry_period_days: int
    retry_attempts: int
    ttl_days: int
    tax_field: str = "tax_amount"
    # A product page's payment (products/): the reusable QR it came from and the quantity.
    qr_id: str | None = None
    quantity: int = 1
    # A payment request for imported invoices (receivables/): the customer's portal, linked
    # from the message.
    portal_url: str | None = None


@dataclass(frozen=True)
class PreparedCreate:
    """A create request validated and turned into its rows, before any database work.

    Everything the reply shows is decided here (ids, links, the QR code), so the rows can be
    written by the request's own unit of work or by api/batch's group commit alike.
    """

    transaction: dict[str, Any]
    message: dict[str, Any] | None
    url_checkout: str
    url_qr: str
    raw_qr: str | None

    @property
    def trid(self) -> str:
        return str(self.transaction["trid"])

    @property
    def track_id(self) -> str | None:
        return self.transaction["track_id"]  # type: ignore[no-any-return]


def checkout_url(settings: Settings, transaction: Transaction) -> str:
    return _checkout_url(settings, transaction.checkout_token)


def qr_url(settings: Settings, transaction: Transaction) -> str:
    return _qr_url(settings, transaction.checkout_token)


def _checkout_url(settings: Settings, token: str) -> str:
    return f"{settings.resolved_base_url}/pay/{token}"


def _qr_url(settings: Settings, token: str) -> str:
    return f"{settings.resolved_base_url}/qr/{token}"


def write_created(conn: Connection, batch: Sequence[PreparedCreate]) -> None:
    """Insert prepared creates, with their messages: one, or a group commit's batch (api/batch)."""
    repository.insert_created(conn, [prepared.transaction for prepared in batch])
    delivery.insert_messages(
        conn, [prepared.message for prepared in batch if prepared.message is not None]
    )
    if observers.subscribed():
        observers.notify(conn, [_created(prepared.transaction) for prepared in batch])


def _created(values: Mapping[str, Any]) -> observers.Change:
    return observers.Change(
        happening=observers.Happening.CREATED,
        trid=values["trid"],
        account_id=values["account_id"],
        at=values["created_at"],
        kind=values["kind"],
        media=values["media"],
        track_id=values["track_id"],
        currency=values["currency"],
        total_amount=values["item_amount"] + values["tax_amount"],
        item_amount=values["item_amount"],
        tax_amount=values["tax_amount"],
        fee=0,
    )


def _observed(
    session: Session,
    transaction: Transaction,
    happening: observers.Happening,
    *,
    at: datetime,
    refund: Refund | None = None,
) -> None:
    """Tell the observers (transactions/observers.py) of ``happening``, in this unit of work."""
    if not observers.subscribed():
        return
    change = observers.Change(
        happening=happening,
        trid=transaction.trid,
        account_id=transaction.account_id,
        at=at,
        kind=transaction.kind,
        media=transaction.media,
        track_id=transaction.track_id,
        currency=transaction.currency,
        total_amount=transaction.total_amount,
        item_amount=transaction.item_amount,
        tax_amount=transaction.tax_amount,
        fee=(transaction.fee or 0) if happening is observers.Happening.PAID else 0,
        refund_id=refund.refund_id if refund is not None else None,
        refund_amount=refund.amount if refund is not None else 0,
    )
    session.flush()
    observers.notify(session.connection(), [change])


def _change_status(
    session: Session,
    transaction: Transaction,
    happening: observers.Happening,
    *,
    to: TransactionStatus,
    reason: str | None,
    now: datetime,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """repository.change_status, then the observers told when it changed."""
    changed = repository.change_status(
        session, transaction, to=to, reason=reason, now=now, values=values
    )
    if changed:
        _observed(session, transaction, happening, at=now)
    return changed


def prepare_create(
    merchant: Account, data: NewTransaction, settings: Settings, clock: Clock
) -> PreparedCreate:
    """Validate a create request and build its rows and reply; touches no database."""
    require_role(merchant, Role.MERCHANT)
    values = _validated(data, settings)
    now = clock.now()
    token = new_id("ck", 24)
    values.update(
        trid=new_id("tr", 16),
        checkout_token=token,
        account_id=merchant.id,
        kind=data.kind.value,
        status=TransactionStatus.PENDING.value,
        reason=None,
        currency=merchant.currency,
        automatic_resends=0,
        manual_resends=0,
        expires_at=now + timedelta(days=data.ttl_days),
        payment_method=None,
        is_refunded=False,
        refunded_amount=0,
        created_at=now,
        updated_at=now,
        status_changed_at=now,
        last_request_at=None,
        qr_id=data.qr_id,
        quantity=data.quantity,
    )
    url_checkout = _checkout_url(settings, token)
    raw_qr = None
    message = None
    if data.kind is TransactionKind.PAYMENT_REQUEST:
        media, target = _recipient(
            values["media"], values["customer_phone"], values["customer_email"]
        )
        message = delivery.payment_request_message(
            media=media,
            target=target,
            trid=values["trid"],
            occasion="initial",
            account_id=merchant.id,
            clock=clock,
            portal_url=data.portal_url,
        )
        values["last_request_at"] = message["created_at"]
        raw_qr = base64.b64encode(render_png(url_checkout)).decode("ascii")
    return PreparedCreate(values, message, url_checkout, _qr_url(settings, token), raw_qr)


@dataclass(frozen=True)
class ProductPayment:
    """A payment started on a reusable QR code's product page (products/): the unit's amounts,
    the quantity, and what the QR gives every payment it starts."""

    qr_id: str
    unit_item_amount: int
    unit_tax_amount: int
    quantity: int
    item_name: str
    track_id: str | None
    call_back_url: str | None
    redirect_url: str
    language: str
    customer_name: str | None
    customer_email: str | None


# A payment started on a product page and abandoned expires after a day.
PRODUCT_PAYMENT_TTL_DAYS = 1


def start_product_payment(
    session: Session, merchant: Account, payment: ProductPayment, settings: Settings, clock: Clock
) -> PreparedCreate:
    """A new PENDING transaction for a product page's Pay: the create path of the API
    (prepare_create, then write_created in the caller's unit of work), amounts times quantity."""
    prepared = prepare_create(
        merchant,
        NewTransaction(
            kind=TransactionKind.PRODUCT_PAYMENT,
            item_amount=payment.unit_item_amount * payment.quantity,
            tax_amount=payment.unit_tax_amount * payment.quantity,
            item_name=payment.item_name,
            redirect_url=payment.redirect_url,
            call_back_url=payment.call_back_url,
            track_id=payment.track_id,
            customer_name=payment.customer_name,
            customer_email=payment.customer_email,
            customer_phone=None,
            media=None,
            language=payment.language,
            retry_period_days=0,
            retry_attempts=0,
            ttl_days=PRODUCT_PAYMENT_TTL_DAYS,
            qr_id=payment.qr_id,
            quantity=payment.quantity,
        ),
        settings,
        clock,
    )
    write_created(session.connection(), [prepared])
    return prepared


def paid_totals_by_qr(
    session: Session, account_ids: Sequence[int], qr_ids: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """How many PAID transactions of ``account_ids`` came from each reusable QR of ``qr_ids``,
    and their total in minor units (the caller checked it may see those QR codes); a QR code
    without any is absent."""
    return repository.paid_totals_by_qr(session, account_ids, qr_ids)


def _validated(data: NewTransaction, settings: Settings) -> dict[str, Any]:
    if data.item_amount <= 0:
        raise InvalidField("item_amount_in_cents", "must be greater than 0")
    if data.tax_amount < 0:
        raise InvalidField(data.tax_field, "must be 0 or more")
    if data.item_amount + data.tax_amount > settings.max_total_amount:
        raise InvalidField(
            "item_amount_in_cents",
            f"the total (item + tax) must be at most {settings.max_total_amount}",
        )
    https_only = settings.is_production
    media = _media(data.media) if data.kind is TransactionKind.PAYMENT_REQUEST else None
    phone = (
        international_phone("customer_phone", data.customer_phone) if data.customer_phone else None
    )
    if media is Media.SMS and phone is None:
        raise MissingField("customer_phone")
    return {
        "item_amount": data.item_amount,
        "tax_amount": data.tax_amount,
        "item_name": data.item_name,
        "redirect_url": http_url("redirect_url", data.redirect_url, https_only=https_only),
        "call_back_url": callback_url(data.call_back_url, settings) if data.call_back_url else None,
        "track_id": data.track_id,
        "customer_name": data.customer_name,
        "customer_email": email_address(
            "customer_email", data.customer_email, smtputf8=settings.smtp_smtputf8
        )
        if data.customer_email
        else None,
        "customer_phone": phone,
        "media": media.value if media else None,
        "language": _language(data.language).value,
        "retry_period_days": data.retry_period_days,
        "retry_attempts": data.retry_attempts,
        "ttl_days": data.ttl_days,
    }


def callback_url(value: str, settings: Settings) -> str:
    """An http(s) URL our outbound client could send to (an address literal is checked now);
    also the rule of a reusable QR code's call_back_url (products/)."""
    url = http_url("call_back_url", value, https_only=settings.is_production)
    reason = outbound.refusal_before_sending(url, settings)
    if reason is not None:
        raise InvalidField("call_back_url", f"cannot receive callbacks: {reason}")
    return url


def _media(value: str | None) -> Media:
    if not value:
        raise MissingField("media")
    try:
        return Media(value.strip().upper())
    except ValueError:
        raise InvalidField("media", "must be SMS or EMAIL") from None


def _language(value: str | None) -> Language:
    if not value:
        return Language.EN
    try:
        return Language(value.strip().upper())
    except ValueError:
        raise InvalidField("language", "must be EN or FR") from None


def queue_request(session: Session, transaction: Transaction, occasion: str, clock: Clock) -> None:
    """Queue the payment request (occasion: initial, reminder or manual) in the session."""
    media, target = _recipient(
        transaction.media, transaction.customer_phone, transaction.customer_email
    )
    _queue_request(session, transaction, media, target, occasion, clock)


def _queue_request(
    session: Session, transaction: Transaction, media: str, target: str, occasion: str, clock: Clock
) -> None:
    """Queue a payment request and note its time on the transaction (the reminders' anchor)."""
    message = delivery.queue_payment_request(
        session,
        media=media,
        target=target,
        trid=transaction.trid,
        occasion=occasion,
        account_id=transaction.account_id,
        clock=clock,
    )
    repository.note_request(session, transaction, message.created_at)


def _recipient(media_value: str | None, phone: str | None, email: str | None) -> tuple[str, str]:
    """The payment request's media and address: SMS to the phone, else e-mail."""
    media = Media(media_value) if media_value else Media.EMAIL
    target = phone if media is Media.SMS else email
    assert target is not None
    return media.value, target


# --- reading ----------------------------------------------------------------------------------


def get_for(
    session: Session, caller: Account, trid: str, clock: Clock
) -> tuple[Transaction, Account]:
    """The transaction if the caller owns it or is above its owner (else the same 404)."""
    found = repository.get_visible(session, caller, trid)
    if found is None:
        raise TransactionNotFound()
    transaction, merchant = found
    expire_if_due(session, transaction, clock)
    return transaction, merchant


def expire_if_due(session: Session, transaction: Transaction, clock: Clock) -> bool:
    """Apply expiry lazily: a PENDING transaction past its ttl is CANCELLED with reason EXPIRED."""
    now = clock.now()
    if transaction.status != TransactionStatus.PENDING or now < transaction.expires_at:
        return False
    return _cancel(session, transaction, EXPIRED, clock)


def _cancel(session: Session, transaction: Transaction, reason: str, clock: Clock) -> bool:
    happening = observers.Happening.EXPIRED if reason == EXPIRED else observers.Happening.CANCELLED
    changed = _change_status(
        session,
        transaction,
        happening,
        to=TransactionStatus.CANCELLED,
        reason=reason,
        now=clock.now(),
    )
    if changed:
        queue_callback(session, transaction, "CANCELLED", clock)
    return changed


def queue_callback(
    session: Session,
    transaction: Transaction,
    resp_code: str,
    clock: Clock,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Queue the merchant's callback about ``transaction`` (PROCESSED, CANCELLED or ERROR), when
    it has a callback URL; ``extra`` fields follow the usual ones (a refund's)."""
    if transaction.call_back_url:
        delivery.queue_callback(
            session,
            url=transaction.call_back_url,
            trid=transaction.trid,
            track_id=transaction.track_id,
            resp_code=resp_code,
            account_id=transaction.account_id,
            clock=clock,
            extra=extra,
        )


# --- for the hosted checkout: reads by capability and the payment outcomes ---------------------


def get_by_checkout_token(
    session: Session, token: str, *, for_update: bool = False
) -> tuple[Transaction, Account] | None:
    """The transaction behind a checkout link (a hosted page or its QR image) and its merchant;
    ``for_update`` locks the row (PostgreSQL; SQLite's write transactions are serialised)."""
    return repository.get_with_merchant_by_checkout_token(session, token, for_update=for_update)


def get_of_account(
    session: Session, account: Account, trid: str, *, for_update: bool = False
) -> Transaction | None:
    """A transaction of ``account`` itself (a provider's webhook speaks for one merchant only)."""
    return repository.get_of_account(session, account, trid, for_update=for_update)


def set_payment_method(
    session: Session, transaction: Transaction, payment_method: str, now: datetime
) -> None:
    """Record how a paid transaction was paid (e.g. ``card``)."""
    repository.set_payment_method(session, transaction, payment_method, now)


def set_receipt_email(
    session: Session, transaction: Transaction, address: str, now: datetime
) -> None:
    """Record the address the customer gave on the payment page for the receipt."""
    repository.set_receipt_email(session, transaction, address, now)


def receipt_address(transaction: Transaction) -> str | None:
    """Where the receipt of ``transaction`` goes: the merchant's customer_email, else the
    address the customer typed on the payment page; None when there is neither."""
    return transaction.customer_email or transaction.receipt_email


def mark_paid(
    session: Session, transaction: Transaction, *, now: datetime, settings: Settings
) -> bool:
    """PENDING → PAID with its fee, computed here once from the schedule in force now (the
    owner's, inherited or the settings' default) and never again; False when the status table
    forbids it or another change came first."""
    schedule = fee_schedule_of_account_id(session, transaction.account_id, settings)
    fee = compute_fee(transaction.total_amount, schedule.basis_points, schedule.fixed)
    return _change_status(
        session,
        transaction,
        observers.Happening.PAID,
        to=TransactionStatus.PAID,
        reason=None,
        now=now,
        values={
            "paid_at": now,
            "fee_bp": fee.basis_points,
            "fee_fixed": fee.fixed,
            "fee_variable": fee.variable,
            "fee_fixed_part": fee.fixed_part,
            "fee": fee.total,
        },
    )


@dataclass(frozen=True)
class Fee:
    """A PAID transaction's fee: the schedule used and the two parts after the cap."""

    basis_points: int
    fixed: int
    variable: int  # round_half_up(total * basis_points / 10000), at most the total
    fixed_part: int  # the fixed amount, reduced so that variable + fixed_part <= total
    total: int  # variable + fixed_part

    @property
    def parts(self) -> tuple[int, int]:
        return self.variable, self.fixed_part


def compute_fee(total: int, basis_points: int, fixed: int) -> Fee:
    """The fee of a payment of ``total`` minor units, in integers only: the percentage part
    rounded half up, plus the fixed amount, capped at the total. The cap takes from the fixed
    part first: the percentage part (at most the total, since basis_points <= 10000) is kept
    whole, and the fixed part is what is left of the total (docs/fees.md)."""
    if total < 0 or not 0 <= basis_points <= 10_000 or fixed < 0:
        raise ValueError("a fee needs total >= 0, 0 <= basis_points <= 10000 and fixed >= 0")
    variable = (total * basis_points + 5_000) // 10_000
    fixed_part = min(fixed, total - variable)
    return Fee(basis_points, fixed, variable, fixed_part, variable + fixed_part)


@dataclass(frozen=True)
class FeeTotal:
    """One account's PAID transactions in a period, in one currency, and their fees."""

    account_id: int
    currency: str
    transactions: int  # number of PAID transactions with paid_at in the period
    total_amount: int  # sum of their totals
    fee_variable: int  # sum of fee_variable
    fee_fixed: int  # sum of fee_fixed_part
    fee: int  # sum of fee (== fee_variable + fee_fixed)


def fee_totals(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    account_ids: Sequence[int] | None = None,
) -> list[FeeTotal]:
    """The fees of PAID transactions with ``start <= paid_at < end``, per account and currency,
    ordered by account_id; only accounts with at least one. One grouped query. Refunds change
    nothing: the fee is not returned (docs/fees.md)."""
    return [FeeTotal(*row) for row in repository.fee_totals(session, start, end, account_ids)]


def last_paid_at(session: Session, account_id: int) -> datetime | None:
    """When the account's latest PAID transaction was paid; None when it has none."""
    return repository.last_paid_at(session, account_id)


def deny(session: Session, transaction: Transaction, *, reason: str | None, now: datetime) -> bool:
    """PENDING → DENIED with ``reason``; False as mark_paid's."""
    return _change_status(
        session,
        transaction,
        observers.Happening.DENIED,
        to=TransactionStatus.DENIED,
        reason=reason,
        now=now,
    )


def fail(session: Session, transaction: Transaction, *, reason: str | None, now: datetime) -> bool:
    """PENDING → ERROR with ``reason``; False as mark_paid's."""
    return _change_status(
        session,
        transaction,
        observers.Happening.ERROR,
        to=TransactionStatus.ERROR,
        reason=reason,
        now=now,
    )


# --- refunds (issue 13, docs/fees.md) ----------------------------------------------------------
# A refund through refund_transaction takes two units of work around the provider's call
# (checkout/refunds.py): reserve_refund adds it PENDING under the transaction's row lock (its
# amount counts against what is left, so concurrent refunds cannot add up past the total),
# the provider is called with no transaction open, then complete_refund or release_refund.

REFUND_EVENT = "refund"


@dataclass(frozen=True)
class ReservedRefund:
    """A PENDING refund, reserved for the provider's call."""

    refund_id: str
    trid: str
    account_id: int
    amount: int
    currency: str
    provider: str


def reserve_refund(
    session: Session,
    caller: Account,
    trid: str,
    amount: int | None,
    *,
    provider: str,
    clock: Clock,
) -> ReservedRefund:
    """Reserve a refund of ``amount`` (default: all that is left) of a PAID transaction the
    caller owns or is above; refused when nothing or less is left."""
    if amount is not None and amount <= 0:
        raise InvalidField("amount_in_cents", "must be greater than 0")
    found = repository.get_visible(session, caller, trid, for_update=True)
    if found is None:
        raise TransactionNotFound()
    transaction, _ = found
    if transaction.status != TransactionStatus.PAID:
        raise TransactionNotRefundable(
            f"Only a PAID transaction can be refunded (this one is {transaction.status})"
        )
    left = transaction.total_amount - repository.refunds_reserved(session, transaction)
    if left <= 0:
        raise TransactionFullyRefunded()
    if amount is None:
        amount = left
    if amount > left:
        raise RefundExceedsRemaining(
            f"amount_in_cents: at most {left} is left to refund of this transaction"
        )
    refund = _add_pending_refund(session, transaction, amount, RefundSource.API, provider, clock)
    return ReservedRefund(
        refund.refund_id,
        transaction.trid,
        transaction.account_id,
        amount,
        refund.currency,
        provider,
    )


def get_for_worker(session: Session, trid: str) -> tuple[Transaction, Account] | None:
    """A transaction and its merchant by trid, for the worker's jobs only (no tenant filter)."""
    return repository.get_with_merchant_by_trid(session, trid)


def stale_reservations(session: Session, before: datetime, limit: int) -> list[ReservedRefund]:
    """Refunds reserved before ``before`` and still PENDING: their request stopped between the
    reservation and its outcome (a crash), so nobody will finish them but a retry."""
    return [
        ReservedRefund(r.refund_id, trid, r.account_id, r.amount, r.currency, r.provider)
        for r, trid in repository.stale_pending_refunds(session, before, limit)
    ]


def _locked_with_refund(
    session: Session, reserved: ReservedRefund
) -> tuple[Transaction, Refund | None]:
    found = repository.get_with_merchant_by_trid(session, reserved.trid)
    assert found is not None, "a transaction with refunds is never deleted"
    transaction = found[0]
    repository.lock(session, transaction)
    return transaction, repository.refund_of(session, transaction, reserved.refund_id)


def complete_refund(
    session: Session, reserved: ReservedRefund, provider_reference: str, clock: Clock
) -> dict[str, Any]:
    """The provider took the reserved refund: SUCCEEDED with its reference, counted on the
    transaction, the merchant's callback queued. Once: a refund the provider's webhook recorded
    first is not counted again."""
    transaction, refund = _locked_with_refund(session, reserved)
    assert refund is not None, "a reserved refund is only removed by release_refund"
    if refund.status == RefundStatus.PENDING:
        _succeed(session, transaction, refund, provider_reference, clock)
    return refund_data(refund)


def release_refund(session: Session, reserved: ReservedRefund) -> None:
    """The provider refused (or could not be reached): the reservation is removed, nothing is
    recorded. A refund its webhook already confirmed stays."""
    _, refund = _locked_with_refund(session, reserved)
    if refund is not None and refund.status == RefundStatus.PENDING:
        repository.delete_refund(session, refund)


def record_provider_refund(
    session: Session,
    transaction: Transaction,
    *,
    provider: str,
    reference: str,
    amount: int,
    refund_id: str | None,
    clock: Clock,
) -> bool:
    """A refund the provider reports (its webhook): recorded once, by its reference. Ours
    (``refund_id`` from its metadata) completes the PENDING reservation; one made in the
    provider's dashboard is added. False when it was already recorded."""
    repository.lock(session, transaction)
    if repository.refund_by_reference(session, transaction, provider, reference) is not None:
        return False
    ours = repository.refund_of(session, transaction, refund_id) if refund_id else None
    if ours is not None:
        if ours.status != RefundStatus.PENDING:
            return False
        _succeed(session, transaction, ours, reference, clock)
        return True
    refund = _add_pending_refund(
        session, transaction, amount, RefundSource.PROVIDER, provider, clock
    )
    _succeed(session, transaction, refund, reference, clock)
    return True


def _add_pending_refund(
    session: Session,
    transaction: Transaction,
    amount: int,
    source: RefundSource,
    provider: str,
    clock: Clock,
) -> Refund:
    """A new refund of ``transaction``, PENDING until its provider's reference is known."""
    return repository.add_refund(
        session,
        Refund(
            refund_id=new_id("rf", 16),
            transaction_id=transaction.id,
            account_id=transaction.account_id,
            amount=amount,
            currency=transaction.currency,
            status=RefundStatus.PENDING.value,
            source=source.value,
            provider=provider,
            provider_reference=None,
            created_at=clock.now(),
            refunded_at=None,
        ),
    )


def _succeed(
    session: Session, transaction: Transaction, refund: Refund, reference: str, clock: Clock
) -> None:
    now = clock.now()
    refund.status = RefundStatus.SUCCEEDED.value
    refund.provider_reference = reference
    refund.refunded_at = now
    repository.add_refunded(session, transaction, refund.amount, now)
    _observed(session, transaction, observers.Happening.REFUNDED, at=now, refund=refund)
    queue_callback(
        session,
        transaction,
        "PROCESSED",
        clock,
        extra={
            "event": REFUND_EVENT,
            "refund_id": refund.refund_id,
            "refund_amount_in_cents": str(refund.amount),
            "refunded_amount_in_cents": str(transaction.refunded_amount),
            "isRefunded": "true" if transaction.is_refunded else "false",
        },
    )


def refund_data(refund: Refund) -> dict[str, str]:
    """A refund as get_transaction and refund_transaction show it."""
    return {
        "refund_id": refund.refund_id,
        "amount_in_cents": str(refund.amount),
        "currency": refund.currency,
        "status": refund.status,
        "source": refund.source,
        "provider": refund.provider,
        "provider_reference": refund.provider_reference or "",
        "created_at": iso(refund.created_at),
        "refunded_at": iso(refund.refunded_at) if refund.refunded_at else "",
    }


def refund_reply(session: Session, trid: str, refund: dict[str, str]) -> dict[str, Any]:
    """refund_transaction's reply: the refund and where the transaction stands now."""
    found = repository.get_with_merchant_by_trid(session, trid)
    assert found is not None
    transaction = found[0]
    return {
        "trid": trid,
        "refund": refund,
        "refunded_amount_in_cents": str(transaction.refunded_amount),
        "isRefunded": "true" if transaction.is_refunded else "false",
    }


def _require_pending(transaction: Transaction) -> None:
    error = _NOT_PENDING.get(transaction.status)
    if error is not None:
        reason = f" ({transaction.reason})" if transaction.reason else ""
        raise error(f"{error.default_message}{reason}: only a PENDING transaction can change")


def cancel(session: Session, caller: Account, trid: str, clock: Clock) -> None:
    """PENDING → CANCELLED, with the callback queued when the transaction has a callback URL."""
    transaction, _ = get_for(session, caller, trid, clock)
    _require_pending(transaction)
    if not _cancel(session, transaction, CANCELLED_BY_MERCHANT, clock):
        _require_pending(transaction)  # someone else changed it first: say what it became


def resend(
    session: Session,
    caller: Account,
    trid: str,
    media_value: str | None,
    settings: Settings,
    clock: Clock,
) -> None:
    """Send the payment request again by SMS or e-mail; bounded per transaction."""
    media = _media(media_value)
    transaction, _ = get_for(session, caller, trid, clock)
    _require_pending(transaction)
    if transaction.manual_resends >= settings.max_manual_resends:
        raise ResendLimitReached(
            f"This transaction was resent {transaction.manual_resends} times, the maximum"
        )
    if media is Media.SMS and not transaction.customer_phone:
        raise InvalidField("media", "SMS needs a customer_phone on the transaction")
    if media is Media.EMAIL and not transaction.customer_email:
        raise InvalidField("media", "EMAIL needs a customer_email on the transaction")
    target = transaction.customer_phone if media is Media.SMS else transaction.customer_email
    assert target is not None
    repository.count_manual_resend(session, transaction, clock.now())
    _queue_request(session, transaction, media.value, target, "manual", clock)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def is_valid(session: Session, caller: Account, trid: str, clock: Clock) -> dict[str, str]:
    """is_valid's reply; read as one Core row unless the transaction is due to expire."""
    reply = is_valid_read(session.connection(), caller, trid, clock)
    if reply is None:
        get_for(session, caller, trid, clock)  # applies the expiry
        session.flush()
        reply = is_valid_read(session.connection(), caller, trid, clock)
    assert reply is not None  # an expired transaction is no longer PENDING
    return reply


def is_valid_read(
    conn: Connection, caller: Account, trid: str, clock: Clock
) -> dict[str, str] | None:
    """is_valid's reply from one Core row; None when the transaction is due to expire (a write)."""
    return _status_reply(repository.status_view(conn, caller, trid), clock)


def is_valid_read_sqlite(
    dbapi: sqlite3.Connection, caller: Account, trid: str, clock: Clock
) -> dict[str, str] | None:
    """is_valid_read on the event loop's raw SQLite reader (api/routing's fast reads)."""
    return _status_reply(repository.status_view_sqlite(dbapi, caller, trid), clock)


def _status_reply(row: repository.StatusView | None, clock: Clock) -> dict[str, str] | None:
    if row is None:
        raise TransactionNotFound()
    if row.status == TransactionStatus.PENDING and clock.now() >= row.expires_at:
        return None
    return {
        "transaction_status": row.status,
        "track_id": row.track_id or "",
        "reason": row.reason or "",
        "payment_method": row.payment_method or "",
        "desc": row.item_name,
        "isRefunded": "true" if row.is_refunded else "false",
        "transaction_datetime": iso(row.status_changed_at),
        "external_accountid": row.external_account_id or "",
    }


def mask_recipient(target: str) -> str:
    """j***@example.com, +336******78: enough to recognise, not to harvest."""
    if "@" in target:
        local, _, domain = target.partition("@")
        return f"{local[:1]}***@{domain}"
    if target.startswith("+"):
        return target[:4] + "*" * max(0, len(target) - 6) + target[-2:]
    return "***"


def transaction_data(
    session: Session, transaction: Transaction, merchant: Account, settings: Settings
) -> dict[str, Any]:
    """Every stored field of the transaction, its status history and its messages; no secrets."""
    return {
        "trid": transaction.trid,
        "kind": transaction.kind,
        "transaction_status": transaction.status,
        "reason": transaction.reason or "",
        "item_name": transaction.item_name,
        "item_amount_in_cents": str(transaction.item_amount),
        "tax_amount_in_cents": str(transaction.tax_amount),
        "total_amount_in_cents": str(transaction.total_amount),
        "currency": transaction.currency,
        "track_id": transaction.track_id or "",
        "customer_name": transaction.customer_name or "",
        "customer_email": transaction.customer_email or "",
        "customer_phone": transaction.customer_phone or "",
        "media": transaction.media or "",
        "language": transaction.language,
        "redirect_url": transaction.redirect_url,
        "call_back_url": transaction.call_back_url or "",
        "retry_period": str(transaction.retry_period_days),
        "retry_attempts": str(transaction.retry_attempts),
        "automatic_resends": str(transaction.automatic_resends),
        "manual_resends": str(transaction.manual_resends),
        "transaction_ttl": str(transaction.ttl_days),
        "expires_at": iso(transaction.expires_at),
        "payment_method": transaction.payment_method or "",
        "isRefunded": "true" if transaction.is_refunded else "false",
        "paid_at": iso(transaction.paid_at) if transaction.paid_at else "",
        "fee": "" if transaction.fee is None else str(transaction.fee),
        "fee_percent_part": ""
        if transaction.fee_variable is None
        else str(transaction.fee_variable),
        "fee_fixed_part": ""
        if transaction.fee_fixed_part is None
        else str(transaction.fee_fixed_part),
        "net_amount": ""
        if transaction.fee is None
        else str(transaction.total_amount - transaction.fee),
        "refunded_amount": str(transaction.refunded_amount),
        "refunds": [refund_data(r) for r in repository.refunds(session, transaction)],
        "qr_id": transaction.qr_id or "",
        "quantity": str(transaction.quantity),
        "created_at": iso(transaction.created_at),
        "updated_at": iso(transaction.updated_at),
        "transaction_datetime": iso(transaction.status_changed_at),
        "merchant_uid": merchant.uid,
        "external_accountid": merchant.external_account_id or "",
        "url_checkout": checkout_url(settings, transaction),
        "url_qr": qr_url(settings, transaction),
        "status_history": [
            {"status": event.status, "reason": event.reason or "", "at": iso(event.at)}
            for event in repository.events(session, transaction)
        ],
        "messages": [
            {
                "kind": message.kind,
                "media": message.load_payload().get("media", ""),
                "recipient": mask_recipient(message.target)
                if message.kind != delivery.CALLBACK
                else message.target,
                "status": message.status,
                "attempts": str(message.attempts),
                "last_error": message.last_error or "",
                "created_at": iso(message.created_at),
            }
            for message in delivery.messages_about(
                session, account_id=transaction.account_id, subject=transaction.trid
            )
        ],
    }


@dataclass(frozen=True)
class TransactionSummary:
    """What a report line shows of a transaction (stats' .gz file, the partner feed)."""

    trid: str
    track_id: str | None
    status: str
    item_amount: int
    tax_amount: int
    customer_name: str | None
    customer_email: str | None
    customer_phone: str | None
    payment_method: str | None
    is_refunded: bool


def summaries_by_trids(session: Session, trids: Sequence[str]) -> dict[str, TransactionSummary]:
    """The summaries of the transactions of ``trids`` that exist, by trid: one query, no ORM
    objects (several times cheaper than loading Transaction objects for thousands of lines).
    The caller decided what it may see."""
    if not trids:
        return {}
    return {
        row[0]: TransactionSummary(*row) for row in repository.summaries_by_trids(session, trids)
    }
