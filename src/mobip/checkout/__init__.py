"""The hosted payment page and the payment providers (sandbox built in, Stripe)."""
