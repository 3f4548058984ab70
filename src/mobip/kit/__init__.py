"""Infrastructure that knows no HTTP and no domain, used by every package above it.

- ``db``: engine, sessions, units of work (``Database.run``, ``retry_busy``), driver-level inserts
- ``migrate``: Alembic upgrade and the schema-is-current check
- ``runtime``: ``Runtime``, the per-process state (settings, database, clock) passed everywhere
- ``clock``: the system clock and the tests' ``ManualClock``
- ``security``: ids, secrets, hashes, constant-time comparison, encryption at rest
- ``errors``: the one error hierarchy (``MobipError``) and its generic codes
- ``characters``: which characters a text input may hold
- ``validation``: URLs, e-mail addresses, phone numbers from outside
- ``i18n``: languages and money formatting
- ``logging``: JSON log lines, the access log middleware, secret redaction
"""
