"""SMS: GSM-7 segment counting and the text of a payment request; the Twilio adapter and the
generic HTTP gateway against a real HTTP server on loopback, and the development outbox.

The Twilio tests point ``MOBIP_TWILIO_BASE_URL`` at a local HTTP server that answers like Twilio's
REST API (201 with a message resource, Twilio's error document otherwise): what is checked is the
request MOBIP sends (path, basic auth, form fields) and how it reads the answers. No request
leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from delivery.support import (
    attempts_of,
    deliver,
    messages_of,
    new_request,
    run_schedules,
    wait_until,
    with_settings,
)
from factories import free_port, make_account
from mobip.accounts.models import Account
from mobip.cli import app
from mobip.config import ConfigurationError, Environment, Settings, SmsProvider
from mobip.delivery.models import OutboxMessage, OutboxStatus
from mobip.delivery.runner import InProcessWorker
from mobip.delivery.service import MESSAGE_POLICY, backoff_bounds
from mobip.delivery.sms import (
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    HttpGateway,
    Sms,
    gateway_for,
    is_gsm7,
    segments,
    to_gsm7,
)
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions_service
from mobip.transactions.messages import payment_request_text
from mobip.transactions.models import Transaction
from mobip.transactions.tasks import REMINDERS
from mobip.wiring import wire

# --- segments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "units", "count"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * GSM7_SINGLE, "GSM-7", 160, 1),
        ("a" * (GSM7_SINGLE + 1), "GSM-7", 161, 2),
        ("a" * (2 * GSM7_PART), "GSM-7", 306, 2),
        ("a" * (2 * GSM7_PART + 1), "GSM-7", 307, 3),
        # € and friends take two septets.
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 80 + "a", "GSM-7", 161, 2),
        # An escape pair never straddles two segments: 152 septets, then € goes whole to part 2.
        ("a" * 152 + "€" + "a" * 8, "GSM-7", 162, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("é è ù à Ç Ø Å Ä Ö Ñ Ü ß É ¿ ¡ § £ ¥ @ $", "GSM-7", 39, 1),
        ("ê", "UCS-2", 1, 1),
        ("ê" * UCS2_SINGLE, "UCS-2", 70, 1),
        ("ê" * (UCS2_SINGLE + 1), "UCS-2", 71, 2),
        ("ê" * (2 * UCS2_PART), "UCS-2", 134, 2),
        ("ê" * (2 * UCS2_PART + 1), "UCS-2", 135, 3),
        # Outside the BMP a character is two UTF-16 units, and is not split either.
        ("😀" * 35, "UCS-2", 70, 1),
        ("a" * 66 + "😀" + "a", "UCS-2", 69, 1),
        ("a" * 66 + "😀" + "a" * 4, "UCS-2", 72, 2),
    ],
)
def test_segment_count(text: str, encoding: str, units: int, count: int) -> None:
    assert segments(text) == (segments(text).__class__(encoding=encoding, units=units, count=count))


def test_transliteration_keeps_gsm_letters_and_spells_the_others_plainly() -> None:
    assert to_gsm7("Crème brûlée façon œuf") == "Crème brulée facon oeuf"
    assert (
        to_gsm7("L\u2019été « chaud » \u2013 12,50\xa0€ \u2026") == 'L\'été " chaud " - 12,50 € ...'
    )
    assert to_gsm7("1\u202f234,50\xa0€") == "1 234,50 €"
    assert to_gsm7("Ĳssel Ångström") == "IJssel Ångström"
    # No GSM-7 spelling: kept, and the message becomes UCS-2.
    assert to_gsm7("東京") == "東京"
    assert not is_gsm7(to_gsm7("東京"))


URL = "https://pay.mobip.example/pay/ck_" + "x" * 32


@pytest.mark.parametrize(
    ("language", "occasion", "expected"),
    [
        (
            "EN",
            "initial",
            f"Café Dupré: payment request of €12.50 for Green tea. Pay here: {URL}",
        ),
        (
            "EN",
            "reminder",
            "Reminder - Café Dupré is still waiting for your payment of €12.50 for Green tea. "
            f"Pay here: {URL}",
        ),
        (
            "FR",
            "initial",
            f"Café Dupré : demande de paiement de 12,50 € pour Green tea. Payez ici : {URL}",
        ),
        (
            "FR",
            "reminder",
            "Rappel - Café Dupré attend toujours votre paiement de 12,50 € pour Green tea. "
            f"Payez ici : {URL}",
        ),
    ],
)
def test_the_text_in_each_language(language: str, occasion: str, expected: str) -> None:
    total = "€12.50" if language == "EN" else "12,50\xa0€"
    text = payment_request_text(
        language=language,
        occasion=occasion,
        merchant_name="Café Dupré",
        item_name="Green tea",
        total=total,
        url=URL,
    )
    assert text == expected
    assert segments(text).encoding == "GSM-7"
    assert segments(text).count == 1


def test_a_long_item_name_is_shortened_to_two_segments_and_the_link_kept_whole() -> None:
    item = "Abonnement annuel tout compris " * 12
    text = payment_request_text(
        language="FR",
        occasion="reminder",
        merchant_name="Maison Dupré",
        item_name=item,
        total="1\u202f234,50\xa0€",
        url=URL,
    )
    assert segments(text) == segments(text).__class__("GSM-7", segments(text).units, 2)
    assert segments(text).units > 2 * GSM7_PART - 20  # shortened no more than needed
    assert text.endswith(f"Payez ici : {URL}")
    assert "Abonnement annuel tout compris Abonnement" in text
    assert "... pour" not in text  # the shortening ends the name with "..." before the period
    assert "...." in text


def test_accents_outside_gsm7_do_not_turn_the_text_into_ucs2() -> None:
    text = payment_request_text(
        language="FR",
        occasion="initial",
        merchant_name="Pâtisserie Hôtel-Dieu",
        item_name="Forêt noire, crème fraîche",
        total="12,50\xa0€",
        url=URL,
    )
    assert "Patisserie Hotel-Dieu" in text
    assert "Foret noire, crème fraiche" in text
    # 166 septets (€ takes two): 2 GSM-7 segments, where UCS-2 would have taken 3.
    assert segments(text) == segments(text).__class__("GSM-7", len(text) + 1, 2)


def test_names_without_a_gsm7_spelling_are_kept_and_shortened_within_two_ucs2_segments() -> None:
    text = payment_request_text(
        language="EN",
        occasion="initial",
        merchant_name="東京ショップ本店",
        item_name="抹茶" * 40,
        total="¥1,234",
        url=URL,
    )
    assert segments(text).encoding == "UCS-2"
    assert segments(text).count == 2
    assert text.startswith("東京ショップ本店: ")
    assert text.endswith(f"Pay here: {URL}")
    assert "抹茶抹茶" in text


def test_when_nothing_can_fit_the_link_is_still_whole() -> None:
    long_url = "https://pay.mobip.example/" + "p" * 400
    text = payment_request_text(
        language="EN",
        occasion="initial",
        merchant_name="M" * 100,
        item_name="I" * 100,
        total="€1.00",
        url=long_url,
    )
    assert text.endswith(long_url)
    assert segments(text).count > 2
    assert "M" * 9 + "..." in text
    assert "I" * 9 + "..." in text


# --- a local HTTP server (Twilio-like, or any gateway) -------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    connection: int  # the client's port: one per TCP connection


@dataclass
class FakeProvider:
    """Records requests; answers with the next reply of ``replies`` (the last one repeats).

    HTTP/1.1 with keep-alive, as providers answer: ``closed`` lists the connections the client
    has closed.
    """

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, body: Any = None, **headers: str) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        self.replies.append((status, {"Content-Type": "application/json", **headers}, payload))


def twilio_created(form: dict[str, list[str]]) -> bytes:
    return json.dumps(
        {
            "sid": "SM" + "0" * 32,
            "status": "queued",
            "to": form.get("To", [""])[0],
            "body": form.get("Body", [""])[0],
            "num_segments": "1",
        }
    ).encode()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            super().handle()  # serves requests until the client closes the connection
            fake.closed.append(self.client_address[1])

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            url = urlsplit(self.path)
            headers = dict(self.headers.items())
            port = self.client_address[1]
            fake.requests.append(Received(self.command, url.path, url.query, headers, body, port))
            if fake.replies:
                status, headers, payload = fake.replies[0]
                if len(fake.replies) > 1:
                    fake.replies.pop(0)
            else:
                status, headers = 201, {"Content-Type": "application/json"}
                payload = twilio_created(parse_qs(body.decode()))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


# --- sending through the worker ---------------------------------------------------------------

# Written with spaces: the number is normalised to E.164 when the request is created.
new_sms_request = partial(new_request, media="SMS", customer_phone="+33 6 12 34 56 78")


def only_message(runtime: Runtime, transaction: Transaction) -> OutboxMessage:
    [message] = messages_of(runtime, transaction)
    return message


@pytest.fixture
def twilio(runtime: Runtime, provider: FakeProvider) -> Runtime:
    return with_settings(
        runtime,
        sms_provider=SmsProvider.TWILIO,
        twilio_account_sid="AC0123456789abcdef",
        twilio_auth_token=SecretStr("twilio-token"),
        twilio_base_url=provider.base_url,
        sms_sender="+15005550006",
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("language", "start"),
    [("EN", "Maison Dupré: payment request of €12.50"), ("FR", "Maison Dupré : demande")],
)
def test_twilio_receives_the_request(
    twilio: Runtime, merchant: Account, provider: FakeProvider, language: str, start: str
) -> None:
    transaction = new_sms_request(twilio, merchant, language=language)
    assert deliver(twilio) == 1
    [request] = provider.requests
    assert request.method == "POST"
    assert request.path == "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
    assert request.headers["Authorization"] == basic("AC0123456789abcdef", "twilio-token")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.body.decode())
    assert form["To"] == ["+33612345678"]
    assert form["From"] == ["+15005550006"]
    [body] = form["Body"]
    assert body.startswith(start)
    assert body.endswith(transactions_service.checkout_url(twilio.settings, transaction))
    assert segments(body) == segments(body).__class__("GSM-7", len(body) + 1, 1)  # € = 2
    assert only_message(twilio, transaction).status == OutboxStatus.DONE


def test_a_messaging_service_sid_is_sent_as_such(
    twilio: Runtime, merchant: Account, provider: FakeProvider
) -> None:
    service = with_settings(twilio, sms_sender="MG" + "1" * 32)
    new_sms_request(service, merchant)
    deliver(service)
    form = parse_qs(provider.requests[0].body.decode())
    assert form["MessagingServiceSid"] == ["MG" + "1" * 32]
    assert "From" not in form


def test_the_reminder_by_sms(
    twilio: Runtime, merchant: Account, provider: FakeProvider, clock: ManualClock
) -> None:
    new_sms_request(twilio, merchant, language="FR", retry_period_days=1)
    deliver(twilio)
    clock.advance(days=1)
    assert run_schedules(twilio)[REMINDERS] == 1
    deliver(twilio)
    first, reminder = (parse_qs(r.body.decode())["Body"][0] for r in provider.requests)
    assert first.startswith("Maison Dupré : ")
    assert reminder.startswith("Rappel - Maison Dupré attend toujours votre paiement de ")
    assert segments(reminder).count <= 2


def test_an_invalid_number_fails_the_message_at_once(
    twilio: Runtime, merchant: Account, provider: FakeProvider
) -> None:
    provider.answer(
        400,
        {
            "code": 21211,
            "message": "The 'To' number +33612345678 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        },
    )
    transaction = new_sms_request(twilio, merchant)
    deliver(twilio)
    message = only_message(twilio, transaction)
    assert message.status == OutboxStatus.FAILED
    assert message.attempts == 1
    assert message.last_error is not None
    assert message.last_error.startswith(
        'PermanentFailure: Twilio answered HTTP 400: {"code": 21211'
    )


@pytest.mark.parametrize("status", [500, 503, 401, 403, 408])
def test_provider_trouble_and_credentials_are_retried(
    twilio: Runtime, merchant: Account, provider: FakeProvider, clock: ManualClock, status: int
) -> None:
    provider.answer(status, {"code": 20003, "message": "trouble", "status": status})
    provider.answer(201, {"sid": "SM1", "status": "queued"})
    transaction = new_sms_request(twilio, merchant)
    deliver(twilio)
    message = only_message(twilio, transaction)
    assert message.status == OutboxStatus.PENDING
    excerpt = f'{{"code": 20003, "message": "trouble", "status": {status}}}'
    assert message.last_error == f"DeliveryFailed: Twilio answered HTTP {status}: {excerpt}"
    [attempt] = attempts_of(twilio, message.id)
    assert (attempt.status_code, attempt.response_excerpt) == (status, excerpt)
    clock.set(message.next_attempt_at)
    deliver(twilio)
    assert only_message(twilio, transaction).status == OutboxStatus.DONE
    assert len(provider.requests) == 2


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [("120", timedelta(seconds=120)), ("99999999999", timedelta(hours=1)), ("soon", None)],
)
def test_too_many_requests_waits_for_retry_after(
    twilio: Runtime,
    merchant: Account,
    provider: FakeProvider,
    clock: ManualClock,
    retry_after: str,
    delay: timedelta | None,
) -> None:
    """Retry-After is believed up to an hour; without a number of seconds, a minute."""
    provider.answer(
        429, {"code": 20429, "message": "Too Many Requests"}, **{"Retry-After": retry_after}
    )
    transaction = new_sms_request(twilio, merchant)
    deliver(twilio)
    message = only_message(twilio, transaction)
    assert message.status == OutboxStatus.PENDING
    assert message.next_attempt_at == clock.now() + (delay or timedelta(minutes=1))
    assert message.last_error is not None
    assert message.last_error.startswith("RetryLater: Twilio answered HTTP 429")
    [attempt] = attempts_of(twilio, message.id)
    assert attempt.status_code == 429


def test_a_redirect_is_not_followed(
    twilio: Runtime, merchant: Account, provider: FakeProvider
) -> None:
    provider.answer(302, b"", Location=f"{provider.base_url}/elsewhere")
    transaction = new_sms_request(twilio, merchant)
    deliver(twilio)
    assert [r.path for r in provider.requests] == [
        "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
    ]
    message = only_message(twilio, transaction)
    assert message.status == OutboxStatus.PENDING
    assert message.last_error == "DeliveryFailed: Twilio answered HTTP 302: "
    [attempt] = attempts_of(twilio, message.id)
    assert attempt.status_code == 302


def test_an_unreachable_provider_is_retried(twilio: Runtime, merchant: Account) -> None:
    down = with_settings(twilio, twilio_base_url=f"http://127.0.0.1:{free_port()}")
    transaction = new_sms_request(down, merchant)
    deliver(down)
    message = only_message(down, transaction)
    assert message.status == OutboxStatus.PENDING
    assert message.last_error is not None
    assert message.last_error.startswith("ConnectError")


def test_a_provider_down_for_good_fails_the_message_after_the_last_attempt(
    twilio: Runtime, merchant: Account, clock: ManualClock
) -> None:
    down = with_settings(twilio, twilio_base_url=f"http://127.0.0.1:{free_port()}")
    transaction = new_sms_request(down, merchant)
    for attempt in range(1, MESSAGE_POLICY.max_attempts + 1):
        assert deliver(down) == 1
        message = only_message(down, transaction)
        assert message.attempts == attempt
        if attempt < MESSAGE_POLICY.max_attempts:
            low, high = backoff_bounds(MESSAGE_POLICY, attempt)
            assert low <= message.next_attempt_at - clock.now() <= high
            clock.set(message.next_attempt_at)
    assert message.status == OutboxStatus.FAILED
    assert message.last_error is not None
    assert message.last_error.startswith(
        f"gave up after {MESSAGE_POLICY.max_attempts} attempts: ConnectError"
    )


def test_one_connection_serves_the_worker_until_it_stops(
    twilio: Runtime, merchant: Account, provider: FakeProvider
) -> None:
    """The gateway keeps one client: SMS sent one after another reuse its kept-alive
    connection, which stays open until the worker stops and closes it."""
    one_by_one = with_settings(twilio, worker_batch_size=1)
    for _ in range(3):
        new_sms_request(one_by_one, merchant)
    requests = provider.requests

    async def main() -> None:
        running = InProcessWorker(wire(one_by_one))
        await asyncio.to_thread(wait_until, lambda: len(requests) == 3, "the three SMS")
        assert provider.closed == []
        await running.stop()
        await asyncio.to_thread(wait_until, lambda: bool(provider.closed), "the connection closed")

    asyncio.run(main())
    [connection] = {request.connection for request in provider.requests}
    assert provider.closed == [connection]


# --- the generic HTTP gateway -------------------------------------------------------------------


def gateway_runtime(runtime: Runtime, provider: FakeProvider, **changes: Any) -> Runtime:
    defaults = {
        "sms_provider": SmsProvider.HTTP,
        "sms_gateway_url": f"{provider.base_url}/api/sms",
        "sms_sender": "MOBIP",
    }
    return with_settings(runtime, **(defaults | changes))


def test_the_gateway_gets_json_with_every_placeholder_escaped(
    runtime: Runtime, merchant: Account, provider: FakeProvider
) -> None:
    provider.answer(200, {"ok": True})
    gateway = gateway_runtime(
        runtime,
        provider,
        sms_gateway_auth_header=SecretStr("X-Api-Key: k3y"),
        sms_gateway_body=(
            '{"to": "{to}", "from": "{sender}", "text": "{text}", "ref": "{reference}"}'
        ),
    )
    shop = make_account(gateway, name='Shop "quoted" \\ back').account
    transaction = new_sms_request(gateway, shop)
    deliver(gateway)
    [request] = provider.requests
    assert request.method == "POST"
    assert request.path == "/api/sms"
    assert request.headers["X-Api-Key"] == "k3y"
    assert request.headers["Content-Type"] == "application/json"
    sent = json.loads(request.body)
    assert sent["to"] == "+33612345678"
    assert sent["from"] == "MOBIP"
    assert sent["text"].startswith('Shop "quoted" \\ back: payment request of €12.50')
    message = only_message(gateway, transaction)
    assert sent["ref"] == f"20260101T120000-sms-{message.id}"
    assert message.status == OutboxStatus.DONE


def test_the_gateway_with_a_form_body_and_put(
    runtime: Runtime, merchant: Account, provider: FakeProvider
) -> None:
    provider.answer(202, b"accepted")
    gateway = gateway_runtime(
        runtime,
        provider,
        sms_gateway_method="PUT",
        sms_gateway_content_type="application/x-www-form-urlencoded",
        sms_gateway_body="number={to}&message={text}&sender={sender}",
    )
    new_sms_request(gateway, merchant)
    deliver(gateway)
    [request] = provider.requests
    assert request.method == "PUT"
    form = parse_qs(request.body.decode())
    assert form["number"] == ["+33612345678"]
    assert form["sender"] == ["MOBIP"]
    assert form["message"][0].startswith("Maison Dupré: payment request of €12.50 for Green tea")


def test_the_gateway_with_get_puts_the_template_in_the_query(
    runtime: Runtime, merchant: Account, provider: FakeProvider
) -> None:
    provider.answer(200, b"OK")
    gateway = gateway_runtime(
        runtime,
        provider,
        sms_gateway_url=f"{provider.base_url}/send?user=shop",
        sms_gateway_method="GET",
        sms_gateway_body="to={to}&msg={text}",
    )
    new_sms_request(gateway, merchant)
    deliver(gateway)
    [request] = provider.requests
    assert request.method == "GET"
    assert request.body == b""
    query = parse_qs(request.query)
    assert query["user"] == ["shop"]
    assert query["to"] == ["+33612345678"]
    assert query["msg"][0].startswith("Maison Dupré: payment request")


def test_the_gateway_refusing_the_message_fails_it(
    runtime: Runtime, merchant: Account, provider: FakeProvider
) -> None:
    provider.answer(422, {"error": "invalid destination"})
    gateway = gateway_runtime(runtime, provider)
    transaction = new_sms_request(gateway, merchant)
    deliver(gateway)
    message = only_message(gateway, transaction)
    assert message.status == OutboxStatus.FAILED
    assert message.last_error == (
        'PermanentFailure: the SMS gateway answered HTTP 422: {"error": "invalid destination"}'
    )


def test_a_plain_text_template_is_filled_as_is() -> None:
    gateway = HttpGateway(
        url="http://127.0.0.1:9/",
        method="POST",
        headers={},
        body_template="{to}|{sender}|{text}|{unknown}",
        content_type="text/plain",
        sender="MOBIP",
        client=httpx.AsyncClient(),
    )
    assert gateway.render(Sms("+33612345678", 'a "b" {c}', "ref")) == (
        '+33612345678|MOBIP|a "b" {c}|{unknown}'
    )


# --- settings: refused at start-up, and by the worker with the same check ---------------------

INCOMPLETE = [
    (
        {"sms_provider": "twilio"},
        "MOBIP_SMS_PROVIDER=twilio needs "
        "MOBIP_TWILIO_ACCOUNT_SID, MOBIP_TWILIO_AUTH_TOKEN, MOBIP_SMS_SENDER",
    ),
    (
        {"sms_provider": "twilio", "twilio_account_sid": "AC1", "twilio_auth_token": "t"},
        "MOBIP_SMS_PROVIDER=twilio needs MOBIP_SMS_SENDER",
    ),
    ({"sms_provider": "http"}, "MOBIP_SMS_PROVIDER=http needs MOBIP_SMS_GATEWAY_URL"),
    (
        {
            "sms_provider": "http",
            "sms_gateway_url": "http://127.0.0.1:9/",
            "sms_gateway_auth_header": "Bearer s3cret-without-a-name",
        },
        "MOBIP_SMS_GATEWAY_AUTH_HEADER must be 'Name: value'",
    ),
]


@pytest.mark.parametrize(("changes", "refusal"), INCOMPLETE)
def test_an_incomplete_provider_is_refused_at_start(
    tmp_path: Path, changes: dict[str, str], refusal: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings(data_dir=tmp_path, **changes).check()
    assert str(refused.value) == refusal


@pytest.mark.parametrize(("changes", "refusal"), INCOMPLETE)
def test_the_worker_command_refuses_to_start_naming_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, str], refusal: str
) -> None:
    """What the operator sees: one line naming the variables, exit code 2, no secret echoed."""
    for name in (
        "MOBIP_SMS_PROVIDER",
        "MOBIP_SMS_SENDER",
        "MOBIP_TWILIO_ACCOUNT_SID",
        "MOBIP_TWILIO_AUTH_TOKEN",
        "MOBIP_SMS_GATEWAY_URL",
        "MOBIP_SMS_GATEWAY_AUTH_HEADER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOBIP_DATA_DIR", str(tmp_path))
    for name, value in changes.items():
        monkeypatch.setenv(f"MOBIP_{name.upper()}", value)
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert result.output == f"error: {refusal}\n"
    assert "s3cret" not in result.output


@pytest.mark.parametrize(("changes", "refusal"), INCOMPLETE)
def test_the_worker_refuses_the_same_settings(
    tmp_path: Path, changes: dict[str, str], refusal: str
) -> None:
    """A runtime built without Settings.check (tests, embedding) gets the same refusal."""
    with pytest.raises(ConfigurationError) as refused:
        gateway_for(Settings(data_dir=tmp_path, **changes), ManualClock())
    assert str(refused.value) == refusal


def test_the_gateway_auth_header_is_read_from_name_colon_value(tmp_path: Path) -> None:
    def headers(value: str) -> dict[str, str]:
        url = "http://127.0.0.1:9/"
        settings = Settings(data_dir=tmp_path, sms_gateway_url=url, sms_gateway_auth_header=value)
        return settings.sms_gateway().headers

    assert headers(" X-Api-Key :  k3y: with colon ") == {"X-Api-Key": "k3y: with colon"}
    assert headers("") == {}


# --- without a provider ----------------------------------------------------------------------


def test_development_writes_the_sms_to_the_local_outbox(
    runtime: Runtime, merchant: Account
) -> None:
    transaction = new_sms_request(runtime, merchant)
    deliver(runtime)
    message = only_message(runtime, transaction)
    assert message.status == OutboxStatus.DONE
    path = runtime.settings.data_dir / "outbox" / f"20260101T120000-sms-{message.id}.json"
    record = json.loads(path.read_text())
    assert record["to"] == "+33612345678"
    assert record["text"].endswith(transactions_service.checkout_url(runtime.settings, transaction))


def test_production_without_a_provider_fails_each_attempt_visibly(
    runtime: Runtime, merchant: Account
) -> None:
    production = with_settings(runtime, env=Environment.PRODUCTION)
    transaction = new_sms_request(production, merchant)
    deliver(production)
    message = only_message(production, transaction)
    assert message.status == OutboxStatus.PENDING
    assert message.last_error == "NotConfigured: no SMS provider configured: set MOBIP_SMS_PROVIDER"
    assert not (production.settings.data_dir / "outbox").exists()
