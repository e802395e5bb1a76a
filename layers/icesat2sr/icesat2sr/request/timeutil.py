"""Time conversions (SPEC §9). ATLAS SDP epoch 2018-01-01T00:00:00Z = GPS 1198800018 s."""

from __future__ import annotations

import calendar
import datetime as dt
import re

import numpy as np

ATLAS_SDP_EPOCH_GPS = 1198800018.0
GPS_TO_UNIX = 315964800.0  # 1980-01-06 - 1970-01-01, in seconds

# (UTC unix time the offset starts, GPS-UTC leap seconds). No leap second since 2017-01-01.
_LEAPS = [
    (362793600, 1), (394329600, 2), (425865600, 3), (489024000, 4), (567993600, 5), (631152000, 6),
    (662688000, 7), (709948800, 8), (741484800, 9), (773020800, 10), (820454400, 11),
    (867715200, 12), (915148800, 13), (1136073600, 14), (1230768000, 15), (1341100800, 16),
    (1435708800, 17), (1483228800, 18),
]


def leap_seconds(unix_s: float) -> int:
    """GPS - UTC offset (s) at a UTC unix time."""
    n = 0
    for start, leaps in _LEAPS:
        if unix_s >= start:
            n = leaps
    return n


def delta_time_to_ns(delta_time: np.ndarray | float) -> np.ndarray:
    """ATLAS delta_time (s since the SDP epoch) to UTC nanoseconds since 1970, as SlideRule does.

    The expression and its evaluation order reproduce SlideRule's float64 arithmetic bit for bit
    (granularity ~256 ns); every ICESat-2 time is after the last leap second (2017).
    """
    dt_s = np.asarray(delta_time, dtype=np.float64)
    return ((((dt_s + ATLAS_SDP_EPOCH_GPS) + GPS_TO_UNIX) - 18.0) * 1e9).astype(np.int64)


def gps_to_utc(gps_s: float) -> dt.datetime:
    """GPS seconds to an aware UTC datetime, using the built-in leap-second table."""
    unix = gps_s + GPS_TO_UNIX
    unix -= leap_seconds(unix - 18)
    return dt.datetime.fromtimestamp(unix, dt.UTC)


def utc_to_gps(when: dt.datetime) -> float:
    """Aware (or naive UTC) datetime to GPS seconds."""
    unix = calendar.timegm(when.utctimetuple()) + when.microsecond / 1e6
    return unix - GPS_TO_UNIX + leap_seconds(unix)


# The forms SlideRule's server parses (TimeLib::str2gpstime), plus a bare date:
#   2021-01-01T12:30:00Z, 2021-01-01T12:30:00.25Z, 2021-01-01T12:30:00, 2021-01-01 12:30:00
#   2021-01-01 12:30:00+02:00 / -05:30 / Z   (ISO 8601 offsets; SlideRule adds a "+" offset: see decisions.md)
#   2021:01:01:12:30:00 (colons only), 2021:001:12:30:00 (day of year), 2021-01-01 (midnight UTC)
_ZULU = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d*)?)"
                   r"(?:Z|([+-])(\d{1,2}):?(\d{2}))?)?")
_COLONS = re.compile(r"(\d{4}):(\d{1,2}):(\d{1,2}):(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d*)?)")
_DAY_OF_YEAR = re.compile(r"(\d{4}):(\d{1,3}):(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d*)?)")


def parse_utc(text: str) -> dt.datetime:
    """Parse a time string in any form SlideRule's server accepts (and a bare date) to aware UTC.

    Raises
    ------
    ValueError
        Not one of the forms, or an impossible date or time.

    Examples
    --------
    >>> parse_utc("2021-01-01").isoformat()
    '2021-01-01T00:00:00+00:00'
    >>> parse_utc("2021-01-01 02:30:00+02:00").isoformat()
    '2021-01-01T00:30:00+00:00'
    """
    text = text.strip()
    if m := _ZULU.fullmatch(text):
        y, mo, d, h, mi, sec, sign, oh, om = m.groups()
        when = _compose(int(y), int(mo), int(d), int(h or 0), int(mi or 0), sec or "0")
        if sign:
            if int(oh) > 23 or int(om) > 59:
                raise ValueError(f"time zone offset {sign}{oh}:{om} is out of range")
            offset = dt.timedelta(hours=int(oh), minutes=int(om))
            when = when - offset if sign == "+" else when + offset
        return when
    if m := _COLONS.fullmatch(text):
        y, mo, d, h, mi, sec = m.groups()
        return _compose(int(y), int(mo), int(d), int(h), int(mi), sec)
    if m := _DAY_OF_YEAR.fullmatch(text):
        y, doy, h, mi, sec = m.groups()
        start = _compose(int(y), 1, 1, int(h), int(mi), sec)
        if not 1 <= int(doy) <= (366 if calendar.isleap(int(y)) else 365):
            raise ValueError(f"day of year {doy} is out of range")
        return start + dt.timedelta(days=int(doy) - 1)
    raise ValueError("expected e.g. 2021-01-01, 2021-01-01T00:00:00Z, 2021-01-01T00:00:00.5+02:00, "
                     "2021:01:01:00:00:00 or 2021:001:00:00:00")


def _compose(year: int, month: int, day: int, hour: int, minute: int, second: str) -> dt.datetime:
    whole, _, fraction = second.partition(".")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return dt.datetime(year, month, day, hour, minute, int(whole), micro, tzinfo=dt.UTC)


def format_utc(when: dt.datetime) -> str:
    """``%Y-%m-%dT%H:%M:%SZ`` (with ``.ffffff`` when there is a fraction of a second), UTC."""
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if when.microsecond else "%Y-%m-%dT%H:%M:%SZ")
