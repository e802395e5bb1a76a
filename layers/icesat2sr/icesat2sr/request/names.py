"""ATL03/ATL08 granule names, beams and spots (SPEC §1.1, §3)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .errors import ResourceError

_NAME = re.compile(r"ATL0(\d)_(\d{14})_(\d{4})(\d{2})(\d{2})_(\d{3})_(\d{2})\.h5")

BEAMS = ("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r")
GT_CODE = {b: 10 * (i + 1) for i, b in enumerate(BEAMS)}  # gt1l=10 ... gt3r=60

# spot by sc_orient (0 backward, 1 forward, 2 transition) and beam; strong spots are 1, 3, 5
_SPOTS = {0: (1, 2, 3, 4, 5, 6), 1: (6, 5, 4, 3, 2, 1), 2: (0, 0, 0, 0, 0, 0)}


@dataclass(frozen=True)
class GranuleName:
    """Fields of a granule file name ``ATL0P_YYYYMMDDhhmmss_ttttccrr_vvv_ee.h5``."""

    name: str
    product: int
    start: dt.datetime
    rgt: int
    cycle: int
    region: int
    version: int
    revision: int

    @property
    def atl08(self) -> str:
        """Name of the companion ATL08 granule (release 007 ATL08 is always revision 01)."""
        chars = list(self.name)
        chars[4] = "8"
        if chars[32] == "7":
            chars[35] = "1"
        return "".join(chars)


def parse_name(name: str) -> GranuleName:
    """Parse a granule file name.

    Parameters
    ----------
    name : str
        Bare file name, e.g. ``ATL03_20181019065445_03150111_005_01.h5``.

    Returns
    -------
    GranuleName

    Raises
    ------
    ResourceError
        If the name does not follow the ATLAS naming convention, or has leading or trailing
        whitespace (refused, never trimmed: a name is used as sent or not at all).

    Examples
    --------
    >>> parse_name("ATL03_20181019065445_03150111_005_01.h5").rgt
    315
    """
    if isinstance(name, str) and name != name.strip():
        raise ResourceError(repr(name), "granule names must not have leading or trailing whitespace")
    m = _NAME.fullmatch(name)
    if not m:
        raise ResourceError(name, "not an ATL03/ATL08 granule name "
                            "(expected ATL0P_YYYYMMDDhhmmss_ttttccrr_vvv_ee.h5)")
    try:
        start = dt.datetime.strptime(m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        raise ResourceError(name, f"invalid acquisition time '{m.group(2)}' in granule name") from None
    return GranuleName(name, int(m.group(1)), start, int(m.group(3)), int(m.group(4)),
                       int(m.group(5)), int(m.group(6)), int(m.group(7)))


def matches_pattern(name: str, pattern: str) -> bool:
    """Whether a granule name matches a CMR ``producer_granule_id`` pattern (SlideRule's
    ``name_filter``): ``*`` any run of characters, ``?`` one character, everything else literal.

    >>> matches_pattern("ATL03_20181019065445_03150111_005_01.h5", "*_0315????_*")
    True
    """
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, flags=re.DOTALL) is not None


def parse_atl03_name(name: str) -> GranuleName:
    """Like :func:`parse_name`, but only ATL03 names are accepted."""
    g = parse_name(name)
    if g.product != 3:
        raise ResourceError(name, "not an ATL03 granule name")
    return g


def track_pair(beam: str) -> tuple[int, int]:
    """Reference pair track (1-3) and pair (0 left, 1 right) of a beam name such as ``gt2r``."""
    return int(beam[2]), 0 if beam[3] == "l" else 1


def spot(sc_orient: int, beam: str) -> int:
    """Laser spot (1-6, 0 in transition) of a beam for a spacecraft orientation."""
    return _SPOTS.get(int(sc_orient), _SPOTS[2])[BEAMS.index(beam)]


def spot_from_track_pair(sc_orient: int, track: int, pair: int) -> int:
    """Laser spot from (sc_orient, track, pair), as SlideRule's client computes it."""
    return spot(sc_orient, BEAMS[2 * (track - 1) + pair])
