"""The operator's command line: serve, worker, migrate, account …"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from mobip.accounts import service as accounts_service
from mobip.accounts.models import Account, Language, Provider, Role
from mobip.auth import service as auth_service
from mobip.config import ConfigurationError, Settings
from mobip.kit.errors import MobipError
from mobip.kit.logging import configure_logging
from mobip.kit.migrate import is_current, upgrade
from mobip.kit.runtime import Runtime

T = TypeVar("T")

app = typer.Typer(help="MOBIP server: payment requests by e-mail, SMS and QR code.")
account_app = typer.Typer(help="Manage accounts (admin → partner → merchant).")
app.add_typer(account_app, name="account")


@contextmanager
def _runtime() -> Iterator[Runtime]:
    """The command's runtime; its database connections close when the command ends."""
    settings = Settings()
    try:
        settings.check()
        runtime = Runtime.from_settings(settings)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        yield runtime
    finally:
        runtime.database.dispose()


def _unit_of_work(runtime: Runtime, work: Callable[[Session], T], *, writes: bool = True) -> T:
    """``work`` in one committed transaction, with MOBIP errors shown as a one-line message.

    The server may be writing all the time (README: the CLI works while ``serve`` runs). A
    writer takes SQLite's write lock at BEGIN and waits its turn: a transaction that read first
    would fail at once on its first write when a create committed in between. Database.run also
    runs ``work`` again when SQLite still says "database is locked", so ``work`` only touches
    the database; the command prints after it returns.
    """
    try:
        return runtime.database.run(work, immediate=writes)
    except MobipError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _require_current_schema(runtime: Runtime) -> None:
    database = runtime.database
    if not database.retry_busy(lambda: is_current(database.engine)):
        typer.echo("error: the database schema is not current: run 'mobip migrate'", err=True)
        raise typer.Exit(2)


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    with _runtime() as runtime:
        upgrade(runtime.settings.resolved_database_url)
        typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (MOBIP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (MOBIP_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes")] = 1,
) -> None:
    """Apply migrations and run the API, the hosted pages and the delivery worker."""
    import uvicorn

    if host:
        os.environ["MOBIP_HOST"] = host
    if port:
        os.environ["MOBIP_PORT"] = str(port)
    with _runtime() as runtime:
        settings = runtime.settings
        configure_logging(settings.log_level)
        upgrade(settings.resolved_database_url)
        if not settings.is_production:
            _create_demo_merchant(runtime)
        if workers == 1:
            from mobip.app import create_app
            from mobip.delivery.runner import start_in_process

            background = start_in_process if settings.worker_enabled else None
            uvicorn.run(
                create_app(runtime, background=background),
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,  # our access line only: uvicorn's logs query strings
                timeout_keep_alive=settings.keep_alive_seconds,
            )
            return
        # Several server processes: none runs the worker loop; one separate worker process does.
        os.environ["MOBIP_WORKER_ENABLED"] = "false"
        worker_process = None
        if settings.worker_enabled:
            worker_process = subprocess.Popen([sys.executable, "-m", "mobip", "worker"])
        try:
            uvicorn.run(
                "mobip.server:app_from_environment",
                factory=True,
                workers=workers,
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,  # our access line only: uvicorn's logs query strings
                timeout_keep_alive=settings.keep_alive_seconds,
            )
        finally:
            if worker_process is not None:
                worker_process.terminate()
                worker_process.wait(timeout=30)


def _create_demo_merchant(runtime: Runtime) -> None:
    def create(
        session: Session,
    ) -> tuple[accounts_service.NewCredentials, Account, str | None] | None:
        if accounts_service.any_account_exists(session):
            return None
        now = runtime.clock.now()
        admin, admin_secret = accounts_service.ensure_platform_admin(session, now)
        demo = accounts_service.create_account(
            session,
            name="Demo merchant",
            role=Role.MERCHANT,
            parent_uid=admin.uid,
            currency="EUR",
            language=Language.EN,
            external_id="demo",
            now=now,
        )
        return demo, admin, admin_secret

    created = runtime.database.run(create)
    if created is None:
        return
    demo, admin, admin_secret = created
    typer.echo(
        "Created a demo merchant (shown once; rotate with 'mobip account rotate-secret UID'):\n"
        f"  uid            {demo.account.uid}\n"
        f"  api_account_id {demo.account.api_account_id}\n"
        f"  api_secret_key {demo.api_secret_key}\n"
        f"Platform admin: uid {admin.uid}, api_account_id {admin.api_account_id}, "
        f"api_secret_key {admin_secret}"
    )


@app.command()
def worker() -> None:
    """Run the delivery worker alone (several may run against PostgreSQL)."""
    from mobip.delivery.runner import run_standalone
    from mobip.wiring import wire

    with _runtime() as runtime:
        configure_logging(runtime.settings.log_level)
        _require_current_schema(runtime)
        run_standalone(wire(runtime))


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option(help="Display name")],
    role: Annotated[Role, typer.Option(help="admin, partner or merchant")] = Role.MERCHANT,
    parent: Annotated[str | None, typer.Option(help="Parent uid (default: platform admin)")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency")] = "EUR",
    language: Annotated[Language, typer.Option(help="EN or FR")] = Language.EN,
    external_id: Annotated[str | None, typer.Option(help="External_AccountID")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    test: Annotated[
        bool, typer.Option("--test", help="A test account (sandbox payments in production)")
    ] = False,
) -> None:
    """Create an account and print its API credentials (the secret is shown once)."""
    with _runtime() as runtime:
        _require_current_schema(runtime)
        created = _unit_of_work(
            runtime,
            lambda session: accounts_service.create_account(
                session,
                name=name,
                role=role,
                parent_uid=parent,
                currency=currency,
                language=language,
                external_id=external_id,
                now=runtime.clock.now(),
                is_test=test,
            ),
        )
        account = created.account
        record = {
            "uid": account.uid,
            "api_account_id": account.api_account_id,
            "api_secret_key": created.api_secret_key,
            "name": account.name,
            "role": account.role,
            "currency": account.currency,
            "language": account.language,
            "external_account_id": account.external_account_id,
            "is_test": account.is_test,
        }
        if as_json:
            typer.echo(json.dumps(record))
            return
        for key, value in record.items():
            typer.echo(f"{key:<20} {value if value is not None else ''}")


@account_app.command("list")
def account_list() -> None:
    """List every account, tree order."""
    with _runtime() as runtime:
        _require_current_schema(runtime)
        accounts = _unit_of_work(runtime, accounts_service.all_accounts, writes=False)
        for account in accounts:
            depth = account.path.count("/") - 2
            typer.echo(
                f"{'  ' * depth}{account.uid}  {account.role:<8}  {account.api_account_id}  "
                f"{account.currency}  {account.name}"
            )


@account_app.command("rotate-secret")
def account_rotate_secret(uid: str) -> None:
    """Issue a new API secret key; the old one and its tokens stop working."""
    with _runtime() as runtime:
        _require_current_schema(runtime)
        created = _unit_of_work(
            runtime,
            lambda session: auth_service.rotate_secret(session, uid, runtime.clock.now()),
        )
        typer.echo(f"api_account_id {created.account.api_account_id}")
        typer.echo(f"api_secret_key {created.api_secret_key}")


@account_app.command("set-provider")
def account_set_provider(
    uid: str,
    provider: Annotated[Provider, typer.Option(help="sandbox or stripe")],
    public_key: Annotated[str | None, typer.Option(help="Public (publishable) key")] = None,
    private_key: Annotated[str | None, typer.Option(help="Private key (encrypted at rest)")] = None,
    login: Annotated[str | None, typer.Option(help="Provider login")] = None,
) -> None:
    """Set the account's payment provider and keys."""
    with _runtime() as runtime:
        _require_current_schema(runtime)
        _unit_of_work(
            runtime,
            lambda session: accounts_service.set_provider(
                session,
                uid,
                provider=provider,
                public_key=public_key,
                private_key=private_key,
                login=login,
                encryptor=runtime.encryptor,
                now=runtime.clock.now(),
            ),
        )
        typer.echo(f"provider of {uid} set to {provider.value}")


@account_app.command("add-document")
def account_add_document(
    uid: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str, typer.Option(help="Document name (used in document_list)")],
    content_type: Annotated[str | None, typer.Option(help="Default: guessed from the name")] = None,
) -> None:
    """Attach a document to an account (replaces one of the same name)."""
    with _runtime() as runtime:
        _require_current_schema(runtime)
        content = file.read_bytes()
        document = _unit_of_work(
            runtime,
            lambda session: accounts_service.add_document(
                session,
                uid,
                name=name,
                content=content,
                content_type=content_type,
                now=runtime.clock.now(),
            ),
        )
        typer.echo(f"stored {document.name} ({document.size} bytes, sha256 {document.sha256})")


