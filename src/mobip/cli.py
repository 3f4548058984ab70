"""The operator's command line: serve, worker, migrate, account …, outbox …, invoices …

Every command reads the same ``MOBIP_*`` settings as the server (src/mobip/config.py); the
account and outbox commands work on the database those settings name and refuse to create one.
A command that prints data prints a table with a header (rich in a terminal, aligned plain text
in a pipe) or, with ``--json``, JSON for scripts: one object, or a list of objects for ``list``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from sqlalchemy import make_url
from sqlalchemy.orm import Session

from mobip.accounts import service as accounts_service
from mobip.accounts.models import Account, Language, Provider, Role
from mobip.auth import service as auth_service
from mobip.config import ConfigurationError, Settings
from mobip.kit.errors import MobipError
from mobip.kit.logging import configure_logging
from mobip.kit.migrate import current_revision, head_revision, is_current, upgrade
from mobip.kit.runtime import Runtime, sqlite_path

if TYPE_CHECKING:
    from mobip.delivery.models import OutboxAttempt, OutboxMessage

T = TypeVar("T")

app = typer.Typer(
    help=(
        "MOBIP server: payment requests by e-mail, SMS and QR code. Every command reads the "
        "server's MOBIP_* environment variables (MOBIP_DATA_DIR, MOBIP_DATABASE_URL, …): run "
        "it with the same values as the server."
    )
)
account_app = typer.Typer(help="Manage accounts (admin → partner → merchant).")
app.add_typer(account_app, name="account")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]


@contextmanager
def _runtime(*, existing_database: bool = False) -> Iterator[Runtime]:
    """The command's runtime; its database connections close when the command ends.

    ``existing_database``: the command works on the server's database and must not create one
    (a SQLite file, a data folder and a secret key where the operator did not mean them).
    """
    from mobip.wiring import observe

    observe()  # a command that changes a transaction tells the same observers as the server
    settings = Settings()
    try:
        settings.check()
        if existing_database:
            _require_database(settings)
        runtime = Runtime.from_settings(settings)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        yield runtime
    finally:
        runtime.database.dispose()


def _settings_in_use(settings: Settings) -> str:
    """Where the settings point, said in the environment variables' own terms."""
    if settings.database_url:
        return "as MOBIP_DATABASE_URL says"
    folder = settings.data_dir
    if "data_dir" not in settings.model_fields_set:
        return (
            "neither MOBIP_DATABASE_URL nor MOBIP_DATA_DIR is set, so the data folder is ./var "
            f"in the current directory: {folder.resolve()}"
        )
    return f"MOBIP_DATABASE_URL is not set and MOBIP_DATA_DIR is {folder} ({folder.resolve()})"


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _require_database(settings: Settings) -> None:
    """A SQLite database that does not exist: say which settings the CLI read, create nothing."""
    path = sqlite_path(settings.resolved_database_url)
    if path is None or path.exists():
        return
    raise ConfigurationError(
        f"no MOBIP database at {path} ({_settings_in_use(settings)}).\n"
        "The CLI reads the same MOBIP_* environment variables as the server: run it with the "
        "server's MOBIP_DATA_DIR (or MOBIP_DATABASE_URL), e.g.\n"
        "  MOBIP_DATA_DIR=/path/to/the/server/var mobip account list\n"
        "or create a new, empty database there with 'mobip migrate'."
    )


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


def _on_data(work: Callable[[Runtime, Session], T], *, writes: bool = True) -> T:
    """``work`` in one unit of work on the existing database once its schema is current: what
    every command that reads or changes data does (``work`` gets the runtime for its clock,
    encryptor and settings)."""
    with _runtime(existing_database=True) as runtime:
        _require_current_schema(runtime)
        return _unit_of_work(runtime, lambda session: work(runtime, session), writes=writes)


