"""get_stats' and the partner feed's tables filled from the history (issue 14)

A server upgraded from a version before 20261130_0012 has transactions and refunds but empty
stats_events, stats_daily and feed_lines (their observers file only what happens from then on).
This revision files the past as the observers (stats/service.observe, feed/service.observe)
would have: a CREATED event at created_at, PAID at paid_at with its fee, CANCELLED / EXPIRED
(reason EXPIRED) / DENIED / ERROR at status_changed_at (these statuses are terminal: the one
status change, the time of its transaction_events row), REFUNDED at each succeeded refund's
refunded_at; the day local to MOBIP_TIMEZONE; stats_daily summed for the account and each of
its ancestors; a PAYMENT feed line per PAID transaction and a REFUND line per succeeded refund
(the item/tax split of feed.service.refund_item_part), in event order, all pending.

It runs only on empty tables (the stats pair, and feed_lines, each on its own): a fresh install
or the first upgrade; never twice. The events are read in one ordered, streamed query and
written in chunks (memory stays one chunk's); stats_daily is one INSERT ... SELECT over the
events and the accounts' ancestors. It reads the tables by name (sa.text), not the app's models.
Downgrade deletes nothing: the rows are then indistinguishable from the observers' own, and
20261130_0012/0013's downgrades drop the tables anyway.

Revision ID: 20261130_0015
Revises: 20261130_0014
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

import mobip.kit.db
from mobip.config import Settings

revision = "20261130_0015"
down_revision = "20261130_0014"
branch_labels = None
depends_on = None

CHUNK = 2000
_UTC = mobip.kit.db.UTCDateTime(timezone=True)
# transactions.kind -> channel, as transactions/observers.py's Change.channel (else the media,
# else EMAIL).
_CHANNELS = {"one_use_qr": "QR", "product_payment": "REUSABLE_QR", "invoice_portal": "PORTAL"}
FIGURES = (
    "created_count",
    "created_amount",
    "paid_count",
    "paid_amount",
    "fees",
    "refunded_count",
    "refunded_amount",
    "cancelled_count",
    "expired_count",
    "denied_count",
    "error_count",
)

_T = (
    "t.id AS tid, t.trid AS trid, t.account_id AS account_id, t.kind AS kind, t.media AS media, "
    "t.currency AS currency, t.item_amount AS item_amount, t.tax_amount AS tax_amount"
)
# Every happening of the history, oldest first (at a tie: created, then a status change, then
# the refunds; by transaction and refund). refunded_after: what the transaction's succeeded
# refunds returned up to this one, included.
_HISTORY = sa.text(
    f"""
    SELECT 0 AS ord, 'created' AS happening, t.created_at AS at, {_T},
           CAST(0 AS BIGINT) AS fee, CAST(NULL AS BIGINT) AS rid,
           CAST(NULL AS VARCHAR(40)) AS refund_id, CAST(0 AS BIGINT) AS refund_amount,
           CAST(0 AS BIGINT) AS refunded_after
      FROM transactions t
    UNION ALL
    SELECT 1, 'paid', COALESCE(t.paid_at, t.status_changed_at), {_T},
           COALESCE(t.fee, 0), NULL, NULL, 0, 0
      FROM transactions t WHERE t.status = 'PAID'
    UNION ALL
    SELECT 1, CASE WHEN t.status = 'CANCELLED' AND t.reason = 'EXPIRED' THEN 'expired'
                   WHEN t.status = 'CANCELLED' THEN 'cancelled'
                   WHEN t.status = 'DENIED' THEN 'denied' ELSE 'error' END,
           t.status_changed_at, {_T}, 0, NULL, NULL, 0, 0
      FROM transactions t WHERE t.status IN ('CANCELLED', 'DENIED', 'ERROR')
    UNION ALL
    SELECT 2, 'refunded', r.refunded_at, {_T}, 0, r.id, r.refund_id, r.amount,
           SUM(r.amount) OVER (PARTITION BY r.transaction_id ORDER BY r.refunded_at, r.id)
      FROM refunds r JOIN transactions t ON t.id = r.transaction_id
     WHERE r.status = 'SUCCEEDED' AND r.refunded_at IS NOT NULL
    ORDER BY 3, 1, 4, 13
    """  # noqa: S608 (constant fragments, no input)
).columns(at=_UTC)

_EVENTS = sa.table(
    "stats_events",
    *(
        sa.column(name)
        for name in ("account_id", "trid", "refund_id", "happening", "day", "channel")
    ),
    sa.column("at", _UTC),
    *(sa.column(name) for name in ("currency", "amount", "fee", "net")),
)
_LINES = sa.table(
    "feed_lines",
    *(
        sa.column(name)
        for name in (
            "account_id",
            "trid",
            "type",
            "refund_id",
            "amount",
            "item_amount",
            "tax_amount",
            "fee",
            "net",
            "currency",
        )
    ),
    sa.column("event_at", _UTC),
    sa.column("acked_at", _UTC),
)

# stats_daily from stats_events: each event counted for its account and every ancestor.
_SUMS = ", ".join(
    f"SUM({expression})"
    for expression in (
        "CASE WHEN e.happening = 'created' THEN 1 ELSE 0 END",
        "CASE WHEN e.happening = 'created' THEN e.amount ELSE 0 END",
        "CASE WHEN e.happening = 'paid' THEN 1 ELSE 0 END",
        "CASE WHEN e.happening = 'paid' THEN e.amount ELSE 0 END",
        "CASE WHEN e.happening = 'paid' THEN e.fee ELSE 0 END",
        "CASE WHEN e.happening = 'refunded' THEN 1 ELSE 0 END",
        "CASE WHEN e.happening = 'refunded' THEN e.amount ELSE 0 END",
        "CASE WHEN e.happening = 'cancelled' THEN 1 ELSE 0 END",
        "CASE WHEN e.happening = 'expired' THEN 1 ELSE 0 END",
        "CASE WHEN e.happening = 'denied' THEN 1 ELSE 0 END",
        "CASE WHEN e.happening = 'error' THEN 1 ELSE 0 END",
    )
)
_DAILY = sa.text(
    f"""
    INSERT INTO stats_daily (account_id, day, channel, currency, {", ".join(FIGURES)})
    WITH RECURSIVE lineage (child, owner) AS (
        SELECT id, id FROM accounts
        UNION ALL
        SELECT l.child, a.parent_id FROM lineage l JOIN accounts a ON a.id = l.owner
         WHERE a.parent_id IS NOT NULL
    )
    SELECT l.owner, e.day, e.channel, e.currency, {_SUMS}
      FROM stats_events e JOIN lineage l ON l.child = e.account_id
     GROUP BY l.owner, e.day, e.channel, e.currency
    """  # noqa: S608 (constant fragments, no input)
)


def _empty(conn: sa.Connection, table: str) -> bool:
    return conn.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is None  # noqa: S608


def _local_day(moment: datetime, zone: ZoneInfo) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date().isoformat()


def _event(row: Any, zone: ZoneInfo) -> dict[str, Any]:
    """A stats_events row, as stats/service.observe files it (amount, fee, net: a payment's
    total, fee and total - fee; a refund's amount, 0, -amount; others total, 0, 0)."""
    total = row.item_amount + row.tax_amount
    amount, fee, net = total, 0, 0
    if row.happening == "paid":
        fee, net = row.fee, total - row.fee
    elif row.happening == "refunded":
        amount, net = row.refund_amount, -row.refund_amount
    return {
        "account_id": row.account_id,
        "trid": row.trid,
        "refund_id": row.refund_id,
        "happening": row.happening,
        "at": row.at,
        "day": _local_day(row.at, zone),
        "channel": _CHANNELS.get(row.kind) or (row.media or "EMAIL"),
        "currency": row.currency,
        "amount": amount,
        "fee": fee,
        "net": net,
    }


def _item_part(total: int, item: int, refunded: int) -> int:
    """What refunds of ``refunded`` in all take of the item (feed.service.refund_item_part)."""
    return (2 * refunded * item + total) // (2 * total)


def _line(row: Any) -> dict[str, Any] | None:
    """A feed_lines row, as feed/service.observe files it; None for other happenings."""
    total = row.item_amount + row.tax_amount
    common = {
        "account_id": row.account_id,
        "trid": row.trid,
        "refund_id": row.refund_id,
        "currency": row.currency,
        "event_at": row.at,
        "acked_at": None,
    }
    if row.happening == "paid":
        return {
            **common,
            "type": "PAYMENT",
            "amount": total,
            "item_amount": row.item_amount,
            "tax_amount": row.tax_amount,
            "fee": row.fee,
            "net": total - row.fee,
        }
    if row.happening != "refunded":
        return None
    refund = row.refund_amount
    if total <= 0:
        item = refund
    else:
        after = int(row.refunded_after)
        item = _item_part(total, row.item_amount, after) - _item_part(
            total, row.item_amount, after - refund
        )
    return {
        **common,
        "type": "REFUND",
        "amount": -refund,
        "item_amount": -item,
        "tax_amount": -(refund - item),
        "fee": 0,
        "net": -refund,
    }


def upgrade() -> None:
    conn = op.get_bind()
    stats = _empty(conn, "stats_events") and _empty(conn, "stats_daily")
    feed = _empty(conn, "feed_lines")
    if not (stats or feed):
        return
    zone = ZoneInfo(Settings().timezone)
    result = conn.execute(_HISTORY, execution_options={"yield_per": CHUNK})
    for chunk in result.partitions(CHUNK):
        if stats:
            conn.execute(_EVENTS.insert(), [_event(row, zone) for row in chunk])
        if feed:
            lines = [line for line in (_line(row) for row in chunk) if line is not None]
            if lines:
                conn.execute(_LINES.insert(), lines)
    if stats:
        conn.execute(_DAILY)


def downgrade() -> None:
    """Nothing to undo: the filled rows stay (see the module's docstring)."""
