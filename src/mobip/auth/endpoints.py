"""get_token and login, and the authentication every API route runs (api/routing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import Headers

from mobip.accounts.errors import RoleNotAllowed
from mobip.accounts.models import Account
from mobip.api.envelope import Params
from mobip.api.routing import ACCESS_TOKEN, Access, Authentication, Call, Endpoint, Field
from mobip.auth import service
from mobip.auth.errors import ConflictingCredentials
from mobip.kit.runtime import Runtime


def token_from(params: Params, headers: Headers) -> str | None:
    """The access token: the ``access_token`` field or an ``Authorization: Bearer`` header.

    Both may be sent if they agree; two different tokens (header and field, or the field in the
    query string and in the body) are refused: the request would otherwise run as one account
    while its sender may believe it runs as the other.
    """
    field = params.text(ACCESS_TOKEN.name, max_chars=ACCESS_TOKEN.max_length)
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    bearer = credentials.strip() or None if scheme.lower() == "bearer" else None
    if (field and bearer and field != bearer) or params.shadowed("access_token"):
        raise ConflictingCredentials()
    return field or bearer


def authenticate(session: Session, runtime: Runtime, params: Params, headers: Headers) -> Account:
    """The routing edge's authenticator: token → account."""
    return service.authenticate(
        session,
        runtime.settings,
        token_from(params, headers),
        runtime.clock.now(),
        tokens=runtime.state(service.TokenCache),
    )


def cached_authenticate(runtime: Runtime, params: Params, headers: Headers) -> Account | None:
    """The routing edge's no-database authenticator (see api/routing's fast reads)."""
    return service.cached_account(
        runtime.settings,
        token_from(params, headers),
        runtime.clock.now(),
        tokens=runtime.state(service.TokenCache),
    )


# What api/routing runs before every authenticated endpoint: token → account, the cached
# variant for the fast paths, and the error for a role a RESTRICTED endpoint does not admit.
AUTHENTICATION = Authentication(authenticate, cached_authenticate, RoleNotAllowed)


def get_token(call: Call) -> dict[str, Any]:
    """A connection token for an API account's id and secret (failures are counted, throttled)."""
    token = service.issue_token(
        call.session,
        call.runtime.settings,
        api_account_id=call.required_text("api_account_id"),
        api_secret_key=call.required_text("api_secret_key"),
        ttl_hours=call.integer("api_ttl"),
        client_ip=call.client_ip,
        now=call.runtime.clock.now(),
    )
    return {"access_token": token}


def login(call: Call) -> dict[str, Any]:
    """Check the token and refresh its inactivity timer."""
    # The edge authenticated already; login also refreshes the inactivity timer unconditionally.
    service.authenticate(
        call.session,
        call.runtime.settings,
        token_from(call.params, call.headers),
        call.runtime.clock.now(),
        touch=True,
        tokens=call.runtime.state(service.TokenCache),
    )
    return {}


ENDPOINTS = [
    Endpoint(
        "/mobip/get_token",
        "GET",
        "Get a connection token to reuse at each call",
        get_token,
        access=Access.ANONYMOUS,
        inputs=[
            Field("api_account_id", "string", "API account id", required=True, max_length=64),
            Field(
                "api_secret_key",
                "string",
                "API secret key of your account",
                required=True,
                max_length=200,
            ),
            Field(
                "api_ttl",
                "integer",
                "Token time to live in hours, 1..720 (default 1)",
                minimum=1,
                maximum=720,
                default=1,
            ),
        ],
        outputs=[
            Field(
                "access_token",
                "string",
                "Token to reuse in each call; it expires after its ttl or 1 h of inactivity",
            )
        ],
    ),
    Endpoint(
        "/mobip/login",
        "POST",
        "Check a token and refresh its inactivity timer",
        login,
        inputs=[ACCESS_TOKEN],
    ),
]