def _require_current_schema(runtime: Runtime) -> None:
    database = runtime.database
    if database.retry_busy(lambda: is_current(database.engine)):
        return
    settings = runtime.settings
    url = settings.resolved_database_url
    revision = database.retry_busy(lambda: current_revision(database.engine))
    where = f"{_shown_url(url)} ({_settings_in_use(settings)})"
    if revision is None:
        message = (
            f"the database at {where} has no MOBIP tables.\n"
            "If the server uses another database, run this command with the server's MOBIP_* "
            "settings; to set up this one, run 'mobip migrate' with the same settings."
        )
    else:
        message = (
            f"the database schema at {where} is not current (revision {revision}, this "
            f"version of MOBIP needs {head_revision(url)}): run 'mobip migrate' with the same "
            "MOBIP_* settings"
        )
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


# --- output: tables for people, JSON for scripts -------------------------------------------------


def _utc(moment: datetime | None) -> str:
    """``2026-11-30 12:34:56 UTC`` (tables); JSON uses ``_iso``."""
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else ""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False))


def _is_terminal() -> bool:
    return sys.stdout.isatty()


# A column whose cells are this long or shorter holds identifiers or short values: a terminal
# table never cuts or wraps them. Longer free text wraps, at this width at least.
_NEVER_CUT = 30
_TEXT_WIDTH = 40


