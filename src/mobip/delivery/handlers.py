"""Registers the handler of every outbox kind with the runtime's worker (when a worker starts).

The composed kinds (``runtime.state(Composers)``, which the domains fill through
``mobip.wiring``) are sent by e-mail or SMS, as their composer decides; the merchant callback is
delivery's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mobip.delivery import callbacks
from mobip.delivery.composing import Composer, Composers, Composing, MailContent, SmsContent
from mobip.delivery.email import EmailSender, Mail
from mobip.delivery.models import OutboxMessage
from mobip.delivery.service import CALLBACK, RetryPolicy
from mobip.delivery.sms import SmsSender
from mobip.delivery.worker import Handler, Handlers
from mobip.kit.runtime import Runtime

Closer = Callable[[], Awaitable[None]]


class _Composed:
    """The handler of a composed kind: compose (in a thread, with a read session), then send."""

    def __init__(
        self, runtime: Runtime, composer: Composer, email: EmailSender, sms: SmsSender
    ) -> None:
        self.runtime = runtime
        self.composer = composer
        self.email = email
        self.sms = sms

    async def __call__(self, message: OutboxMessage) -> None:
        # Composing and the MIME bytes in one thread: both are CPU (templates, QR, MIME) and the
        # event loop keeps serving the other messages of the batch meanwhile.
        built = await asyncio.to_thread(self._build, message)
        if isinstance(built, SmsContent):
            await self.sms.send(message, built)
        else:
            await self.email.deliver(built, message)

    def _build(self, message: OutboxMessage) -> Mail | SmsContent:
        runtime = self.runtime
        with runtime.database.session() as session:
            content = self.composer(
                message,
                Composing(session, runtime.clock, runtime.settings, self.email.domain),
            )
        if isinstance(content, MailContent):
            return self.email.mail(message, content)
        return content


def _register(handlers: Handlers, kind: str, handler: Handler, policy: RetryPolicy) -> None:
    # Idempotent: a second call (a worker started again on the same runtime) replaces it.
    handlers.unregister(kind)
    handlers.register(kind, handler, policy)


def register_all(runtime: Runtime) -> Closer:
    """Register each kind's sender with ``runtime.state(Handlers)``.

    Returns what closes the connections the senders keep between messages (to the SMS provider
    and to merchants' callback URLs): the worker awaits it when it stops, in its event loop.
    """
    handlers = runtime.state(Handlers)
    email_sender = EmailSender.from_runtime(runtime)
    sms_sender = SmsSender.from_runtime(runtime)
    for kind, composition in runtime.state(Composers):
        handler = _Composed(runtime, composition.composer, email_sender, sms_sender)
        _register(handlers, kind, handler, composition.policy)
    # Signed merchant callbacks through the SSRF-guarded client (12 attempts over 78 h or more).
    callback_sender = callbacks.CallbackSender.from_runtime(runtime)
    _register(handlers, CALLBACK, callback_sender.send, callbacks.CALLBACK_POLICY)

    async def close() -> None:
        await sms_sender.aclose()
        await callback_sender.aclose()

    return close
