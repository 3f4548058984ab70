"""External invoice errors (codes 1050-1059, 4050-4054, 5070-5074)."""

from __future__ import annotations

from mobip.kit.errors import BadRequest, Conflict, NotFound


class MalformedInvoicesLists(BadRequest):
    """InvoicesLists that even the lenient reader cannot read; the message names line and
    column."""

    return_code = "1050"
    default_message = "InvoicesLists is not readable JSON"


class InvalidInvoiceData(BadRequest):
    """A customer's or an invoice's value that cannot be imported; the message names the
    customer, the invoice and the field."""

    return_code = "1051"
    default_message = "Invalid value in InvoicesLists"


class TooManyInvoices(BadRequest):
    return_code = "1052"
    default_message = "Too many invoices in one call"


class InvalidStatusMapping(BadRequest):
    """set_external_invoice_status: an external code given for two MOBIP statuses."""

    return_code = "1053"
    default_message = "Invalid status mapping"


class ExternalSourceNotFound(NotFound):
    return_code = "4050"
    default_message = "External source not found (or not yours)"


class ExternalCustomerNotFound(NotFound):
    return_code = "4051"
    default_message = "Customer not found in this external source (or not yours)"


class NothingToPay(Conflict):
    """request_invoices_payment: none of the invoices asked for has anything left to pay."""

    return_code = "5070"
    default_message = "No open invoice to request payment for"