def _print_rich_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str) -> None:
    """The table for a terminal: drawn wider than a narrow terminal rather than cut short."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None, box=box.SIMPLE_HEAD, title_justify="left")
    needed = 0
    for index, header in enumerate(headers):
        longest = max([len(header)] + [len(row[index]) for row in rows])
        if longest <= _NEVER_CUT:
            table.add_column(header, no_wrap=True, min_width=longest)
        else:
            table.add_column(header, overflow="fold", min_width=min(longest, _TEXT_WIDTH))
        needed += min(longest, _TEXT_WIDTH) + 3  # rich's padding and separator
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: no rich markup in our data
    console = Console(highlight=False)
    if console.width < needed:
        console = Console(highlight=False, width=needed)
    console.print(table)


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> None:
    """A table with a header: rich in a terminal, aligned plain text (two spaces) otherwise.

    An empty cell means the value does not exist (no HTTP status for an SMTP attempt).
    """
    if _is_terminal():
        _print_rich_table(headers, rows, title)
        return
    if title:
        typer.echo(title)
    widths = [
        max([len(header)] + [len(row[i]) for row in rows]) for i, header in enumerate(headers)
    ]
    for line in [headers, *rows]:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


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

    with _runtime(existing_database=True) as runtime:
        configure_logging(runtime.settings.log_level)
        _require_current_schema(runtime)
        run_standalone(wire(runtime))


def _account_record(account: Account) -> dict[str, Any]:
    """What the CLI shows of an account (never its secret: that is shown once, by its command)."""
    # The path is the uids from the root, "/admin/partner/merchant/": the parent is next to last.
    uids = account.path.strip("/").split("/")
    return {
        "uid": account.uid,
        "api_account_id": account.api_account_id,
        "name": account.name,
        "role": account.role,
        "parent_uid": uids[-2] if len(uids) > 1 else None,
        "currency": account.currency,
        "language": account.language,
        "country": account.country,
        "external_account_id": account.external_account_id,
        "is_test": account.is_test,
        "created_at": _iso(account.created_at),
    }


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option(help="Display name")],
    role: Annotated[Role, typer.Option(help="admin, partner or merchant")] = Role.MERCHANT,
    parent: Annotated[str | None, typer.Option(help="Parent uid (default: platform admin)")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency")] = "EUR",
    language: Annotated[Language, typer.Option(help="EN or FR")] = Language.EN,
    external_id: Annotated[str | None, typer.Option(help="External_AccountID")] = None,
    country: Annotated[
        str,
        typer.Option(help="ISO 3166-1 alpha-2 (national phone numbers it gives are read there)"),
    ] = accounts_service.DEFAULT_COUNTRY,
    as_json: JsonOption = False,
    test: Annotated[
        bool, typer.Option("--test", help="A test account (sandbox payments in production)")
    ] = False,
) -> None:
    """Create an account and print its API credentials (the secret is shown once)."""
    created = _on_data(
        lambda runtime, session: accounts_service.create_account(
            session,
            name=name,
            role=role,
            parent_uid=parent,
            currency=currency,
            language=language,
            external_id=external_id,
            now=runtime.clock.now(),
            is_test=test,
            country=country,
        )
    )
    record = _account_record(created.account)
    record["api_secret_key"] = created.api_secret_key
    if as_json:
        _print_json(record)
        return
    for key, value in record.items():
        typer.echo(f"{key:<20} {'' if value is None else value}")
    typer.echo("The api_secret_key is shown only now: keep it.")


@account_app.command("list")
def account_list(as_json: JsonOption = False) -> None:
    """List every account in tree order (children indented under their parent)."""
    accounts = _on_data(lambda _, session: accounts_service.all_accounts(session), writes=False)
    if as_json:
        _print_json([_account_record(account) for account in accounts])
        return
    rows = [
        [
            "  " * (account.path.count("/") - 2) + account.name,
            account.role,
            account.uid,
            account.api_account_id,
            account.currency,
            account.language,
            "yes" if account.is_test else "no",
            account.external_account_id or "",
        ]
        for account in accounts
    ]
    headers = ["NAME", "ROLE", "UID", "API_ACCOUNT_ID", "CURRENCY", "LANGUAGE", "TEST"]
    _print_table([*headers, "EXTERNAL_ACCOUNT_ID"], rows)


@account_app.command("rotate-secret")
def account_rotate_secret(uid: str, as_json: JsonOption = False) -> None:
    """Issue a new API secret key (shown once); the old one and its tokens stop working."""
    created = _on_data(
        lambda runtime, session: auth_service.rotate_secret(session, uid, runtime.clock.now())
    )
    record = {
        "uid": created.account.uid,
        "api_account_id": created.account.api_account_id,
        "api_secret_key": created.api_secret_key,
    }
    if as_json:
        _print_json(record)
        return
    typer.echo(f"api_account_id {created.account.api_account_id}")
    typer.echo(f"api_secret_key {created.api_secret_key}")


@account_app.command("set-provider")
def account_set_provider(
    uid: str,
    provider: Annotated[Provider, typer.Option(help="sandbox or stripe")],
    public_key: Annotated[str | None, typer.Option(help="Public (publishable) key")] = None,
    private_key: Annotated[str | None, typer.Option(help="Private key (encrypted at rest)")] = None,
    login: Annotated[str | None, typer.Option(help="Provider login")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set the account's payment provider and keys (the private key is never printed)."""
    account = _on_data(
        lambda runtime, session: accounts_service.set_provider(
            session,
            uid,
            provider=provider,
            public_key=public_key,
            private_key=private_key,
            login=login,
            encryptor=runtime.encryptor,
            now=runtime.clock.now(),
        )
    )
    if as_json:
        _print_json(
            {
                "uid": account.uid,
                "provider": account.provider,
                "public_key": account.provider_public_key,
                "login": account.provider_login,
                "private_key_set": account.provider_private_key_encrypted is not None,
            }
        )
        return
    typer.echo(f"provider of {uid} set to {provider.value}")


@account_app.command("set-country")
def account_set_country(
    uid: str,
    country: Annotated[str, typer.Argument(help="ISO 3166-1 alpha-2, e.g. FR, DE, US")],
    as_json: JsonOption = False,
) -> None:
    """Set where the account is: an imported customer's national phone number is read there."""
    account = _on_data(
        lambda runtime, session: accounts_service.set_country(
            session, uid, country, runtime.clock.now()
        )
    )
    if as_json:
        _print_json({"uid": account.uid, "country": account.country})
        return
    typer.echo(f"country of {uid} set to {account.country}")


