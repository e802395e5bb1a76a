"""What defines a synthetic granule (:class:`GranuleSpec`), its truth surface, forest and layout,
and the geometry of its tracks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass

import numpy as np

from ..request.names import BEAMS, spot, track_pair
from ..request.timeutil import ATLAS_SDP_EPOCH_GPS, utc_to_gps

C = 299792458.0
PRF = 10000.0
SEGMENT = 20.0
R_EARTH = 6371008.8          # spherical Earth (m)
GROUND_SPEED = 6950.0        # m/s along the ground track
SC_SPEED = 7100.0            # m/s, |velocity_sc|
WINDOW = 100.0               # telemetry window height (m), centred on the ground
SIGNAL_SIGMA = 0.10          # transmit-pulse spread of surface photons (m)
ALONG_SIGMA = 0.15           # along-track scatter of photons around their shot (m)
BACKGROUND_PERIOD = 2.0      # s, period of the background-rate modulation
CHUNK = 10000
FILL_F4 = np.float32(3.4028235e38)
SPEC_ATTR = "icesat2sr_synth_spec"

# across-track offset of each beam from the reference ground track (m, positive = left)
BEAM_Y = {b: {1: 3300.0, 2: 0.0, 3: -3300.0}[track_pair(b)[0]] + (45.0 if b[3] == "l" else -45.0)
          for b in BEAMS}

NOISE, GROUND, CANOPY, AFTERPULSE = 0, 1, 2, 3   # photon kinds (internal)
ORIENTATION = {0: "Backward", 1: "Forward", 2: "Transition"}
_CURVATURE_MAX = 1.5e-5      # 1/m: a 40 m line fit then misses the centre height by < 1 mm


@dataclass(frozen=True)
class GranuleSpec:
    """Everything that defines a synthetic granule; equal specs give identical data.

    Attributes
    ----------
    rgt, cycle, region, version, revision : int
        Granule identity (file name and ``orbit_info``).
    start : datetime.datetime
        Aware UTC time of the first shot; gives ``delta_time`` and the name's ``YYYYMMDDhhmmss``.
    lat0, lon0, heading_deg : float
        Start and azimuth (deg clockwise from north) of the reference ground track.
    segments : int
        20 m geolocation segments per beam.
    sc_orient : int
        0 backward (left beams strong), 1 forward (right beams strong), 2 transition.
    seed : int
        Random seed.
    atl08 : bool
        Also write the ATL08 companion.
    background_rate : float
        Mean background photon rate (photons/s); 1.5e6 is typical daytime.
    background_variation : float
        Relative amplitude of the background-rate sinusoid (period 2 s).
    signal_rate : float
        Mean surface photons per shot on strong beams.
    weak_ratio : float
        Weak-beam signal rate / strong-beam signal rate.
    height0, slope, amplitude, wavelength, phase, cross_slope : float
        Truth surface, see :func:`truth_height`.
    solar_elevation : float
        Solar elevation at the start (deg).
    afterpulses, zero_photon_segments, gap, canopy, forest : bool
        Feature switches.
    forest_height_mean, forest_height_sd, forest_height_min, forest_height_max : float
        Stand (tree) height distribution of the forest (m).
    forest_canopy_rate, forest_ground_rate : float
        Canopy and ground photons per shot in the forest, relative to the beam's signal rate.
    forest_top_fraction, forest_top_depth, forest_crown_base : float
        Share of canopy photons from the crown top, its depth (m), crown base as a share of ``H``.
    """

    rgt: int = 1234
    cycle: int = 5
    region: int = 12
    version: int = 6
    revision: int = 1
    start: dt.datetime = dt.datetime(2021, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
    lat0: float = -72.5
    lon0: float = -40.0
    heading_deg: float = -10.0
    segments: int = 2000
    sc_orient: int = 0
    seed: int = 0
    atl08: bool = True
    background_rate: float = 1.5e6
    background_variation: float = 0.1
    signal_rate: float = 4.0
    weak_ratio: float = 0.25
    height0: float = 1500.0
    slope: float = 0.02
    amplitude: float = 6.0
    wavelength: float = 5000.0
    phase: float = 0.3
    cross_slope: float = 0.005
    solar_elevation: float = 25.0
    afterpulses: bool = True
    zero_photon_segments: bool = True
    gap: bool = True
    canopy: bool = True
    forest: bool = False
    forest_height_mean: float = 22.0
    forest_height_sd: float = 6.0
    forest_height_min: float = 5.0
    forest_height_max: float = 40.0
    forest_canopy_rate: float = 1.0
    forest_ground_rate: float = 0.5
    forest_top_fraction: float = 0.3
    forest_top_depth: float = 1.0
    forest_crown_base: float = 0.4

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.rgt <= 1387, "rgt must be 1..1387"),
            (1 <= self.cycle <= 99, "cycle must be 1..99"),
            (1 <= self.region <= 14, "region must be 1..14"),
            (1 <= self.version <= 999 and 1 <= self.revision <= 99, "version 1..999, revision 1..99"),
            (self.start.tzinfo is not None, "start must be an aware UTC datetime"),
            (self.sc_orient in (0, 1, 2), "sc_orient must be 0, 1 or 2"),
            (self.segments >= 1, "segments must be >= 1"),
            (self.segments >= 100 or not (self.gap or self.canopy or self.zero_photon_segments or self.forest),
             "segments must be >= 100 with gap/canopy/zero_photon_segments/forest on"),
            (0 < self.forest_height_min <= self.forest_height_max and self.forest_height_sd >= 0,
             "forest heights: 0 < min <= max, sd >= 0"),
            (0 <= self.forest_top_fraction <= 1 and 0 < self.forest_crown_base < 1
             and 0 < self.forest_top_depth <= self.forest_height_min, "forest crown: fractions in [0, 1], "
             "0 < top depth <= minimum height"),
            (self.forest_canopy_rate >= 0 and self.forest_ground_rate >= 0, "forest rates must be >= 0"),
            (self.background_rate >= 0 and self.signal_rate >= 0, "rates must be >= 0"),
            (0 <= self.background_variation < 1, "background_variation must be in [0, 1)"),
            (self.wavelength > 0, "wavelength must be > 0"),
            (abs(self.amplitude) * (2 * math.pi / self.wavelength) ** 2 <= _CURVATURE_MAX,
             "truth curvature amplitude*(2 pi/wavelength)^2 must be <= 1.5e-5 1/m"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"GranuleSpec: {message}")

    def to_json(self) -> str:
        """The spec as a JSON string (``start`` in ISO 8601)."""
        d = dataclasses.asdict(self)
        d["start"] = self.start.isoformat()
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GranuleSpec:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        d["start"] = dt.datetime.fromisoformat(d["start"])
        return cls(**d)


# ------------------------------------------------------------------------------------------------
# truth and layout


def start_delta_time(spec: GranuleSpec) -> float:
    """``delta_time`` (s since the ATLAS SDP epoch 2018-01-01T00:00:00Z) of the first shot."""
    return utc_to_gps(spec.start) - ATLAS_SDP_EPOCH_GPS


def start_distance(spec: GranuleSpec) -> float:
    """``segment_dist_x`` of the first segment: distance from the ascending equator crossing (m).

    Spherical near-polar orbit: argument of latitude ``lat`` on ascending tracks and ``180 - lat``
    on descending ones (heading between 90 and 270 deg), wrapped into [0, 360).
    """
    descending = math.cos(math.radians(spec.heading_deg)) < 0
    u = (180.0 - spec.lat0) if descending else spec.lat0
    return R_EARTH * math.radians(u % 360.0)


def is_strong(spec: GranuleSpec, beam: str) -> bool:
    """Whether ``beam`` is a strong beam (spots 1, 3, 5; left beams in transition)."""
    s = spot(spec.sc_orient, beam)
    return s in (1, 3, 5) if s else beam[3] == "l"


def truth_height(x_atc: np.ndarray, spec: GranuleSpec, beam: str) -> np.ndarray:
    """The known ground surface (m above WGS84) at along-track distance ``x_atc``.

    ``h = height0 + slope * u + amplitude * sin(2 pi u / wavelength + phase) + cross_slope * y``
    with ``u = x_atc - start_distance(spec)`` and ``y = BEAM_Y[beam]``. Under the canopy patch it
    is the ground, not the canopy top.

    Parameters
    ----------
    x_atc : ndarray
        Along-track distance (m, same origin as ``segment_dist_x``), e.g.
        ``segment_dist_x[seg] + dist_ph_along``.
    spec : GranuleSpec
        The granule's synthesis parameters.
    beam : str
        ``gt1l`` .. ``gt3r``.

    Returns
    -------
    ndarray
        float64 heights.
    """
    u = np.asarray(x_atc, dtype=np.float64) - start_distance(spec)
    k = 2.0 * np.pi / spec.wavelength
    return (spec.height0 + spec.slope * u + spec.amplitude * np.sin(k * u + spec.phase)
            + spec.cross_slope * BEAM_Y[beam])


def truth_mean(x_centre: np.ndarray, spec: GranuleSpec, beam: str, length: float = 40.0) -> np.ndarray:
    """Mean of :func:`truth_height` over ``[x_centre - length/2, x_centre + length/2]``.

    This is what a least-squares line through evenly spread noise-free photons reports at the
    window centre; it differs from ``truth_height(x_centre)`` by at most
    ``amplitude * (k*length)^2 / 24`` (< 1 mm for valid specs).
    """
    k = 2.0 * np.pi / spec.wavelength
    half = k * length / 2.0
    u = np.asarray(x_centre, dtype=np.float64) - start_distance(spec)
    return (spec.height0 + spec.slope * u + spec.amplitude * np.sin(k * u + spec.phase) * np.sin(half) / half
            + spec.cross_slope * BEAM_Y[beam])


def tree_height(x_atc: np.ndarray, spec: GranuleSpec) -> np.ndarray:
    """Canopy height above the ground (12-20 m) used inside the canopy patch."""
    u = np.asarray(x_atc, dtype=np.float64) - start_distance(spec)
    return 16.0 + 4.0 * np.sin(2.0 * np.pi * u / 150.0)


def segment_grid(spec: GranuleSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geolocation segments shared by all beams.

    Returns
    -------
    segment_id : ndarray of int32
        Consecutive ids, ``round(segment_dist_x[0] / 20)`` onwards.
    segment_dist_x : ndarray of float64
        Start of each segment (m from the equator crossing).
    segment_length : ndarray of float64
        ``20 m + U(-0.01, 0.01)``.
    """
    rng = np.random.default_rng([spec.seed, 0])
    length = SEGMENT + rng.uniform(-0.01, 0.01, spec.segments)
    x0 = start_distance(spec)
    dist = x0 + np.concatenate(([0.0], np.cumsum(length[:-1])))
    sid = np.arange(spec.segments, dtype=np.int32) + np.int32(round(x0 / SEGMENT))
    return sid, dist, length


