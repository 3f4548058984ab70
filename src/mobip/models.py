"""Every table, imported once so the metadata (and Alembic) sees the whole schema."""

from __future__ import annotations

from mobip.accounts.models import Account, AccountDocument
from mobip.api.idempotency import IdempotencyRecord
from mobip.auth.models import AccessToken, LoginThrottle
from mobip.billing.models import Invoice, InvoiceCounter, InvoiceSchedule
from mobip.checkout.models import PaymentAttempt, ProviderEvent, ProviderWebhook
from mobip.delivery.models import CallbackSecret, OutboxAttempt, OutboxMessage
from mobip.feed.models import FeedLine
from mobip.kit.db import Base
from mobip.products.models import ReusableQr
from mobip.receivables.models import (
    Allocation,
    ExternalBatch,
    ExternalCustomer,
    ExternalInvoice,
    ExternalInvoiceChange,
    ExternalSource,
    ExternalStatusCode,
    PaymentLink,
)
from mobip.stats.models import StatsDaily, StatsEvent, StatsFile
from mobip.transactions.models import Transaction, TransactionEvent

metadata = Base.metadata

__all__ = [
    "AccessToken",
    "Account",
    "AccountDocument",
    "Allocation",
    "CallbackSecret",
    "ExternalBatch",
    "ExternalCustomer",
    "ExternalInvoice",
    "ExternalInvoiceChange",
    "ExternalSource",
    "ExternalStatusCode",
    "FeedLine",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceCounter",
    "InvoiceSchedule",
    "LoginThrottle",
    "OutboxAttempt",
    "OutboxMessage",
    "PaymentAttempt",
    "PaymentLink",
    "ProviderEvent",
    "ProviderWebhook",
    "ReusableQr",
    "StatsDaily",
    "StatsEvent",
    "StatsFile",
    "Transaction",
    "TransactionEvent",
    "metadata",
]
