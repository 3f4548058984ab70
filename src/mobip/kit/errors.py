"""One error hierarchy: every expected failure is a ``MobipError`` rendered in the envelope.

Codes are stable strings grouped by class (see docs/api.md):
1xxx bad input (400/415), 2xxx authentication (401), 3xxx permission (403),
4xxx not found (404/405), 5xxx state conflict (409/422), 6xxx too large or slow (413/408),
7xxx throttled (429), 9xxx internal (500/503).
Domain errors subclass these next to their domain.
"""

from __future__ import annotations

from typing import ClassVar


class MobipError(Exception):
    """An error with a stable ``return_code``, a message and an HTTP status."""

    return_code: ClassVar[str] = "9001"
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal error"
    # True where the work done before the error must still be committed (e.g. a failed login
    # attempt that counts towards throttling).
    keep_changes: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(MobipError):
    http_status = 400


class Unauthorized(MobipError):
    http_status = 401


class Forbidden(MobipError):
    http_status = 403


class NotFound(MobipError):
    http_status = 404


class Conflict(MobipError):
    http_status = 409


class Throttled(MobipError):
    http_status = 429

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        self.retry_after_seconds = max(1, retry_after_seconds)
        super().__init__(message, headers={"Retry-After": str(self.retry_after_seconds)})


# --- input -----------------------------------------------------------------------------------


class MissingField(BadRequest):
    return_code = "1001"
    default_message = "A required field is missing"

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"Missing required field '{field}'")


class InvalidField(BadRequest):
    return_code = "1002"
    default_message = "A field has an invalid value"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        super().__init__(f"Invalid value for field '{field}': {reason}")


class FieldTooLong(BadRequest):
    return_code = "1003"
    default_message = "A field is too long"

    def __init__(self, field: str, max_chars: int) -> None:
        self.field = field
        super().__init__(f"Field '{field}' is longer than {max_chars} characters")


class MalformedBody(BadRequest):
    return_code = "1004"
    default_message = "The request body could not be parsed"


class UnsupportedMediaType(MobipError):
    return_code = "1005"
    http_status = 415
    default_message = (
        "Unsupported Content-Type: send multipart/form-data, "
        "application/x-www-form-urlencoded or a query string"
    )


class DuplicateField(BadRequest):
    return_code = "1006"
    default_message = "A field was given more than once"

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"Field '{field}' was given more than once")


class UnknownField(BadRequest):
    """Fields the endpoint does not declare (Stripe's ``parameter_unknown``): a misspelt or
    unsupported field is refused rather than silently ignored."""

    return_code = "1007"
    default_message = "The request has a field this endpoint does not take"

    def __init__(self, fields: list[str], message: str) -> None:
        self.fields = fields
        super().__init__(message)


# --- routing, size, internal -------------------------------------------------------------------


class EndpointNotFound(NotFound):
    return_code = "4001"
    default_message = "No such endpoint"


class MethodNotAllowed(MobipError):
    return_code = "4005"
    http_status = 405
    default_message = "Method not allowed for this endpoint"


class BodyTooLarge(MobipError):
    return_code = "6001"
    http_status = 413
    default_message = "Request body too large"


class RequestTimeout(MobipError):
    """The body did not arrive in time (MOBIP_BODY_READ_TIMEOUT_SECONDS): the connection closes."""

    return_code = "6002"
    http_status = 408
    default_message = "Request body not received in time"


class InternalError(MobipError):
    return_code = "9001"
    http_status = 500
    default_message = "Internal error"


def all_error_classes() -> list[type[MobipError]]:
    """Every concrete error class (those that define their own return_code)."""
    seen: list[type[MobipError]] = []
    stack: list[type[MobipError]] = [MobipError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if "return_code" in cls.__dict__ and cls is not MobipError:
            seen.append(cls)
    return seen


class IdempotencyKeyReused(MobipError):
    return_code = "5030"
    http_status = 422
    default_message = (
        "This Idempotency-Key was already used with different parameters in the last 24 hours"
    )


class IdempotencyKeyInProgress(MobipError):
    return_code = "5054"
    http_status = 409
    default_message = (
        "A request with this Idempotency-Key is still being processed: send it again later"
    )
