"""Fee invoice errors."""

from __future__ import annotations

from mobip.kit.errors import BadRequest, NotFound


class InvoiceNotFound(NotFound):
    return_code = "4040"
    default_message = "Invoice not found"


class InvalidInvoiceClose(BadRequest):
    """An early close the operator asked that cannot be done (``mobip invoices issue``)."""

    return_code = "1017"
    default_message = "Invalid end for the invoices to issue"