# --- callbacks and the outbox (delivery) --------------------------------------------------------

outbox_app = typer.Typer(help="Inspect and retry outgoing messages (e-mail, SMS, callbacks).")
app.add_typer(outbox_app, name="outbox")


@account_app.command("callback-secret")
def account_callback_secret(
    uid: str,
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace it with a new secret")] = False,
) -> None:
    """Show (or rotate) the whsec_ secret that signs the account's callbacks."""
    from mobip.delivery import service as delivery_service

    with _runtime() as runtime:
        _require_current_schema(runtime)

        def show_or_rotate(session: Session) -> str:
            account = accounts_service.operator_get(session, uid)
            return delivery_service.callback_secret(
                session, account.id, runtime.encryptor, runtime.clock.now(), rotate=rotate
            )

        secret = _unit_of_work(runtime, show_or_rotate)
        if rotate:
            typer.echo("rotated: callbacks are signed with the new secret within 30 seconds")
        typer.echo(secret)


@outbox_app.command("list")
def outbox_list(
    failed: Annotated[bool, typer.Option("--failed", help="Only failed messages")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Newest N messages")] = 50,
    attempts: Annotated[bool, typer.Option("--attempts", help="Show each attempt")] = False,
) -> None:
    """List the newest outbox messages: id, kind, status, attempts, subject, last error."""
    from mobip.delivery import service as delivery_service
    from mobip.transactions.service import mask_recipient

    with _runtime() as runtime:
        _require_current_schema(runtime)
        rows = _unit_of_work(
            runtime,
            lambda session: delivery_service.list_messages(
                session, failed_only=failed, limit=limit
            ),
            writes=False,
        )
        for message, log in rows:
            target = (
                message.target if message.kind == "callback" else mask_recipient(message.target)
            )
            typer.echo(
                f"{message.id:>8}  {message.kind:<16} {message.status:<8} "
                f"{message.attempts}/{message.max_attempts}  {message.subject or '-'}  {target}  "
                f"{(message.last_error or '')[:120]}"
            )
            if not attempts:
                continue
            for attempt in log:
                typer.echo(
                    f"          #{attempt.number} {attempt.started_at.isoformat()} "
                    f"{attempt.outcome:<9} {attempt.status_code or '-'} {attempt.duration_ms}ms "
                    f"{(attempt.response_excerpt or '')[:60]!r} {(attempt.error or '')[:80]}"
                )


@outbox_app.command("retry")
def outbox_retry(message_id: int) -> None:
    """Make a failed message due now, with a fresh set of attempts."""
    from mobip.delivery import service as delivery_service

    with _runtime() as runtime:
        _require_current_schema(runtime)
        try:
            message = _unit_of_work(
                runtime,
                lambda session: delivery_service.retry_message(session, message_id, runtime.clock),
            )
        except delivery_service.OutboxRetryRefused as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(
            f"message {message.id} ({message.kind}) is due now: "
            f"attempt {message.attempts + 1} of {message.max_attempts}"
        )


def main() -> None:
    app()
