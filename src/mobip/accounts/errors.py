"""Account errors."""

from __future__ import annotations

from mobip.kit.errors import BadRequest, Conflict, Forbidden, InvalidField, NotFound


class RoleNotAllowed(Forbidden):
    """The caller's role (admin, partner, merchant) may not do this."""

    return_code = "3001"
    default_message = "This account's role is not allowed to call this endpoint"


class AccountNotFound(NotFound):
    return_code = "4002"
    default_message = "Account not found"


class DocumentNotFound(NotFound):
    return_code = "4003"
    default_message = "Document not found"

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__("Unknown document(s) in document_list: " + ", ".join(names))


class DuplicateExternalAccountId(Conflict):
    return_code = "5001"
    default_message = "Another account under the same parent already has this External_AccountID"


class AmbiguousExternalAccountId(Conflict):
    return_code = "5002"
    default_message = (
        "Several accounts you can see have this external_account_id: use get_account with a uid"
    )


class InvalidAccountSetting(BadRequest):
    """A CLI/operator input that cannot be applied (bad parent, role, currency...)."""

    return_code = "1010"
    default_message = "Invalid account setting"


class InvalidLogo(InvalidField):
    """A merchant logo that cannot be stored: its type, size, dimensions or (SVG) content."""

    return_code = "1011"
    default_message = "Invalid logo"

    def __init__(self, reason: str) -> None:
        super().__init__("logo", reason)


class InvalidAccentColour(InvalidField):
    """An accent colour that is not #rgb/#rrggbb or on which white text is hard to read."""

    return_code = "1012"
    default_message = "Invalid accent colour"

    def __init__(self, reason: str) -> None:
        super().__init__("accent_colour", reason)
