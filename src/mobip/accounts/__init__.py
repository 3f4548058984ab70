"""Accounts: the admin → partner → merchant tree, payment-provider keys, documents."""
