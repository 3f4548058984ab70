"""Structured logs: one JSON line per request, never a secret, token or card number.

Two lines of defence: nothing of ours logs a secret or a query string (our access line is the only
one; uvicorn's access logger, which writes full query strings, is silenced), and every handler
``configure_logging`` installs masks what still looks like a secret (``redact``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import IO, Any

MASK = "[REDACTED]"
# Our API secrets (mbs_), access tokens (mbt_), checkout tokens (ck_: a bearer link to a payment
# page), customer portal tokens (cp_: an imported customer's invoices) and stats file tokens
# (sft_: get_stats' .gz link), Stripe's secret and restricted keys and
# webhook signing secrets. Publishable keys (pk_) are public and kept.
_PREFIXED_SECRET = re.compile(
    r"\b(mbs_|mbt_|ck_|cp_|sft_|whsec_|sk_live_|sk_test_|rk_live_|rk_test_)[\w-]+"
)
# A credential written as a form or query field, whatever its value looks like.
_FIELD_SECRET = re.compile(
    r"(?i)\b(api_secret_key|access_token|card_number|cvc|password|secret)=([^&\s\"']+)"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+")
# 13 to 19 digits, optionally grouped by single spaces or dashes (as a card is typed).
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(found: re.Match[str]) -> str:
    digits = found.group(0).replace(" ", "").replace("-", "")
    return MASK if 13 <= len(digits) <= 19 and luhn_valid(digits) else found.group(0)


# Cheap tests first: most log strings (an access line's path, method, ids) contain nothing any
# pattern could match, and then cost a few substring checks and one character-class scan.
_MAYBE_CARD = re.compile(r"[0-9][0-9 -]{11}[0-9]")


def redact(text: str) -> str:
    """``text`` with secrets, tokens, provider keys and card numbers masked."""
    if "_" in text:
        text = _PREFIXED_SECRET.sub(lambda m: m.group(1) + MASK, text)
    if "=" in text:
        text = _FIELD_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", text)
    if "bearer" in text.lower():
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    if _MAYBE_CARD.search(text) is not None:
        text = _DIGIT_RUN.sub(_mask_card, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        text = str(value)
        return redact(text) if redact(text) != text else value
    return value


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, ``fields`` extra and exception text."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        fields = getattr(record, "fields", None)
        if fields is not None:
            record.fields = _redact_value(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info or record.exc_text:
            # The filter's redacted text when there is one.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", *, stream: IO[str] | None = None) -> None:
    """JSON lines on ``stream`` (stderr), redacted; uvicorn's logs through the same handler.

    uvicorn's access logger is silenced (it writes full query strings, which may hold
    credentials): our ``AccessLogMiddleware`` line is the only access line. uvicorn checks
    ``hasHandlers()`` when a connection opens, so this holds under someone's own uvicorn too.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()  # uvicorn's own log config, if it ran first
        uvicorn_logger.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
