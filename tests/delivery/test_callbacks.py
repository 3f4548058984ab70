"""Callbacks reach a real loopback receiver, signed per Standard Webhooks, retried per the rules."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from datetime import timedelta

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from callback_receiver import Receiver, Reply
from delivery.support import attempts_of, run_batch, stored, with_settings
from factories import make_account
from mobip.accounts.models import Account
from mobip.cli import app
from mobip.config import Environment
from mobip.delivery import callbacks, repository, service, worker
from mobip.delivery.callbacks import CALLBACK_POLICY, CallbackSender, with_query
from mobip.delivery.models import AttemptOutcome, OutboxMessage, OutboxStatus
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime

_senders: list[CallbackSender] = []


def register_sender(runtime: Runtime) -> None:
    sender = CallbackSender.from_runtime(runtime)
    _senders.append(sender)
    handlers = runtime.state(worker.Handlers)
    handlers.unregister(service.CALLBACK)
    handlers.register(service.CALLBACK, sender.send, CALLBACK_POLICY)


@pytest.fixture
def sending(runtime: Runtime) -> None:
    register_sender(runtime)


def secret_of(runtime: Runtime, account_id: int, *, rotate: bool = False) -> str:
    with runtime.database.transaction() as session:
        return service.callback_secret(
            session, account_id, runtime.encryptor, runtime.clock.now(), rotate=rotate
        )


def queue(runtime: Runtime, merchant: Account, url: str, resp_code: str = "PROCESSED") -> int:
    with runtime.database.transaction() as session:
        return service.queue_callback(
            session,
            url=url,
            trid="tr_abc",
            track_id="order-42",
            resp_code=resp_code,
            account_id=merchant.id,
            clock=runtime.clock,
        ).id


def run_once(runtime: Runtime) -> int:
    return run_batch(runtime, *(sender.aclose for sender in _senders))


def test_a_callback_is_signed_and_carries_the_fields_in_query_and_body(
    runtime: Runtime, merchant: Account, receiver: Receiver, sending: None
) -> None:
    receiver.secret = secret_of(runtime, merchant.id)
    message_id = queue(runtime, merchant, receiver.url("/callback") + "?shop=7&resp_code=OLD")
    assert run_once(runtime) == 1
    [got] = receiver.requests
    assert got.method == "POST"
    assert got.verified is True
    assert got.query == {
        "shop": ["7"],
        "resp_code": ["OLD", "PROCESSED"],  # the merchant's query is kept; ours comes last
        "trid": ["tr_abc"],
        "track_id": ["order-42"],
    }
    assert got.form == {"resp_code": ["PROCESSED"], "trid": ["tr_abc"], "track_id": ["order-42"]}
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    assert got.headers["webhook-id"] == f"msg_mobip_{message_id}"
    assert got.headers["webhook-signature"].startswith("v1,")
    message, [attempt] = stored(runtime, message_id), attempts_of(runtime, message_id)
    assert message.status == OutboxStatus.DONE
    assert (attempt.number, attempt.outcome, attempt.status_code) == (1, "delivered", 200)
    assert attempt.response_excerpt == "ok"
    assert attempt.started_at == runtime.clock.now()


def test_a_batch_of_a_new_merchants_callbacks_is_delivered_in_one_run(
    runtime: Runtime, merchant: Account, receiver: Receiver, sending: None
) -> None:
    """The first use creates the secret once, even with the whole batch sending at once."""
    ids = [queue(runtime, merchant, receiver.url()) for _ in range(20)]
    assert run_once(runtime) == 20
    assert all(stored(runtime, i).status == OutboxStatus.DONE for i in ids)
    assert len(receiver.requests) == 20
    checker = Webhook(secret_of(runtime, merchant.id))
    for got in receiver.requests:
        checker.verify(got.body, got.headers, json_parse=False)


def test_a_wrong_secret_or_a_changed_body_does_not_verify(
    runtime: Runtime, merchant: Account, receiver: Receiver, sending: None
) -> None:
    other = make_account(runtime, name="Other shop")
    queue(runtime, merchant, receiver.url())
    run_once(runtime)
    [got] = receiver.requests
    Webhook(secret_of(runtime, merchant.id)).verify(got.body, got.headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_of(runtime, other.account.id)).verify(
            got.body, got.headers, json_parse=False
        )
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_of(runtime, merchant.id)).verify(
            got.body.replace(b"PROCESSED", b"CANCELLED"), got.headers, json_parse=False
        )


def test_the_secret_is_stored_encrypted_and_rotation_changes_the_signature(
    runtime: Runtime, merchant: Account, receiver: Receiver, sending: None
) -> None:
    first = secret_of(runtime, merchant.id)
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    with runtime.database.transaction() as session:
        row = repository.callback_secret(session, merchant.id)
        assert row is not None
        assert first not in row.secret_encrypted
        assert first.removeprefix("whsec_") not in row.secret_encrypted
    rotated = secret_of(runtime, merchant.id, rotate=True)
    assert rotated != first
    assert secret_of(runtime, merchant.id) == rotated
    register_sender(runtime)  # a fresh sender: no cached secret
    receiver.secret = rotated
    queue(runtime, merchant, receiver.url())
    run_once(runtime)
    [got] = receiver.requests
    assert got.verified is True
    with pytest.raises(WebhookVerificationError):
        Webhook(first).verify(got.body, got.headers, json_parse=False)


def test_a_first_use_that_loses_the_race_takes_the_secret_made_first(
    runtime: Runtime, merchant: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = secret_of(runtime, merchant.id)  # another worker made it a moment ago
    real = repository.callback_secret
    reads: list[int] = []

    def stale_then_real(session: object, account_id: int) -> object:
        reads.append(account_id)
        # The first read was made before the other worker's insert was visible.
        return None if len(reads) == 1 else real(session, account_id)  # type: ignore[arg-type]

    monkeypatch.setattr(repository, "callback_secret", stale_then_real)
    assert secret_of(runtime, merchant.id) == first  # its own insert refused; the row read again
    assert reads == [merchant.id, merchant.id]
    monkeypatch.undo()
    assert secret_of(runtime, merchant.id) == first  # and the stored secret is unchanged


def test_a_500_is_retried_with_backoff_and_the_webhook_id_stays_the_same(
    runtime: Runtime,
    clock: ManualClock,
    merchant: Account,
    receiver: Receiver,
    sending: None,
) -> None:
    receiver.secret = secret_of(runtime, merchant.id)
    receiver.reply("/callback", Reply(500, b"database down"), Reply(502, b""), Reply(200, b"fine"))
    message_id = queue(runtime, merchant, receiver.url())
    assert run_once(runtime) == 1
    message = stored(runtime, message_id)
    assert message.status == OutboxStatus.PENDING
    assert message.last_error == "DeliveryFailed: HTTP 500"
    low, high = service.backoff_bounds(CALLBACK_POLICY, 1)
    assert clock.now() + low <= message.next_attempt_at <= clock.now() + high
    assert run_once(runtime) == 0  # not due yet
    clock.set(message.next_attempt_at)
    assert run_once(runtime) == 1
    message = stored(runtime, message_id)
    clock.set(message.next_attempt_at)
    assert run_once(runtime) == 1
    message, attempts = stored(runtime, message_id), attempts_of(runtime, message_id)
    assert message.status == OutboxStatus.DONE
    assert message.attempts == 3
    assert [(a.number, a.outcome, a.status_code) for a in attempts] == [
        (1, "retry", 500),
        (2, "retry", 502),
        (3, "delivered", 200),
    ]
    assert attempts[0].response_excerpt == "database down"
    assert attempts[0].error == "DeliveryFailed: HTTP 500"
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {f"msg_mobip_{message_id}"}
    assert all(r.verified for r in receiver.requests)


def test_a_410_stops_at_once(
    runtime: Runtime,
    clock: ManualClock,
    merchant: Account,
    receiver: Receiver,
    sending: None,
) -> None:
    receiver.reply("/callback", Reply(410, b"gone"))
    message_id = queue(runtime, merchant, receiver.url())
    run_once(runtime)
    clock.advance(hours=200)
    assert run_once(runtime) == 0
    message, [attempt] = stored(runtime, message_id), attempts_of(runtime, message_id)
    assert message.status == OutboxStatus.FAILED
    assert "410" in (message.last_error or "")
    assert (attempt.outcome, attempt.status_code) == (AttemptOutcome.FAILED, 410)
    assert len(receiver.requests) == 1


def test_a_redirect_is_a_failure_and_is_not_followed(
    runtime: Runtime, merchant: Account, receiver: Receiver, sending: None
) -> None:
    receiver.reply("/callback", Reply(301, b"", {"Location": receiver.url("/moved")}))
    message_id = queue(runtime, merchant, receiver.url())
    run_once(runtime)
    assert [r.path for r in receiver.requests] == ["/callback"]
    message, [attempt] = stored(runtime, message_id), attempts_of(runtime, message_id)
    assert message.status == OutboxStatus.PENDING
    assert "redirects are not followed" in (message.last_error or "")
    assert (attempt.outcome, attempt.status_code) == ("retry", 301)


def test_retry_after_is_honoured_on_503(
    runtime: Runtime,
    clock: ManualClock,
    merchant: Account,
    receiver: Receiver,
    sending: None,
) -> None:
    receiver.reply("/callback", Reply(503, b"busy", {"Retry-After": "120"}))
    message_id = queue(runtime, merchant, receiver.url())
    run_once(runtime)
    message = stored(runtime, message_id)
    assert message.next_attempt_at == clock.now() + timedelta(seconds=120)


def test_after_the_last_attempt_the_message_fails_with_its_last_error(
    runtime: Runtime,
    clock: ManualClock,
    merchant: Account,
    receiver: Receiver,
    sending: None,
) -> None:
    receiver.reply("/callback", Reply(500, b"no"))
    message_id = queue(runtime, merchant, receiver.url())
    for _ in range(service.CALLBACK_MAX_ATTEMPTS):
        assert run_once(runtime) == 1
        clock.advance(hours=30)
    assert run_once(runtime) == 0
    message, attempts = stored(runtime, message_id), attempts_of(runtime, message_id)
    assert message.status == OutboxStatus.FAILED
    assert message.last_error == "gave up after 12 attempts: DeliveryFailed: HTTP 500"
    assert len(attempts) == len(receiver.requests) == 12
    assert attempts[-1].outcome == "failed"


def test_the_callback_policy_spans_at_least_72_hours_over_10_attempts() -> None:
    assert CALLBACK_POLICY.max_attempts >= 10
    least = sum((service.backoff_bounds(CALLBACK_POLICY, n)[0] for n in range(1, 12)), timedelta(0))
    assert least >= timedelta(hours=72)
    assert service.backoff_bounds(CALLBACK_POLICY, 1)[0] > timedelta(0)


def test_production_refuses_a_loopback_callback_without_connecting(
    runtime: Runtime, merchant: Account, receiver: Receiver
) -> None:
    prod_runtime = with_settings(runtime, env=Environment.PRODUCTION)
    register_sender(prod_runtime)
    message_id = queue(prod_runtime, merchant, receiver.url())
    assert run_once(prod_runtime) == 1
    message, [attempt] = stored(runtime, message_id), attempts_of(runtime, message_id)
    assert message.status == OutboxStatus.FAILED
    assert "refused: 127.0.0.1 is a loopback address" in (message.last_error or "")
    assert attempt.status_code is None
    assert receiver.requests == []


def test_an_unreachable_receiver_is_retried(
    runtime: Runtime, merchant: Account, sending: None
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message_id = queue(runtime, merchant, f"http://127.0.0.1:{port}/callback")
    run_once(runtime)
    message, [attempt] = stored(runtime, message_id), attempts_of(runtime, message_id)
    assert message.status == OutboxStatus.PENDING
    assert message.last_error and message.last_error.startswith("DeliveryFailed: cannot connect")
    assert attempt.outcome == "retry"


def test_with_query_keeps_the_existing_query_and_drops_the_fragment() -> None:
    fields = [("resp_code", "ERROR"), ("trid", "tr_1"), ("track_id", "a b&c")]
    assert with_query("https://m.example/cb?x=1#frag", fields) == (
        "https://m.example/cb?x=1&resp_code=ERROR&trid=tr_1&track_id=a+b%26c"
    )
    assert with_query("https://m.example/cb", fields[:1]) == "https://m.example/cb?resp_code=ERROR"


def test_callbacks_are_registered_for_the_worker(runtime: Runtime) -> None:
    from mobip.delivery.handlers import register_all

    register_all(runtime)
    found = runtime.state(worker.Handlers).registration(service.CALLBACK)
    assert found is not None
    assert found.policy == callbacks.CALLBACK_POLICY


# --- the operator's command line ----------------------------------------------------------------


@pytest.fixture
def cli_env(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBIP_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("MOBIP_DATABASE_URL", runtime.settings.resolved_database_url)
    monkeypatch.setenv("MOBIP_SECRET_KEY", runtime.settings.resolved_secret_key)
    monkeypatch.setenv("MOBIP_ENV", "development")


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_shows_and_rotates_the_callback_secret(
    runtime: Runtime, merchant: Account, cli_env: None
) -> None:
    code, shown = cli("account", "callback-secret", merchant.uid)
    assert code == 0, shown
    assert shown.strip() == secret_of(runtime, merchant.id)
    code, rotated = cli("account", "callback-secret", merchant.uid, "--rotate")
    assert code == 0, rotated
    new = rotated.strip().splitlines()[-1]
    assert new.startswith("whsec_") and new != shown.strip()
    assert secret_of(runtime, merchant.id) == new
    assert cli("account", "callback-secret", "acct_nope")[0] == 1


def test_cli_lists_failed_messages_and_retries_one(
    runtime: Runtime,
    clock: ManualClock,
    merchant: Account,
    receiver: Receiver,
    sending: None,
    cli_env: None,
) -> None:
    receiver.reply("/callback", Reply(410, b"gone"), Reply(200, b"ok"))
    failed_id = queue(runtime, merchant, receiver.url())
    run_once(runtime)
    delivered_id = queue(runtime, merchant, receiver.url())
    run_once(runtime)
    code, listing = cli("outbox", "list", "--failed", "--json")
    assert code == 0, listing
    [failed] = json.loads(listing)
    assert (failed["id"], failed["kind"]) == (failed_id, "callback")
    assert [a["status_code"] for a in failed["attempt_log"]] == [410]
    code, everything = cli("outbox", "list", "--json")
    assert {m["id"] for m in json.loads(everything)} == {failed_id, delivered_id}
    code, out = cli("outbox", "retry", str(failed_id))
    assert code == 0, out
    assert f"attempt 2 of {1 + service.CALLBACK_MAX_ATTEMPTS}" in out
    # The CLI's clock is the system clock; the test worker's clock must have reached "now".
    message = stored(runtime, failed_id)
    clock.set(max(clock.now(), message.next_attempt_at))
    assert run_once(runtime) == 1
    message, attempts = stored(runtime, failed_id), attempts_of(runtime, failed_id)
    assert message.status == OutboxStatus.DONE
    assert [a.outcome for a in attempts] == ["failed", "delivered"]
    code, out = cli("outbox", "retry", str(failed_id))
    assert code == 1 and "already delivered" in out
    assert cli("outbox", "retry", "999999")[0] == 1


def test_get_transaction_style_listing_shows_callback_attempts(
    runtime: Runtime, merchant: Account, receiver: Receiver, sending: None
) -> None:
    receiver.reply("/callback", Reply(500, b"x"))
    message_id = queue(runtime, merchant, receiver.url())
    run_once(runtime)
    with runtime.database.transaction() as session:
        [(message, log)] = [
            row for row in service.list_messages(session) if row[0].id == message_id
        ]
    assert (message.attempts, message.last_error) == (1, "DeliveryFailed: HTTP 500")
    assert json.dumps([a.status_code for a in log]) == "[500]"


def test_the_operator_listing_gives_each_message_its_own_attempts(
    runtime: Runtime, merchant: Account, receiver: Receiver, sending: None
) -> None:
    receiver.reply("/failing", Reply(500, b"x"))
    receiver.reply("/fine", Reply(200, b"ok"))
    failing = queue(runtime, merchant, receiver.url("/failing"))
    fine = queue(runtime, merchant, receiver.url("/fine"))
    second_fine = queue(runtime, merchant, receiver.url("/fine"))
    assert run_once(runtime) == 3
    later = queue(runtime, merchant, receiver.url("/fine"))
    with runtime.database.transaction() as session:
        logs = {
            message.id: [(a.outcome, a.status_code) for a in log]
            for message, log in service.list_messages(session)
        }
    assert logs[failing] == [("retry", 500)]
    assert logs[fine] == logs[second_fine] == [("delivered", 200)]
    assert logs[later] == []


def test_a_callback_whose_account_is_gone_fails_without_sending(
    runtime: Runtime, merchant: Account, receiver: Receiver, sending: None
) -> None:
    message_id = queue(runtime, merchant, receiver.url())
    with runtime.database.transaction() as session:
        # What deleting the account does to its messages (ON DELETE SET NULL).
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id).values(account_id=None)
        )
    assert run_once(runtime) == 1
    message, [attempt] = stored(runtime, message_id), attempts_of(runtime, message_id)
    assert message.status == OutboxStatus.FAILED
    assert "no longer exists" in (message.last_error or "")
    assert attempt.outcome == AttemptOutcome.FAILED
    assert receiver.requests == []


def test_one_connection_serves_the_worker_until_it_stops(
    runtime: Runtime, merchant: Account, receiver: Receiver
) -> None:
    """Callbacks to one merchant reuse a kept-alive connection, which the worker closes when it
    stops (it does not linger until the process exits)."""
    from mobip.delivery.runner import InProcessWorker

    one_by_one = with_settings(runtime, worker_batch_size=1)
    for _ in range(3):
        queue(one_by_one, merchant, receiver.url("/callback"))

    async def main() -> None:
        running = InProcessWorker(one_by_one)
        await asyncio.to_thread(receiver.wait_for, 3)
        assert receiver.closed == []
        await running.stop()
        await asyncio.to_thread(receiver.wait_closed, 1)

    asyncio.run(main())
    [connection] = {request.connection for request in receiver.requests}
    assert receiver.closed == [connection]
