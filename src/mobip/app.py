"""The ASGI application: API endpoints, health checks, OpenAPI and its interactive docs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from anyio import CapacityLimiter
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from mobip.accounts import endpoints as accounts_endpoints
from mobip.api import docs as api_docs
from mobip.api.accesslog import AccessLogMiddleware
from mobip.api.batch import GroupCommit
from mobip.api.headers import ResponseHeaders
from mobip.api.openapi import build_openapi
from mobip.api.routing import API_PREFIX, Endpoint, build_route, error_response
from mobip.auth import endpoints as auth_endpoints
from mobip.billing import endpoints as billing_endpoints
from mobip.billing import pages as billing_pages
from mobip.checkout import endpoints as checkout_endpoints
from mobip.delivery import devoutbox
from mobip.feed import endpoints as feed_endpoints
from mobip.kit.db import POOL_SIZE
from mobip.kit.errors import EndpointNotFound, MethodNotAllowed
from mobip.kit.migrate import is_current
from mobip.kit.runtime import Runtime
from mobip.products import endpoints as products_endpoints
from mobip.products import pages as products_pages
from mobip.receivables import endpoints as receivables_endpoints
from mobip.receivables import pages as receivables_pages
from mobip.stats import endpoints as stats_endpoints
from mobip.stats import pages as stats_pages
from mobip.transactions import endpoints as transactions_endpoints
from mobip.wiring import wire

ENDPOINTS: list[Endpoint] = [
    *auth_endpoints.ENDPOINTS,
    *transactions_endpoints.ENDPOINTS,
    *accounts_endpoints.ENDPOINTS,
    *products_endpoints.ENDPOINTS,
    *checkout_endpoints.ENDPOINTS,
    *billing_endpoints.ENDPOINTS,
    *stats_endpoints.ENDPOINTS,
    *feed_endpoints.ENDPOINTS,
    *receivables_endpoints.ENDPOINTS,
]

_EVERY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods some route serves at ``scope``'s path, for a 405's ``Allow`` header.

    Starlette's own 405 names the methods of the first route whose path matched, so a path
    served by two routes (a checkout page: GET and POST) would list half of them; and an API
    endpoint's route takes every method to answer a wrong one itself (api/routing), so its
    method is looked up in ENDPOINTS.
    """
    found: set[str] = set()
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            if isinstance(route.app, StaticFiles):
                found |= {"GET", "HEAD"}
            else:
                found.update(allowed_methods(route.routes, {**scope, **child_scope}))
        elif isinstance(route, Route):
            if route.path in _API_METHODS:
                found.update(_API_METHODS[route.path])
            else:
                found.update(route.methods or _EVERY_METHOD)
    return sorted(found)


_API_METHODS = {endpoint.full_path: endpoint.methods for endpoint in ENDPOINTS}


def create_app(
    runtime: Runtime, *, background: Callable[[Runtime], Any] | None = None
) -> Starlette:
    """The whole service for one process; ``background`` runs beside it (the in-process worker)."""
    openapi_body = json.dumps(build_openapi(ENDPOINTS)).encode()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            with runtime.database.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            current = is_current(runtime.database.engine)
        except Exception as exc:  # any database failure means not ready
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        if not current:
            return JSONResponse({"status": "unavailable", "error": "schema not current"}, 503)
        return JSONResponse({"status": "ok"})

    async def openapi(_: Request) -> Response:
        return Response(openapi_body, media_type="application/json")

    async def docs(_: Request) -> Response:
        csp = {"Content-Security-Policy": api_docs.CONTENT_SECURITY_POLICY}
        return HTMLResponse(api_docs.PAGE, headers=csp)

    async def docs_init(_: Request) -> Response:
        return Response(api_docs.INIT, media_type="text/javascript")

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(API_PREFIX):
            return error_response(EndpointNotFound(), request)
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return JSONResponse({"detail": "Not Found"}, status)

    async def method_not_allowed(request: Request, _: Exception) -> Response:
        # Routing moved root_path into a mount's; the match starts again from the app's root.
        scope = request.scope
        root = {"root_path": scope.get("app_root_path", scope.get("root_path", ""))}
        allow = ", ".join(allowed_methods(routes, {**scope, **root}))
        return error_response(MethodNotAllowed(headers={"Allow": allow}), request)

    limiter = CapacityLimiter(POOL_SIZE)
    group_commit = GroupCommit(
        runtime.database, delay=runtime.settings.group_commit_delay_ms / 1000
    )
    api_routes = [
        build_route(endpoint, runtime, auth_endpoints.AUTHENTICATION, limiter, group_commit)
        for endpoint in ENDPOINTS
    ]
    routes: list[BaseRoute] = [*api_routes]
    routes += [
        # Before checkout's: /qr/{qr_id} of a reusable QR code is matched first.
        *products_pages.build_routes(runtime),
        *checkout_endpoints.build_routes(runtime),
        *billing_pages.build_routes(runtime),
        *receivables_pages.build_routes(runtime),
        *stats_pages.build_routes(runtime),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route(f"{API_PREFIX}/openapi.json", openapi),
        Route("/docs", docs),
        Route("/docs/init.js", docs_init),
        Mount(
            api_docs.STATIC_PREFIX,
            StaticFiles(directory=api_docs.SWAGGER_UI_DIR),
            name="docs-static",
        ),
    ]
    if not runtime.settings.is_production:
        routes += devoutbox.routes(runtime)  # e-mails and SMS written locally; 404 in production

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The worker runs what the domains register (message composers, scheduled jobs).
        task = background(wire(runtime)) if background else None
        try:
            yield
        finally:
            if task is not None:
                await task.stop()
            group_commit.close()
            runtime.database.dispose()

    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: method_not_allowed},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.group_commit = group_commit
    app.add_middleware(
        AccessLogMiddleware,
        headers=ResponseHeaders(
            no_store_prefixes=(f"{API_PREFIX}/",), hsts=runtime.settings.is_production
        ),
        exact={route.path: route.endpoint for route in api_routes},
    )
    return app
