"""Authentication errors."""

from __future__ import annotations

from mobip.kit.errors import BadRequest, Throttled, Unauthorized


class ConflictingCredentials(BadRequest):
    """Two access tokens that differ (field and Bearer header, or query string and body)."""

    return_code = "1008"
    default_message = (
        "Two different credentials: the access_token field and the 'Authorization: Bearer' "
        "header, or access_token in the query string and in the body, name different tokens "
        "(send one, or the same in both)"
    )


class MissingToken(Unauthorized):
    return_code = "2001"
    default_message = "Missing access_token (pass it as a field or as 'Authorization: Bearer …')"


class InvalidToken(Unauthorized):
    return_code = "2002"
    default_message = "Invalid or expired access_token: call get_token again"


class InvalidCredentials(Unauthorized):
    return_code = "2003"
    default_message = "Unknown api_account_id or wrong api_secret_key"
    keep_changes = True  # the failed attempt is recorded for throttling


class TooManyFailedLogins(Throttled):
    return_code = "7001"
    default_message = "Too many failed get_token attempts: retry later (see Retry-After)"