@account_app.command("set-fees")
def account_set_fees(
    uid: str,
    percent: Annotated[
        str | None, typer.Option(help="Percentage, at most 2 decimals (1.4 = 140 basis points)")
    ] = None,
    fixed: Annotated[int | None, typer.Option(help="Fixed fee in minor units (25 = 0.25)")] = None,
    clear: Annotated[bool, typer.Option(help="Remove its own schedule: inherit again")] = False,
    as_json: JsonOption = False,
) -> None:
    """Set the account's own fee schedule (a missing part counts as 0), or --clear it; changes
    only the fees of payments made from now on (docs/fees.md)."""

    def work(runtime: Runtime, session: Session) -> accounts_service.FeeSchedule:
        account = accounts_service.set_fees(
            session, uid, percent=percent, fixed=fixed, clear=clear, now=runtime.clock.now()
        )
        return accounts_service.fee_schedule_in_force(session, account, runtime.settings)

    schedule = _on_data(work)
    if as_json:
        _print_json(
            {
                "uid": uid,
                "percent": schedule.percent,
                "basis_points": schedule.basis_points,
                "fixed": schedule.fixed,
                "from": schedule.source,
            }
        )
        return
    origin = "its own" if schedule.source == uid else f"inherited from {schedule.source}"
    typer.echo(f"fees of {uid}: {schedule.percent} % + {schedule.fixed} ({origin})")


@account_app.command("add-document")
def account_add_document(
    uid: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str, typer.Option(help="Document name (used in document_list)")],
    content_type: Annotated[str | None, typer.Option(help="Default: guessed from the name")] = None,
    as_json: JsonOption = False,
) -> None:
    """Attach a document to an account (replaces one of the same name)."""
    content = file.read_bytes()
    document = _on_data(
        lambda runtime, session: accounts_service.add_document(
            session,
            uid,
            name=name,
            content=content,
            content_type=content_type,
            now=runtime.clock.now(),
        )
    )
    if as_json:
        _print_json(
            {
                "uid": uid,
                "name": document.name,
                "content_type": document.content_type,
                "size": document.size,
                "sha256": document.sha256,
            }
        )
        return
    typer.echo(f"stored {document.name} ({document.size} bytes, sha256 {document.sha256})")


def _branding_record(
    uid: str, branding: accounts_service.Branding, size: int | None
) -> dict[str, Any]:
    return {
        "uid": uid,
        "accent_colour": branding.accent_colour,
        "logo_content_type": branding.logo_content_type,
        "logo_size": size,
        "logo_sha256": branding.logo_sha256,
        "logo_version": branding.logo_version,
    }


