"""Partner feed errors."""

from __future__ import annotations

from mobip.kit.errors import BadRequest


class TooManyTrids(BadRequest):
    """set_mobip_transactions' trid_list holds more trids than one call may acknowledge."""

    return_code = "1040"
    default_message = "trid_list holds too many trids"
