"""The routes of the hosted checkout, mounted by the app: the pages under /pay (with their
security headers and our stylesheet), the QR images under /qr and the providers' webhooks.

The handlers are module-level functions (``pages.py``, ``qr_images.py``, ``webhooks.py``) that
reach the runtime through the app (``request.app.state.runtime``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mobip.checkout import logo, pages, qr_images, webhooks
from mobip.checkout.rendering import SecurityHeaders, is_https
from mobip.kit.runtime import Runtime

STATIC_DIR = Path(__file__).parent / "static"


def build_routes(runtime: Runtime) -> list[BaseRoute]:
    """/qr/{token}, /pay/{token} (+ /return, /start), /pay/static/*, /webhooks/{provider}/{uid}."""
    pay_routes: list[BaseRoute] = [
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="checkout-static"),
        Route("/{token}", pages.page, methods=["GET", "HEAD"]),
        Route("/{token}", pages.pay, methods=["POST"]),
        Route("/{token}/start", pages.start, methods=["POST"]),
        Route("/{token}/return", pages.provider_return, methods=["GET"]),
        Route("/{token}/logo", logo.logo, methods=["GET", "HEAD"]),
    ]
    headers = Middleware(SecurityHeaders, https=is_https(runtime.settings))
    return [
        Route("/qr/{token}", qr_images.qr_image, methods=["GET", "HEAD"]),
        Mount("/pay", routes=pay_routes, middleware=[headers]),
        Route("/webhooks/{provider}/{account_uid}", webhooks.receive, methods=["POST"]),
    ]
