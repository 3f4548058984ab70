"""`mobip serve` behind a reverse proxy on the same host: the forwarded client address is the one
get_token's throttling counts (docs/operations.md), and a client cannot pick its own."""

from __future__ import annotations

import httpx

from e2e.serving import Served
from e2e.test_serve import served  # noqa: F401 (the fixture: a real `mobip serve`)


def test_throttling_counts_the_address_the_local_proxy_forwards(
    served: Served,  # noqa: F811
) -> None:
    account_id, secret = served.credentials
    url = f"{served.base}/api/2.0/mobip/get_token"

    def get_token(forwarded_for: str, api_secret_key: str) -> int:
        # What nginx or Caddy on this host sends: the client's address in X-Forwarded-For.
        reply = httpx.request(
            "GET",
            url,
            files={
                "api_account_id": (None, account_id),
                "api_secret_key": (None, api_secret_key),
            },
            headers={"X-Forwarded-For": forwarded_for},
        )
        return reply.status_code

    for _ in range(10):
        assert get_token("198.51.100.1", "mbs_wrong") == 401
    assert get_token("198.51.100.1", secret) == 429
    assert get_token("198.51.100.2", secret) == 200