def feature_segments(spec: GranuleSpec, beam: str) -> dict[str, np.ndarray]:
    """Segment indices (0-based, into the segment arrays) of the features of one beam.

    Returns
    -------
    dict
        ``"canopy"``: the canopy patch (same in every beam, ~30 % along the track, <= 400 m);
        ``"gap"``: the run of empty segments (same in every beam, ~60 % along, >= 10 segments);
        ``"zero"``: scattered empty segments (per beam, away from the ends, gap and canopy);
        ``"empty"``: union of gap and zero; ``"forest"``: the forest (5 %..28 % along, every beam).
        Empty arrays when a feature is off.
    """
    m = spec.segments
    none = np.zeros(0, dtype=np.int64)
    canopy = np.arange(int(0.3 * m), int(0.3 * m) + min(20, max(5, m // 10))) if spec.canopy else none
    forest = np.arange(int(0.05 * m), int(0.28 * m)) if spec.forest else none
    gap = np.arange(int(0.6 * m), int(0.6 * m) + min(50, max(10, m // 100))) if spec.gap else none
    zero = none
    if spec.zero_photon_segments:
        blocked = np.zeros(m, dtype=bool)
        blocked[:5] = blocked[m - 5:] = True
        for run in (canopy, gap, forest):
            if run.size:
                blocked[max(run[0] - 1, 0): run[-1] + 2] = True
        rng = np.random.default_rng([spec.seed, 100 + BEAMS.index(beam)])
        candidates = np.flatnonzero(~blocked)
        zero = np.sort(rng.choice(candidates, size=max(3, m // 200), replace=False))
    return {"canopy": canopy, "gap": gap, "zero": zero, "empty": np.union1d(gap, zero), "forest": forest}


def forest_heights(spec: GranuleSpec, beam: str) -> np.ndarray:
    """Tree height (m) of every segment's stand: N(mean, sd) clipped to [min, max]; NaN outside the forest."""
    out = np.full(spec.segments, np.nan)
    stands = feature_segments(spec, beam)["forest"]
    rng = np.random.default_rng([spec.seed, 300 + BEAMS.index(beam)])
    out[stands] = np.clip(rng.normal(spec.forest_height_mean, spec.forest_height_sd, len(stands)),
                          spec.forest_height_min, spec.forest_height_max)
    return out


def canopy_truth(x_lo: np.ndarray, x_hi: np.ndarray, spec: GranuleSpec, beam: str,
                 percentiles: np.ndarray) -> np.ndarray:
    """Relief percentiles of the forest's canopy photons between along-track ``x_lo`` and ``x_hi``.

    The generator's canopy relief distribution over a window is the mixture of its stands'
    distributions (top layer and interior, see the module docstring), weighted by how much of
    each stand lies in the window (photons are evenly spread along track). NaN for windows
    without forest.

    Parameters
    ----------
    x_lo, x_hi : ndarray, shape (E,)
        Window bounds (m, the ``segment_dist_x`` origin).
    spec : GranuleSpec
        The granule's synthesis parameters.
    beam : str
        ``gt1l`` .. ``gt3r``.
    percentiles : ndarray, shape (P,)
        In percent (0..100).

    Returns
    -------
    ndarray, shape (E, P)
    """
    _, dist, length = segment_grid(spec)
    heights = forest_heights(spec, beam)
    stands = np.flatnonzero(np.isfinite(heights))
    stands = stands[~np.isin(stands, feature_segments(spec, beam)["empty"])]
    h = heights[stands]
    f, top, base = spec.forest_top_fraction, h - spec.forest_top_depth, spec.forest_crown_base * h
    q = np.asarray(percentiles, dtype=np.float64) / 100.0
    out = np.full((len(x_lo), len(q)), np.nan)
    for e, (lo, hi) in enumerate(zip(np.asarray(x_lo), np.asarray(x_hi), strict=True)):
        w = np.clip(np.minimum(hi, dist[stands] + length[stands]) - np.maximum(lo, dist[stands]), 0.0, None)
        if w.sum() <= 0:
            continue
        r = np.unique(np.concatenate((top[w > 0], h[w > 0], base[w > 0])))
        cdf = (f * np.clip((r[:, None] - top) / (h - top), 0, 1)
               + (1 - f) * np.clip((r[:, None] - base) / (h - base), 0, 1)) @ w / w.sum()
        out[e] = np.interp(q, cdf, r)   # the mixture CDF is linear between its breakpoints
    return out


def podppd_flags(spec: GranuleSpec) -> np.ndarray:
    """``geolocation/podppd_flag`` of every beam: 0 (nominal) but for two runs of degraded
    geolocation, 1 (pod_degrade) from 15 % along the track and 2 (ppd_degrade) from 80 %."""
    m = spec.segments
    flags = np.zeros(m, dtype=np.int8)   # ATL03's type
    run = max(3, m // 50)
    flags[int(0.15 * m): int(0.15 * m) + run] = 1
    flags[int(0.8 * m): int(0.8 * m) + run] = 2
    return flags


def background_rate(delta_time: np.ndarray, spec: GranuleSpec) -> np.ndarray:
    """Background photon rate (photons/s) at ``delta_time``, as written to ``bckgrd_atlas``."""
    phase = 2.0 * np.pi * (np.asarray(delta_time, dtype=np.float64) - start_delta_time(spec))
    return spec.background_rate * (1.0 + spec.background_variation * np.sin(phase / BACKGROUND_PERIOD))


def granule_name(spec: GranuleSpec) -> str:
    """ATL03 file name ``ATL03_<YYYYMMDDhhmmss>_<rgt><cycle><region>_<version>_<revision>.h5``."""
    when = spec.start.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    ids = f"{spec.rgt:04d}{spec.cycle:02d}{spec.region:02d}"
    return f"ATL03_{when}_{ids}_{spec.version:03d}_{spec.revision:02d}.h5"


# ------------------------------------------------------------------------------------------------
# geometry


def track_frame(spec: GranuleSpec, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (position p, direction t, left normal n) of the reference track at distance s."""
    lat, lon, az = np.radians([spec.lat0, spec.lon0, spec.heading_deg])
    p0 = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    east = np.array([-np.sin(lon), np.cos(lon), 0.0])
    north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
    t0 = np.cos(az) * north + np.sin(az) * east
    a = np.asarray(s, dtype=np.float64)[:, None] / R_EARTH
    p = p0 * np.cos(a) + t0 * np.sin(a)
    t = t0 * np.cos(a) - p0 * np.sin(a)
    return p, t, np.cross(p0, t0)


def lat_lon(spec: GranuleSpec, s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude/longitude (deg) of along-track distance s (from the start) and across-track y."""
    p, _, n = track_frame(spec, s)
    b = np.asarray(y, dtype=np.float64)[:, None] / R_EARTH
    q = p * np.cos(b) + n * np.sin(b)
    lat = np.degrees(np.arcsin(np.clip(q[:, 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(q[:, 1], q[:, 0]))
    return lat, lon


