"""What the hosted pages of other domains (a product page, the customer portal) share with the
checkout's: the language a browser asks for, the TEST MODE mark, and the limit on the payments
one client may start within the checkout's attempt window."""

from __future__ import annotations

import threading
import time
from collections import deque

from starlette.requests import Request

from mobip.checkout.errors import TooManyPaymentAttempts
from mobip.checkout.providers.registry import PROVIDERS
from mobip.kit.i18n import LANGUAGES
from mobip.kit.runtime import Runtime


def accepted_language(header: str) -> str:
    """EN or FR, whichever the Accept-Language header prefers (EN when it names neither)."""
    best, best_q = "EN", -1.0
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].upper()
        # Ties go to the first named (q is compared strictly; position only orders equals).
        if primary in LANGUAGES and q > best_q and q > 0:
            best, best_q = primary, q - position * 1e-9
    return best


def moves_no_money(provider_name: str) -> bool:
    """Whether a payment through ``provider_name`` is a test (a provider with test cards)."""
    provider = PROVIDERS.get(provider_name)
    return provider is not None and bool(provider.test_cards)


class StartLimiter:
    """Payments started per client within the checkout's attempt window (per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: dict[str, deque[float]] = {}

    def check(self, key: str, limit: int, window: float, now: float) -> None:
        with self.lock:
            times = self.starts.setdefault(key, deque())
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                raise TooManyPaymentAttempts(int(times[0] + window - now) + 1)
            times.append(now)
            if len(self.starts) > 10_000:  # forget idle clients
                for idle in [k for k, v in self.starts.items() if not v or v[-1] <= now - window]:
                    del self.starts[idle]


def limit_starts(runtime: Runtime, request: Request) -> None:
    """Count a payment started by ``request``'s client; ``TooManyPaymentAttempts`` past the
    checkout's per-client limit (one count for every hosted page of this process)."""
    settings = runtime.settings
    runtime.state(StartLimiter).check(
        request.client.host if request.client else "unknown",
        settings.checkout_max_attempts_per_client,
        settings.checkout_attempt_window_seconds,
        time.monotonic(),
    )