@account_app.command("branding")
def account_branding(
    uid: str,
    logo: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="PNG, JPEG or SVG, at most 256 KiB and 1024x1024 px (stored sanitised)",
        ),
    ] = None,
    clear_logo: Annotated[bool, typer.Option("--clear-logo", help="Remove the logo")] = False,
    accent: Annotated[
        str | None,
        typer.Option(
            help="Accent colour, #rgb or #rrggbb, with white text readable on it (contrast 4.5:1)"
        ),
    ] = None,
    clear_accent: Annotated[
        bool, typer.Option("--clear-accent", help="Back to the checkout's own colour")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show or change the merchant's logo and accent colour (checkout pages and e-mails).

    Without options, shows the current branding.
    """
    content = _logo_file(logo) if logo is not None else None
    changes = content is not None or accent is not None or clear_logo or clear_accent

    def show_or_set(
        runtime: Runtime, session: Session
    ) -> tuple[accounts_service.Branding, int | None]:
        account = accounts_service.operator_get(session, uid)
        branding = (
            accounts_service.set_branding(
                session,
                account,
                logo=content,
                accent_colour=accent,
                clear_logo=clear_logo,
                clear_accent=clear_accent,
                clock=runtime.clock,
            )
            if changes
            else accounts_service.get_branding(session, account.id)
        )
        stored = accounts_service.get_logo(session, account.id)
        return branding, len(stored[1]) if stored else None

    branding, size = _on_data(show_or_set, writes=changes)
    record = _branding_record(uid, branding, size)
    if as_json:
        _print_json(record)
        return
    _print_table(
        ["UID", "ACCENT_COLOUR", "LOGO", "LOGO_BYTES", "LOGO_VERSION"],
        [
            [
                uid,
                branding.accent_colour or "(none: the checkout's own)",
                branding.logo_content_type or "(none)",
                "" if size is None else str(size),
                branding.logo_version or "",
            ]
        ],
    )


def _logo_file(path: Path) -> bytes:
    """The logo file's bytes; one past the limit is refused without reading it all."""
    from mobip.accounts.branding import MAX_LOGO_BYTES, logo_size_error

    size = path.stat().st_size
    if size > MAX_LOGO_BYTES:
        typer.echo(f"error: {logo_size_error(size).message}", err=True)
        raise typer.Exit(1)
    return path.read_bytes()


# --- callbacks and the outbox (delivery) --------------------------------------------------------

outbox_app = typer.Typer(help="Inspect and retry outgoing messages (e-mail, SMS, callbacks).")
app.add_typer(outbox_app, name="outbox")


@account_app.command("callback-secret")
def account_callback_secret(
    uid: str,
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace it with a new secret")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show (or rotate) the whsec_ secret that signs the account's callbacks."""
    from mobip.delivery import service as delivery_service

    def show_or_rotate(runtime: Runtime, session: Session) -> str:
        account = accounts_service.operator_get(session, uid)
        return delivery_service.callback_secret(
            session, account.id, runtime.encryptor, runtime.clock.now(), rotate=rotate
        )

    secret = _on_data(show_or_rotate)
    if as_json:
        _print_json({"uid": uid, "callback_secret": secret, "rotated": rotate})
        return
    if rotate:
        typer.echo("rotated: callbacks are signed with the new secret within 30 seconds")
    typer.echo(secret)


# What each attempt's outcome means for the message (outbox_attempts.outcome).
_OUTCOMES = {
    "delivered": "delivered",
    "retry": "failed, will retry",
    "failed": "failed, gave up",
}


def _when(message: OutboxMessage) -> str:
    """When the message was delivered, when it was given up, or when its next attempt comes."""
    if message.status == "done":
        return f"delivered {_utc(message.delivered_at)}"
    if message.status == "failed":
        return f"gave up {_utc(message.updated_at)}"
    return f"next attempt {_utc(message.next_attempt_at)}"


def _shown_target(message: OutboxMessage) -> str:
    from mobip.transactions.service import mask_recipient

    # A callback URL is the merchant's; an address or phone number is a customer's.
    return message.target if message.kind == "callback" else mask_recipient(message.target)


def _message_record(message: OutboxMessage, log: Sequence[OutboxAttempt]) -> dict[str, Any]:
    return {
        "id": message.id,
        "kind": message.kind,
        "status": message.status,
        "attempts": message.attempts,
        "max_attempts": message.max_attempts,
        "subject": message.subject,
        "target": _shown_target(message),
        "created_at": _iso(message.created_at),
        "next_attempt_at": _iso(message.next_attempt_at) if message.status == "pending" else None,
        "delivered_at": _iso(message.delivered_at),
        "last_error": message.last_error,
        "attempt_log": [
            {
                "number": attempt.number,
                "started_at": _iso(attempt.started_at),
                "outcome": attempt.outcome,
                "duration_ms": attempt.duration_ms,
                "status_code": attempt.status_code,
                "response_excerpt": attempt.response_excerpt,
                "error": attempt.error,
                "worker_id": attempt.worker_id,
            }
            for attempt in log
        ],
    }


def _shortened(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())  # one line per row
    return text if len(text) <= limit else text[: limit - 1] + "…"


@outbox_app.command("list")
def outbox_list(
    failed: Annotated[bool, typer.Option("--failed", help="Only failed messages")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Newest N messages")] = 50,
    attempts: Annotated[bool, typer.Option("--attempts", help="Also list each attempt")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the newest outbox messages, newest first; --attempts adds each attempt.

    ATTEMPTS is "made/allowed": 3/12 is three attempts made of the twelve this message may have.
    JSON: a list of objects, each with its attempt_log (whether or not --attempts is given).
    E-mail addresses and phone numbers are masked; callback URLs are shown whole.
    """
    from mobip.delivery import service as delivery_service

    rows = _on_data(
        lambda _, session: delivery_service.list_messages(session, failed_only=failed, limit=limit),
        writes=False,
    )
    if as_json:
        _print_json([_message_record(message, log) for message, log in rows])
        return
    _print_table(
        ["ID", "KIND", "STATUS", "ATTEMPTS (made/allowed)", "WHEN", "SUBJECT", "TO", "LAST ERROR"],
        [
            [
                str(message.id),
                message.kind,
                message.status,
                f"{message.attempts}/{message.max_attempts}",
                _when(message),
                message.subject or "",
                _shown_target(message),
                _shortened(message.last_error, 100),
            ]
            for message, _ in rows
        ],
    )
    if not attempts:
        return
    typer.echo("")
    _print_table(
        ["MESSAGE", "ATTEMPT", "STARTED", "OUTCOME", "DURATION", "HTTP STATUS", "REPLY", "ERROR"],
        [
            [
                str(message.id),
                f"#{attempt.number}",
                _utc(attempt.started_at),
                _OUTCOMES.get(attempt.outcome, attempt.outcome),
                f"{attempt.duration_ms} ms",
                str(attempt.status_code) if attempt.status_code is not None else "",
                _shortened(attempt.response_excerpt, 60),
                _shortened(attempt.error, 80),
            ]
            for message, log in rows
            for attempt in log
        ],
        title="Attempts (HTTP STATUS and REPLY: what the receiver answered, when it did)",
    )


@outbox_app.command("retry")
def outbox_retry(message_id: int, as_json: JsonOption = False) -> None:
    """Make a failed or pending message due now.

    A failed message gets a fresh set of attempts of its kind (12 for a callback, 8 for an
    e-mail or SMS): 12/12 becomes 12/24, its next attempt the 13th. A pending message (waiting
    for its next attempt) is only made due now: its allowed attempts stay as they are. A
    delivered message, or one a worker is sending, is refused.
    """
    from mobip.delivery import service as delivery_service

    try:
        retried = _on_data(
            lambda runtime, session: delivery_service.retry_message(
                session, message_id, runtime.clock
            )
        )
    except delivery_service.OutboxRetryRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    message = retried.message
    if as_json:
        _print_json(
            {
                "id": message.id,
                "kind": message.kind,
                "previous_status": retried.previous_status,
                "status": message.status,
                "attempts": message.attempts,
                "max_attempts": message.max_attempts,
                "next_attempt_at": _iso(message.next_attempt_at),
            }
        )
        return
    if retried.previous_status == "failed":
        change = f"it had failed; {retried.added_attempts} more attempts allowed"
    else:
        change = "it was pending; the attempts allowed are unchanged"
    typer.echo(
        f"message {message.id} ({message.kind}) is due now: {change}; next is attempt "
        f"{message.attempts + 1} of {message.max_attempts}"
    )


invoices_app = typer.Typer(help="The platform's fee invoices: issue them early, write a PDF.")
app.add_typer(invoices_app, name="invoices")

# From this many merchants on, issuing shows a progress bar (in a terminal) and sums their fees
# in chunks of this size, so the bar moves.
_PROGRESS_FROM = 200


def _until(value: str | None) -> datetime | Literal["now"] | None:
    """--until: ISO-8601 with a zone, or "now" (read on the runtime's clock when the work runs);
    None: the service's default."""
    if value is None:
        return None
    if value.strip().lower() == "now":
        return "now"
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        typer.echo(f"error: --until {value!r} is not an ISO-8601 date and time", err=True)
        raise typer.Exit(2) from exc
    if moment.tzinfo is None:
        typer.echo("error: --until needs a time zone (e.g. 2026-12-01T00:00:00+01:00)", err=True)
        raise typer.Exit(2)
    return moment


@invoices_app.command("issue")
def invoices_issue(
    account: Annotated[
        str | None, typer.Option("--account", help="Only this merchant (uid): a merchant leaving")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="End of the period (excluded): ISO-8601 with a zone, or 'now' (5 minutes ago); "
            "default: the start of the current month in MOBIP_TIMEZONE",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue now each merchant's invoice from the end of its last one to --until."""
    from mobip.billing import service as billing_service

    end = _until(until)
    with _runtime(existing_database=True) as runtime:
        _require_current_schema(runtime)
        merchants = (
            1
            if account
            else _unit_of_work(
                runtime,
                lambda session: sum(
                    a.role == Role.MERCHANT for a in accounts_service.all_accounts(session)
                ),
                writes=False,
            )
        )
        shown = merchants >= _PROGRESS_FROM and _is_terminal() and not as_json

        def work(session: Session, advance: Callable[[int], None] | None) -> Any:
            return billing_service.close(
                session,
                runtime.settings,
                runtime.clock,
                until=billing_service.latest_closable(runtime.clock.now()) if end == "now" else end,
                account_uid=account,
                progress=advance,
                chunk=_PROGRESS_FROM if merchants >= _PROGRESS_FROM else None,
            )

        if shown:
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("Issuing invoices", total=merchants)

                def attempt(session: Session) -> Any:
                    bar.reset(task)
                    return work(session, lambda n: bar.advance(task, n))

                issued = _unit_of_work(runtime, attempt)
        else:
            issued = _unit_of_work(runtime, lambda session: work(session, None))
    if as_json:
        _print_json({"issued": issued.numbers, "accounts": issued.accounts})
        return
    typer.echo(
        f"{len(issued.numbers)} invoice(s) issued for {issued.accounts} merchant(s)"
        + (f": {issued.numbers[0]} .. {issued.numbers[-1]}" if issued.numbers else "")
    )


@invoices_app.command("pdf")
def invoices_pdf(
    invoice_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="The PDF file to write")],
) -> None:
    """Write an invoice's PDF (in its merchant's language) to a file."""
    from mobip.billing import pages as billing_pages
    from mobip.billing.errors import InvoiceNotFound

    with _runtime(existing_database=True) as runtime:
        _require_current_schema(runtime)
        try:
            number, document = billing_pages.render_pdf(runtime, invoice_id)
        except InvoiceNotFound as exc:
            typer.echo(f"error: no invoice {invoice_id!r}", err=True)
            raise typer.Exit(1) from exc
    output.write_bytes(document)
    typer.echo(f"{number}: {len(document)} bytes written to {output}")


stats_app = typer.Typer(help="get_stats' figures: rebuild them after a change of MOBIP_TIMEZONE.")
app.add_typer(stats_app, name="stats")


@stats_app.command("rebuild")
def stats_rebuild(as_json: JsonOption = False) -> None:
    """File every event again on its day in MOBIP_TIMEZONE and recount the daily figures (one
    transaction: creates and payments wait for it to finish)."""
    from zoneinfo import ZoneInfo

    from mobip.stats import service as stats_service

    def rebuild(runtime: Runtime, session: Session) -> tuple[ZoneInfo, stats_service.Rebuilt]:
        zone = runtime.settings.zone
        return zone, stats_service.rebuild(session, zone)

    zone, rebuilt = _on_data(rebuild)
    record = {
        "timezone": zone.key,
        "events": rebuilt.events,
        "moved": rebuilt.moved,
        "daily_rows": rebuilt.daily_rows,
    }
    if as_json:
        _print_json(record)
        return
    typer.echo(
        f"{rebuilt.events} event(s) on their day in {zone.key} ({rebuilt.moved} moved); "
        f"{rebuilt.daily_rows} daily row(s) recounted"
    )


def main() -> None:
    app()
