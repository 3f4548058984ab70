"""kit/logging: JSON lines, our own access line only, and the redaction filter on every handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mobip.kit.logging import RedactingFilter, configure_logging, luhn_valid, redact

SECRET = "mbs_" + "A1b2-C3d4_" * 4
TOKEN = "mbt_" + "z9Y8-x7W6_" * 4
CHECKOUT = "ck_" + "Q" * 32
STATS_FILE = "sft_" + "R-s_" * 8
PORTAL = "cp_" + "0a" * 10 + "_" + "Zz-_" * 6
WEBHOOK = "whsec_" + "k" * 32
STRIPE_LIVE = "sk_live_" + "5" * 24
STRIPE_TEST = "sk_test_" + "a" * 24
RESTRICTED = "rk_live_" + "b" * 24
CARD = "4242424242424242"
CARD_SPACED = "4000 0000 0000 0002"
ALL_SECRETS = [
    SECRET,
    TOKEN,
    CHECKOUT,
    STATS_FILE,
    PORTAL,
    WEBHOOK,
    STRIPE_LIVE,
    STRIPE_TEST,
    RESTRICTED,
    CARD,
]


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Everything written through the handler configure_logging installs, at DEBUG."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    uvicorn_loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    uvicorn_saved = [(lg.handlers[:], lg.propagate, lg.disabled) for lg in uvicorn_loggers]
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for lg, (handlers, propagate, disabled) in zip(uvicorn_loggers, uvicorn_saved, strict=True):
            lg.handlers[:], lg.propagate, lg.disabled = handlers, propagate, disabled


@pytest.mark.parametrize("secret", [*ALL_SECRETS, CARD_SPACED, "4000-0000-0000-0002"])
def test_redact_masks_each_kind_of_secret(secret: str) -> None:
    masked = redact(f"before {secret} after")
    assert secret not in masked
    assert masked.startswith("before ") and masked.endswith(" after")


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails Luhn: not a card number
        "123456789012",  # 12 digits: too short
        "duration 12.5 ms, status 200, id 42",
        "pk_live_publishable_keys_are_not_secret",
        "check_this track_id order-7",
    ],
)
def test_redact_keeps_what_is_not_a_secret(text: str) -> None:
    assert redact(text) == text


def test_luhn() -> None:
    assert luhn_valid("4242424242424242")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4242424242424243")


def test_credentials_in_key_value_form_and_bearer_headers_are_masked() -> None:
    masked = redact("GET /x?api_secret_key=hunter2&access_token=abc&ok=1 Bearer opaque-token")
    assert "hunter2" not in masked and "abc&" not in masked and "opaque-token" not in masked
    assert "ok=1" in masked


def test_message_args_fields_and_exception_text_are_redacted(logged: io.StringIO) -> None:
    log = logging.getLogger("mobip.test")
    log.info("secret %s and token %s", SECRET, TOKEN, extra={"fields": {"key": STRIPE_LIVE}})
    log.debug("nested", extra={"fields": {"deep": {"list": [CHECKOUT, CARD]}, "n": int(CARD)}})
    try:
        raise ValueError(f"bad card {CARD_SPACED} with {WEBHOOK}")
    except ValueError:
        log.exception("failed with %r", {"k": RESTRICTED, "t": STRIPE_TEST})
    output = logged.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["logger"] for line in lines] == ["mobip.test"] * 3
    for secret in [*ALL_SECRETS, CARD_SPACED]:
        assert secret not in output
    assert "ValueError" in lines[2]["exception"]


def test_every_handler_installed_gets_the_filter(logged: io.StringIO) -> None:
    # pytest adds its own capturing handlers beside ours: look at those writing to our stream.
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is logged]
    assert handlers
    assert all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in handlers)


def test_uvicorn_access_logger_is_silenced_and_uvicorn_errors_go_through_our_handler(
    logged: io.StringIO,
) -> None:
    access = logging.getLogger("uvicorn.access")
    # What uvicorn's access log writes (h11_impl / httptools_impl), at any level.
    access.info(
        '%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", f"/x?api_secret_key={SECRET}", "1.1", 200
    )
    # uvicorn writes an access line only when hasHandlers() (pytest attaches its own capture
    # handler to non-propagating loggers, so that is checked for real in tests/e2e); disabled,
    # the logger writes nothing wherever its handlers come from.
    assert access.disabled and not access.propagate
    assert [h for h in access.handlers if getattr(h, "stream", None) is logged] == []
    logging.getLogger("uvicorn.error").error("boom with %s", TOKEN)
    output = logged.getvalue()
    assert "/x?" not in output and SECRET not in output
    assert TOKEN not in output and "boom with" in output


def test_configure_logging_twice_installs_one_handler(logged: io.StringIO) -> None:
    configure_logging("INFO", stream=logged)
    assert len(logging.getLogger().handlers) == 1
