"""Which payment provider a merchant pays through, and whether it can take payments here.

The only place that names the concrete providers: the rest of checkout asks the interface
(``providers/base.py``) what it needs to know of them.
"""

from __future__ import annotations

import logging

from mobip.accounts.models import Account, Provider
from mobip.checkout.errors import ProviderMisconfigured, ProviderNotAvailable
from mobip.checkout.providers.base import PaymentProvider
from mobip.checkout.providers.sandbox import SandboxProvider
from mobip.checkout.providers.stripe import StripeProvider
from mobip.kit.runtime import Runtime
from mobip.kit.security import DecryptionError

log = logging.getLogger(__name__)

PROVIDERS: dict[str, type[PaymentProvider]] = {
    Provider.SANDBOX.value: SandboxProvider,
    Provider.STRIPE.value: StripeProvider,
}


def provider_class(merchant: Account, runtime: Runtime) -> type[PaymentProvider]:
    """The merchant's payment provider; refused when it cannot take payments here.
    (Nothing is decrypted or built: a page view needs no more.)"""
    found = PROVIDERS.get(merchant.provider)
    if found is None:
        raise ProviderNotAvailable(f"Unknown payment provider {merchant.provider!r}")
    if found.test_cards and runtime.settings.is_production and not merchant.is_test:
        raise ProviderNotAvailable(
            f"The {found.label} takes payments in production only for test accounts"
        )
    if found.needs_secret_key and not merchant.provider_private_key_encrypted:
        raise ProviderNotAvailable(f"The merchant's {found.label} secret key is not set")
    return found


def provider_for(merchant: Account, runtime: Runtime) -> PaymentProvider:
    """The merchant's payment provider, ready to call; refused as ``provider_class`` refuses,
    and ``ProviderMisconfigured`` when its stored key cannot be decrypted."""
    found = provider_class(merchant, runtime)
    secret_key = None
    if found.needs_secret_key:
        assert merchant.provider_private_key_encrypted is not None
        secret_key = decrypt_secret(
            merchant,
            merchant.provider_private_key_encrypted,
            f"{found.label} secret key",
            runtime,
        )
    return found.for_merchant(secret_key, runtime.settings)


def decrypt_secret(merchant: Account, ciphertext: str, what: str, runtime: Runtime) -> str:
    """A provider secret stored encrypted for ``merchant``; ``ProviderMisconfigured`` (logged
    for the operator, without the secret or its ciphertext) when it cannot be decrypted."""
    try:
        return runtime.encryptor.decrypt(ciphertext)
    except DecryptionError:
        # Typically MOBIP_SECRET_KEY changed without the old key kept: the operator must act.
        log.error(
            "payment provider settings unusable",
            extra={
                "fields": {
                    "account_uid": merchant.uid,
                    "provider": merchant.provider,
                    "reason": f"the stored {what} cannot be decrypted with MOBIP_SECRET_KEY",
                }
            },
        )
        raise ProviderMisconfigured() from None
