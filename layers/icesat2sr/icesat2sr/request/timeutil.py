"""Time conversions (SPEC §9). ATLAS SDP epoch 2018-01-01T00:00:00Z = GPS 1198800018 s."""

from __future__ import annotations

import calendar
import datetime as dt

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


def parse_utc(text: str) -> dt.datetime:
    """Parse SlideRule's ``%Y-%m-%dT%H:%M:%SZ`` time strings (UTC)."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
