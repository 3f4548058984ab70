"""Infrastructure that knows no HTTP and no domain, used by every package above it.

- ``db``: engine, sessions, units of work (``Database.run``, ``retry_busy``), driver-level inserts
- ``migrate``: Alembic upgrade and the schema-is-current check
- ``runtime``: ``Runtime``, what a process runs with (settings, database, clock, encryptor) and its
  per-runtime state (``Runtime.state``: caches and registries, never module globals)
- ``schedule``: ``Schedule``, the scheduled jobs domains register, run by the worker's runner
- ``clock``: the system clock and the tests' ``ManualClock``
- ``security``: ids, secrets, hashes, constant-time comparison, encryption at rest
- ``errors``: the one error hierarchy (``MobipError``) and its generic codes
- ``characters``: which characters a text input may hold
- ``validation``: URLs, e-mail addresses, phone numbers from outside
- ``i18n``: languages and money formatting
- ``logging``: JSON log lines and secret redaction (the access log line is ``api.accesslog``)
"""
