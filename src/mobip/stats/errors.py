"""get_stats errors (codes 1030-1034, 4030-4034)."""

from __future__ import annotations

from mobip.kit.errors import BadRequest, MobipError, NotFound


class InvalidMonthPeriod(BadRequest):
    return_code = "1030"
    default_message = "Invalid value for field 'month_period': the format is YYYY-MM"


class InvalidDay(BadRequest):
    return_code = "1031"
    default_message = "Invalid value for field 'day': the format is YYYY-MM-DD"


class DayOutsideMonth(BadRequest):
    return_code = "1032"
    default_message = "Invalid value for field 'day': it must lie in month_period"


class DayNeededForFile(BadRequest):
    return_code = "1033"
    default_message = "Missing field 'day': get_gz_file writes the file of one day"


class StatsFileNotFound(NotFound):
    return_code = "4030"
    default_message = "Stats file not found"


class StatsFileExpired(MobipError):
    """A stats file's link past its 24 hours (the worker deletes the file)."""

    return_code = "4031"
    http_status = 410
    default_message = "This stats file has expired: ask get_stats for a new one"
