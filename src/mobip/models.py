"""Every table, imported once so the metadata (and Alembic) sees the whole schema."""

from __future__ import annotations

from mobip.accounts.models import Account, AccountDocument
from mobip.auth.models import AccessToken, LoginThrottle
from mobip.delivery.models import OutboxMessage
from mobip.kit.db import Base

metadata = Base.metadata

__all__ = [
    "AccessToken",
    "Account",
    "AccountDocument",
    "LoginThrottle",
    "OutboxMessage",
    "metadata",
]
