"""Registers the handler of every outbox kind with the worker (called once per worker process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from mobip.delivery import callbacks, email, sms, worker
from mobip.delivery.models import OutboxMessage
from mobip.delivery.service import (
    CALLBACK,
    MESSAGE_MAX_ATTEMPTS,
    PAYMENT_REQUEST,
    RECEIPT,
    RetryPolicy,
)
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Media

# E-mail and SMS: 8 attempts over about two hours (delays drawn up to 1, 2, 4 … 60 minutes).
MESSAGE_POLICY = RetryPolicy(
    max_attempts=MESSAGE_MAX_ATTEMPTS, base=timedelta(minutes=1), cap=timedelta(hours=1)
)


def _register(kind: str, handler: worker.Handler, policy: RetryPolicy) -> None:
    # Idempotent: a second call (a new runtime in the same process) replaces the handler.
    worker.unregister(kind)
    worker.register(kind, handler, policy)


Closer = Callable[[], Awaitable[None]]


def register_all(runtime: Runtime) -> Closer:
    """Register each kind's sender; each sender module adds its own line here.

    Returns what closes the connections the senders keep between messages (to the SMS provider
    and to merchants' callback URLs): the worker awaits it when it stops, in its event loop.
    """
    email_sender = email.EmailSender.from_runtime(runtime)
    sms_sender = sms.SmsSender.from_runtime(runtime)

    async def payment_request(message: OutboxMessage) -> None:
        if message.load_payload().get("media") == Media.SMS.value:
            await sms_sender.send_payment_request(message)
        else:
            await email_sender.send_payment_request(message)

    _register(PAYMENT_REQUEST, payment_request, MESSAGE_POLICY)
    _register(RECEIPT, email_sender.send_receipt, MESSAGE_POLICY)
    # Signed merchant callbacks through the SSRF-guarded client (12 attempts over 78 h or more).
    callback_sender = callbacks.CallbackSender.from_runtime(runtime)
    _register(CALLBACK, callback_sender.send, callbacks.CALLBACK_POLICY)

    async def close() -> None:
        await sms_sender.aclose()
        await callback_sender.aclose()

    return close
