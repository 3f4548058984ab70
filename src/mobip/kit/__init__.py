"""Shared infrastructure: database, request envelope, errors, ids, crypto, clock."""
