"""Transaction errors."""

from __future__ import annotations

from mobip.kit.errors import Conflict, NotFound


class TransactionNotFound(NotFound):
    return_code = "4010"
    default_message = "Transaction not found"


class TransactionAlreadyPaid(Conflict):
    return_code = "5011"
    default_message = "The transaction is already paid"


class TransactionAlreadyCancelled(Conflict):
    return_code = "5012"
    default_message = "The transaction is already cancelled"


class TransactionAlreadyDenied(Conflict):
    return_code = "5013"
    default_message = "The transaction was denied"


class TransactionInError(Conflict):
    return_code = "5014"
    default_message = "The transaction ended in error"


class ResendLimitReached(Conflict):
    return_code = "5020"
    default_message = "This transaction was resent the maximum number of times"


class TransactionNotRefundable(Conflict):
    return_code = "5050"
    default_message = "Only a PAID transaction can be refunded"


class RefundExceedsRemaining(Conflict):
    return_code = "5051"
    default_message = "The refund is more than what is left to refund of this transaction"


class TransactionFullyRefunded(Conflict):
    return_code = "5052"
    default_message = "The transaction is already fully refunded"
