"""Settings: one class, read from the environment (prefix ``MOBIP_``)."""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (required, not opportunistic)
    TLS = "tls"  # implicit TLS from the first byte (port 465)
    NONE = "none"  # no encryption: a relay on the same host or network only


class SmsProvider(StrEnum):
    OUTBOX = "outbox"  # files in DATA_DIR/outbox/, shown on /dev/outbox
    TWILIO = "twilio"
    HTTP = "http"  # a generic HTTP gateway


DEFAULT_SMS_GATEWAY_BODY = '{"to": "{to}", "from": "{sender}", "text": "{text}"}'


class ConfigurationError(Exception):
    """The settings cannot run a server (raised at start-up, before anything listens)."""


@dataclass(frozen=True)
class TwilioAccount:
    """What Twilio needs, each present (``Settings.twilio_account``)."""

    sid: str
    auth_token: str
    sender: str  # a phone number, an alphanumeric sender id, or a Messaging Service SID (MG…)


@dataclass(frozen=True)
class SmsGatewayTarget:
    """Where the generic HTTP gateway is and how to authenticate (``Settings.sms_gateway``)."""

    url: str
    headers: dict[str, str]  # the auth header, if any


class Settings(BaseSettings):
    """Every setting of MOBIP server; each is documented in README.md."""

    # validate_by_name: a field with an alias (an old environment name) is still set by its name.
    model_config = SettingsConfigDict(env_prefix="MOBIP_", extra="ignore", validate_by_name=True)

    env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("./var")
    database_url: str | None = None
    base_url: str | None = None
    secret_key: str | None = None

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_field_chars: int = Field(default=65536, ge=16)
    # Bounded request-read time: a body must have arrived in full within this many seconds
    # (408 after, api/envelope.read_body), and an idle keep-alive connection is closed after
    # keep_alive_seconds (uvicorn's timeout_keep_alive). Headers: see docs/operations.md.
    body_read_timeout_seconds: float = Field(default=30, gt=0)
    keep_alive_seconds: int = Field(default=5, ge=1)

    token_inactivity_seconds: int = Field(default=3600, ge=60)
    token_touch_interval_seconds: int = Field(default=60, ge=1)

    login_window_seconds: int = Field(default=900, ge=1)
    # Failed get_token attempts counted per (client address, api_account_id): never per account
    # alone, or anyone knowing an account id could lock its owner out. The old name still works.
    login_max_failures_per_pair: int = Field(
        default=10,
        ge=1,
        validation_alias=AliasChoices(
            "MOBIP_LOGIN_MAX_FAILURES_PER_PAIR", "MOBIP_LOGIN_MAX_FAILURES_PER_ACCOUNT"
        ),
    )
    login_max_failures_per_client: int = Field(default=50, ge=1)

    max_total_amount: int = Field(default=100_000_000, ge=1)
    max_manual_resends: int = Field(default=5, ge=0)
    # Under load, how long a group commit of creates waits for more (api/batch); 0: never.
    group_commit_delay_ms: float = Field(default=4, ge=0, le=100)

    # Hosted checkout: payment attempts allowed per transaction and per client in a window.
    checkout_attempt_window_seconds: int = Field(default=900, ge=1)
    checkout_max_attempts_per_transaction: int = Field(default=10, ge=1)
    checkout_max_attempts_per_client: int = Field(default=30, ge=1)
    # Stripe's API base URL; only tests change it (a local server that answers like Stripe).
    stripe_api_base: str | None = None

    worker_enabled: bool = True
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_batch_size: int = Field(default=50, ge=1)
    worker_lease_seconds: int = Field(default=60, ge=1)
    # After SIGTERM, how long the batch in hand may take before unfinished messages are released.
    worker_shutdown_grace_seconds: float = Field(default=20, gt=0)

    # Outbound HTTP to merchant URLs (callbacks): CIDR ranges admitted besides public addresses,
    # e.g. "10.20.0.0/16, fd00:1::/64". Loopback: admitted by default in development only.
    outbound_allow: str = ""
    outbound_allow_loopback: bool | None = None

    # E-mail over SMTP; without a host, development writes e-mails to DATA_DIR/outbox/.
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_ca_file: Path | None = None
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    # The SMTP server supports SMTPUTF8 (RFC 6531): only then are addresses with non-ASCII
    # characters before the @ accepted (creation cannot ask the server; the operator says so).
    smtp_smtputf8: bool = False

    # SMS; without a provider, development writes SMS to DATA_DIR/outbox/.
    sms_provider: SmsProvider | None = None
    sms_sender: str | None = None
    sms_timeout_seconds: float = Field(default=15, gt=0)
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    sms_gateway_url: str | None = None
    sms_gateway_method: str = Field(default="POST", pattern="^(GET|POST|PUT)$")
    sms_gateway_auth_header: SecretStr | None = None
    sms_gateway_body: str = DEFAULT_SMS_GATEWAY_BODY
    sms_gateway_content_type: str = "application/json"

    # Automatic resends, expiry and token purge, run by the worker.
    schedule_interval_seconds: float = Field(default=60, gt=0)
    schedule_batch_size: int = Field(default=500, ge=1)

    # Fee invoices (billing/): the calendar months are those of this IANA time zone; the seller
    # printed on every invoice; VAT on the fees, a percent with at most 2 decimals ("20", "5.5"),
    # parsed exactly (Decimal from the text, never a float).
    timezone: str = "UTC"
    platform_name: str = "MOBIP"
    platform_address: str = ""
    platform_vat_id: str = ""
    fee_vat_rate: Decimal = Field(default=Decimal(20), ge=0, le=100, decimal_places=2)

    # The platform's fee schedule (an account without its own inherits its nearest ancestor's,
    # then this): a percent with at most 2 decimals ("1.4" = 140 basis points, parsed exactly
    # from the text) plus a fixed amount in minor units per PAID transaction. Both 0: no fee.
    default_fee_percent: Decimal = Field(default=Decimal(0), ge=0, le=100, decimal_places=2)
    default_fee_fixed: int = Field(default=0, ge=0)

    log_level: str = "INFO"

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"not an IANA time zone: {value!r} (e.g. UTC, Europe/Paris)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """MOBIP_TIMEZONE: the fee invoices' calendar months are this zone's."""
        return ZoneInfo(self.timezone)

    @property
    def fee_vat_basis_points(self) -> int:
        """MOBIP_FEE_VAT_RATE in hundredths of a percent (20 → 2000), exact."""
        return int(self.fee_vat_rate * 100)

    @property
    def default_fee_basis_points(self) -> int:
        """MOBIP_DEFAULT_FEE_PERCENT in basis points (1.4 → 140), exact."""
        return int(self.default_fee_percent * 100)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mobip.sqlite3').resolve()}"

    @cached_property
    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The key for encryption and signing; in development generated once into the data dir."""
        if self.secret_key:
            return self.secret_key
        if self.is_production:
            raise ConfigurationError("MOBIP_SECRET_KEY is required in production")
        path = self.data_dir / "secret_key"
        if path.exists():
            with contextlib.suppress(PermissionError):  # another owner's file: theirs to decide
                path.chmod(0o600)  # an older version's file may be wider
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key + "\n")
        return key

    @property
    def resolved_smtp_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return 465 if self.smtp_security is SmtpSecurity.TLS else 587

    @property
    def resolved_smtp_from(self) -> str:
        return self.smtp_from or "MOBIP <mobip@localhost>"

    @property
    def resolved_sms_provider(self) -> SmsProvider | None:
        """The SMS provider: the local outbox by default in development, none in production."""
        if self.sms_provider is not None:
            return self.sms_provider
        return None if self.is_production else SmsProvider.OUTBOX

    @property
    def resolved_outbound_allow_loopback(self) -> bool:
        if self.outbound_allow_loopback is not None:
            return self.outbound_allow_loopback
        return not self.is_production

    def check(self) -> None:
        """Refuse settings a production server must not run with."""
        self._check_delivery()
        self._check_outbound()
        if not self.is_production:
            return
        if not self.secret_key:
            raise ConfigurationError(
                "MOBIP_SECRET_KEY is required in production (a long random string)"
            )
        if not self.resolved_base_url.startswith("https://"):
            raise ConfigurationError(
                "MOBIP_BASE_URL must be an https:// URL in production "
                f"(got {self.resolved_base_url!r})"
            )

    def twilio_account(self) -> TwilioAccount:
        """Twilio's credentials and sender; ConfigurationError naming each one missing."""
        sid, token, sender = self.twilio_account_sid, self.twilio_auth_token, self.sms_sender
        if sid and token and sender:
            return TwilioAccount(sid, token.get_secret_value(), sender)
        self._refuse_sms(twilio_account_sid=sid, twilio_auth_token=token, sms_sender=sender)

    def sms_gateway(self) -> SmsGatewayTarget:
        """The generic HTTP gateway's URL and auth header; ConfigurationError when unusable."""
        url = self.sms_gateway_url
        if not url:
            self._refuse_sms(sms_gateway_url=url)
        auth = self.sms_gateway_auth_header
        header = auth.get_secret_value() if auth is not None else ""
        headers: dict[str, str] = {}
        if header:
            name, colon, value = header.partition(":")
            if not colon or not name.strip():
                # The value is a secret: the message shows only the expected form.
                raise ConfigurationError("MOBIP_SMS_GATEWAY_AUTH_HEADER must be 'Name: value'")
            headers[name.strip()] = value.strip()
        return SmsGatewayTarget(url, headers)

    def _refuse_sms(self, **values: object) -> NoReturn:
        missing = ", ".join(f"MOBIP_{name.upper()}" for name, value in values.items() if not value)
        raise ConfigurationError(f"MOBIP_SMS_PROVIDER={self.sms_provider} needs {missing}")

    def _check_delivery(self) -> None:
        # The same methods build the SMS gateway: what start-up accepts, the worker can use.
        if self.sms_provider is SmsProvider.TWILIO:
            self.twilio_account()
        if self.sms_provider is SmsProvider.HTTP:
            self.sms_gateway()
        if self.is_production and self.smtp_host and not self.smtp_from:
            raise ConfigurationError(
                "MOBIP_SMTP_FROM is required in production when MOBIP_SMTP_HOST is set "
                "(e.g. 'Shop payments <payments@example.com>')"
            )

    def _check_outbound(self) -> None:
        try:
            parse_allow_list(self.outbound_allow)
        except ValueError as exc:
            raise ConfigurationError(f"MOBIP_OUTBOUND_ALLOW: {exc}") from exc


def parse_allow_list(text: str) -> tuple[IPNetwork, ...]:
    """``"10.1.0.0/16, fd00::/8"`` → networks; ValueError naming the bad entry."""
    networks = []
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR range: {item!r}") from exc
    return tuple(networks)
