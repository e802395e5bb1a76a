"""Synthetic ATL03 (and companion ATL08) granules in the real layout, with a known truth surface.

The files mimic released ATL03/ATL08 granules as far as SlideRule reads them (SPEC §1-§3): six
beams, chunked ``(10000,)`` / ``(10000, 5)`` / ``(10000, 3)`` datasets, gzip level 6, shuffle on
integer datasets, h5py's default ``libver="earliest"`` (so h5coro 1.0.7 reads them).

Model (all numbers are fields of :class:`GranuleSpec`, stored as JSON in the root attribute
``icesat2sr_synth_spec``; :func:`read_spec` gives it back):

* Geometry: a great circle from ``(lat0, lon0)`` with azimuth ``heading_deg``; beam ``gtNs`` runs
  parallel to it at the across-track offset :data:`BEAM_Y` (positive = left of the direction of
  travel; pairs 3.3 km apart, left/right 90 m apart). Every beam shares the same geolocation
  segments (ids, ``segment_dist_x``); segment lengths are 20 m +- 0.01 m.
* Shots: 10 kHz, ground speed :data:`GROUND_SPEED` (0.695 m apart), time ``delta_time`` from
  ``start``. A photon's along-track distance is its shot's plus N(0, 0.15 m); it belongs to its
  shot's segment (so ``dist_ph_along`` may be slightly negative or exceed the segment length, as
  in real files). Photons of a shot are stored in arrival order (highest first).
* Heights: ground photons ``truth_height + N(0, 0.10 m)``, Poisson ``signal_rate`` per shot on
  strong beams and ``signal_rate * weak_ratio`` on weak beams; background photons uniform in
  ``truth +- 50 m`` (telemetry window), Poisson ``rate(t) * 2 * 100 m / c`` per shot where
  ``rate(t) = background_rate * (1 + background_variation * sin(2 pi (t - t0) / 2 s))``; that
  rate is also written to ``bckgrd_atlas`` (one sample per 50 shots).
* Features (segment indices from :func:`feature_segments`): a canopy patch (ground rate x0.35,
  canopy photons uniform 2 m .. tree height (12-20 m) above the ground), one gap (a run of >= 10
  empty segments) and a few scattered empty segments; afterpulses (3 % of strong-beam ground
  photons, 0.5-6 m below, ``quality_ph`` 1); a few ``quality_ph`` 2 (0.3 % of noise) and, on strong
  beams, ``quality_ph`` 3 photons (TEP, 0.1 % of noise, confidence -2 in every column).
* ``geolocation/podppd_flag``: nominal (0) but for two degraded runs (:func:`podppd_flags`).
* ``signal_conf_ph``: columns land (0) and land ice (3) are filled (they differ on purpose);
  ocean, sea ice and inland water are -1, except for TEP photons (-2 everywhere).
* Forest (``forest=True``, off by default; segments 5 %..28 % along the track): every 20 m
  segment is a stand whose tree height ``H`` is drawn from N(``forest_height_mean``,
  ``forest_height_sd``) clipped to [``forest_height_min``, ``forest_height_max``]
  (:func:`forest_heights`). Per shot, Poisson ``forest_ground_rate * rate`` ground photons and
  ``forest_canopy_rate * rate`` canopy photons; a canopy photon comes from the crown top
  (relief uniform in ``H - forest_top_depth .. H``) with probability ``forest_top_fraction``,
  else from the crown interior (uniform in ``forest_crown_base * H .. H``). :func:`canopy_truth`
  gives the relief percentiles this implies over any along-track window.
* Ancillary datasets (the ones SlideRule's ancillary-field requests read), in the real product's
  dtypes, with values that are simple known functions of position (:func:`ancillary_segment_values`,
  :func:`ancillary_photon_values`, :func:`ancillary_background_values`,
  :func:`ancillary_land_segment_values`); ``geophys_corr/tide_ocean`` is the float fill
  (3.4028235e38, "over land") on the first half of the segments, and ATL08 ``canopy/h_canopy``
  outside the canopy patch, as in released granules. They use their own random streams, so the
  photons are the same with or without them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .request.names import BEAMS, parse_name, spot, track_pair
from .request.timeutil import ATLAS_SDP_EPOCH_GPS, utc_to_gps

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
_ORIENTATION = {0: "Backward", 1: "Forward", 2: "Transition"}
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
    beam : str
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


def _track_frame(spec: GranuleSpec, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _lat_lon(spec: GranuleSpec, s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude/longitude (deg) of along-track distance s (from the start) and across-track y."""
    p, _, n = _track_frame(spec, s)
    b = np.asarray(y, dtype=np.float64)[:, None] / R_EARTH
    q = p * np.cos(b) + n * np.sin(b)
    lat = np.degrees(np.arcsin(np.clip(q[:, 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(q[:, 1], q[:, 0]))
    return lat, lon


# ------------------------------------------------------------------------------------------------
# photons


@dataclass
class _Photons:
    shot: np.ndarray
    seg: np.ndarray
    kind: np.ndarray
    x: np.ndarray            # f8 along-track distance = segment_dist_x[seg] + f8(dist_along)
    dist_along: np.ndarray   # f4
    h: np.ndarray            # f8 before the f4 cast
    ground: np.ndarray       # truth at x
    top: np.ndarray          # canopy photons: tree height above the ground at x (NaN for others)


def _shots(spec: GranuleSpec, dist: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Along-track distance and segment index of every shot of a beam."""
    dx = GROUND_SPEED / PRF
    x_first = dist[0] + dx / 2.0
    n = int((dist[-1] + length[-1] - x_first) / dx)
    xs = x_first + np.arange(n) * dx
    return xs, np.searchsorted(dist, xs, side="right") - 1


def _make_photons(spec: GranuleSpec, beam: str, rng: np.random.Generator, dist: np.ndarray,
                  xs: np.ndarray, seg_of_shot: np.ndarray, shot_dt: np.ndarray) -> _Photons:
    """Draw the photons of one beam (kinds, positions, heights) in file order."""
    feats = feature_segments(spec, beam)
    active = np.ones(len(dist), dtype=bool)
    active[feats["empty"]] = False
    in_canopy = np.zeros(len(dist), dtype=bool)
    in_canopy[feats["canopy"]] = True
    stand = forest_heights(spec, beam)
    on = active[seg_of_shot]
    under = in_canopy[seg_of_shot]
    wood = np.isfinite(stand)[seg_of_shot]
    rate = spec.signal_rate * (1.0 if is_strong(spec, beam) else spec.weak_ratio)

    n_ground = rng.poisson(np.where(under, 0.35 * rate, np.where(wood, spec.forest_ground_rate * rate, rate)) * on)
    n_canopy = rng.poisson((np.where(under, 0.8 * rate, 0.0) + np.where(wood, spec.forest_canopy_rate * rate, 0.0))
                           * on)
    n_noise = rng.poisson(background_rate(shot_dt, spec) * (2.0 * WINDOW / C) * on)
    shots = [np.repeat(np.arange(len(xs)), n) for n in (n_ground, n_canopy, n_noise)]
    parents = np.zeros(0, dtype=np.int64)
    if spec.afterpulses and is_strong(spec, beam):
        parents = np.flatnonzero(rng.random(len(shots[0])) < 0.03)

    shot = np.concatenate(shots)
    kind = np.repeat(np.array([GROUND, CANOPY, NOISE], dtype=np.uint8), [len(a) for a in shots])
    seg = seg_of_shot[shot]
    dist_along = (xs[shot] + rng.normal(0.0, ALONG_SIGMA, len(shot)) - dist[seg]).astype(np.float32)
    x = dist[seg] + dist_along.astype(np.float64)
    ground = truth_height(x, spec, beam)
    canopy = kind == CANOPY
    top = np.full(len(kind), np.nan)
    top[canopy] = np.where(np.isfinite(stand[seg[canopy]]), stand[seg[canopy]], tree_height(x[canopy], spec))
    ground_noise = rng.normal(0.0, SIGNAL_SIGMA, len(shots[0]))
    position = rng.random(len(shots[1]))
    relief = 2.0 + position * (top[canopy] - 2.0)
    noise = rng.uniform(-WINDOW / 2, WINDOW / 2, len(shots[2]))
    if spec.forest:  # forest photons: from the crown top or its interior
        crown = np.where(rng.random(len(shots[1])) < spec.forest_top_fraction,
                         top[canopy] - spec.forest_top_depth, spec.forest_crown_base * top[canopy])
        relief = np.where(np.isfinite(stand[seg[canopy]]), crown + position * (top[canopy] - crown), relief)
    h = ground + np.concatenate([ground_noise, relief, noise])
    if parents.size:  # afterpulses: same shot and position as their ground photon, 0.5-6 m lower
        shot = np.concatenate([shot, shot[parents]])
        kind = np.concatenate([kind, np.full(parents.size, AFTERPULSE, dtype=np.uint8)])
        seg, dist_along, x, ground, top = (np.concatenate([a, a[parents]]) for a in (seg, dist_along, x, ground, top))
        top[len(top) - parents.size:] = np.nan
        h = np.concatenate([h, h[parents] - rng.uniform(0.5, 6.0, parents.size)])

    order = np.lexsort((-h, shot))  # time order; within a shot, arrival order (highest first)
    return _Photons(*(a[order] for a in (shot, seg, kind, x, dist_along, h, ground, top)))


def _draw(rng: np.random.Generator, n: int, values: tuple[int, ...], p: tuple[float, ...]) -> np.ndarray:
    return rng.choice(np.array(values, dtype=np.int8), size=n, p=p)


def _confidence(ph: _Photons, quality: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """signal_conf_ph (N, 5): land and land-ice columns from the photon kind, others -1."""
    n = len(ph.kind)
    conf = np.full((n, 5), -1, dtype=np.int8)
    land = np.zeros(n, dtype=np.int8)
    ice = np.zeros(n, dtype=np.int8)
    g = ph.kind == GROUND
    land[g] = _draw(rng, int(g.sum()), (4, 3, 2), (0.85, 0.10, 0.05))
    ice[g] = np.where(rng.random(int(g.sum())) < 0.2,
                      _draw(rng, int(g.sum()), (4, 3, 2), (0.6, 0.25, 0.15)), land[g])
    c = ph.kind == CANOPY
    land[c] = _draw(rng, int(c.sum()), (4, 3, 2), (0.3, 0.3, 0.4))
    ice[c] = _draw(rng, int(c.sum()), (3, 2, 1, 0), (0.1, 0.3, 0.3, 0.3))
    a = ph.kind == AFTERPULSE
    land[a] = rng.integers(0, 2, int(a.sum()))
    ice[a] = rng.integers(0, 2, int(a.sum()))
    near = (ph.kind == NOISE) & (np.abs(ph.h - ph.ground) <= 10.0)
    land[near] = np.where(rng.random(int(near.sum())) < 0.05, 2, 1)
    ice[near] = 1
    conf[:, 0] = land
    conf[:, 3] = ice
    conf[quality == 3] = -2
    return conf


def _quality(ph: _Photons, strong: bool, rng: np.random.Generator) -> np.ndarray:
    quality = np.zeros(len(ph.kind), dtype=np.int8)
    quality[ph.kind == AFTERPULSE] = 1
    noise = ph.kind == NOISE
    u = rng.random(len(ph.kind))
    quality[noise & (u < 0.003)] = 2
    if strong:
        quality[noise & (u >= 0.003) & (u < 0.004)] = 3
    return quality


def _weight(ph: _Photons, rng: np.random.Generator, dtype: type) -> np.ndarray:
    lo = np.array([0, 180, 80, 20], dtype=np.int64)[ph.kind]
    hi = np.array([40, 256, 200, 120], dtype=np.int64)[ph.kind]
    near = (ph.kind == NOISE) & (np.abs(ph.h - ph.ground) <= 10.0)
    hi = np.where(near, 80, hi)
    return rng.integers(lo, hi).astype(dtype)


def _atl08_class(ph: _Photons, quality: np.ndarray, spec: GranuleSpec,
                 rng: np.random.Generator) -> np.ndarray:
    """ATL08 ``classed_pc_flag`` of every photon, -1 where ATL08 does not list the photon.

    Ground -> 1, canopy -> 2 (3 within 1 m of the tree top), afterpulses and background within
    -15 m .. +25 m of the ground -> 0; 2 % of surface/canopy photons stay unlisted (class 4 after
    the join), as do TEP photons and background farther away.
    """
    cls = np.full(len(ph.kind), -1, dtype=np.int8)
    dh = ph.h - ph.ground
    cls[ph.kind == GROUND] = 1
    canopy = ph.kind == CANOPY
    cls[canopy] = np.where(dh[canopy] > ph.top[canopy] - 1.0, 3, 2)
    cls[ph.kind == AFTERPULSE] = 0
    cls[(ph.kind == NOISE) & (dh >= -15.0) & (dh <= 25.0) & (quality != 3)] = 0
    dropped = ((ph.kind == GROUND) | (ph.kind == CANOPY)) & (rng.random(len(cls)) < 0.02)
    cls[dropped] = -1
    return cls


# ------------------------------------------------------------------------------------------------
# one beam: the arrays to write


def _beam_data(spec: GranuleSpec, beam: str, grid: tuple[np.ndarray, np.ndarray, np.ndarray]
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """ATL03 datasets (path relative to the beam group -> array) and ATL08 datasets of one beam."""
    sid, dist, length = grid
    rng = np.random.default_rng([spec.seed, 1 + BEAMS.index(beam)])
    strong = is_strong(spec, beam)
    t0 = start_delta_time(spec)
    x0 = start_distance(spec)
    xs, seg_of_shot = _shots(spec, dist, length)
    shot_dt = t0 + np.arange(len(xs)) / PRF
    ph = _make_photons(spec, beam, rng, dist, xs, seg_of_shot, shot_dt)
    n = len(ph.kind)

    quality = _quality(ph, strong, rng)
    across = (BEAM_Y[beam] + rng.uniform(-1.0, 1.0, n)).astype(np.float32)
    lat, lon = _lat_lon(spec, ph.x - x0, across)
    cnt = np.bincount(ph.seg, minlength=spec.segments).astype(np.int32)
    first = np.cumsum(cnt, dtype=np.int64) - cnt
    mid = dist + length / 2.0
    ref_lat, ref_lon = _lat_lon(spec, mid - x0, np.full(spec.segments, BEAM_Y[beam]))
    atl03 = {
        "heights/delta_time": shot_dt[ph.shot],
        "heights/lat_ph": lat,
        "heights/lon_ph": lon,
        "heights/h_ph": ph.h.astype(np.float32),
        "heights/dist_ph_along": ph.dist_along,
        "heights/dist_ph_across": across,
        "heights/signal_conf_ph": _confidence(ph, quality, rng),
        "heights/quality_ph": quality,
        "heights/weight_ph": _weight(ph, rng, np.uint8 if spec.version <= 6 else np.uint16),
        "geolocation/segment_id": sid,
        "geolocation/segment_dist_x": dist,
        "geolocation/segment_length": length,
        "geolocation/segment_ph_cnt": cnt,
        "geolocation/ph_index_beg": np.where(cnt > 0, first + 1, 0).astype(np.int64),
        "geolocation/reference_photon_index": np.where(cnt > 0, (cnt + 1) // 2, 0).astype(np.int32),
        "geolocation/reference_photon_lat": ref_lat,
        "geolocation/reference_photon_lon": ref_lon,
        "geolocation/delta_time": t0 + (mid - xs[0]) / GROUND_SPEED,
        "geolocation/velocity_sc": (_track_frame(spec, mid - x0)[1] * SC_SPEED).astype(np.float32),
        "geolocation/solar_elevation": (spec.solar_elevation + 2.0 * (mid - x0) / 1e5).astype(np.float32),
        "geolocation/podppd_flag": podppd_flags(spec),
    }
    atl03.update(ancillary_segment_values(spec, beam, grid))
    atl03.update(ancillary_photon_values(ph.shot, first, cnt))
    atl08 = _atl08_data(spec, beam, ph, quality, shot_dt, grid, first, rng) if spec.atl08 else {}
    return atl03, atl08


def _atl08_data(spec: GranuleSpec, beam: str, ph: _Photons, quality: np.ndarray, shot_dt: np.ndarray,
                grid: tuple[np.ndarray, np.ndarray, np.ndarray], first: np.ndarray,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ATL08 ``signal_photons`` and ``land_segments`` (100 m = 5 geosegments) of one beam."""
    sid, dist, length = grid
    cls = _atl08_class(ph, quality, spec, rng)
    listed = np.flatnonzero(cls >= 0)
    seg = ph.seg[listed]
    block = seg // 5
    blocks, n_seg_ph = np.unique(block, return_counts=True)
    beg = blocks * 5
    end = np.minimum(beg + 4, spec.segments - 1)
    centre = (dist[beg] + dist[end] + length[end]) / 2.0
    lat, lon = _lat_lon(spec, centre - start_distance(spec), np.full(len(blocks), BEAM_Y[beam]))
    return {
        "signal_photons/ph_segment_id": sid[seg],
        "signal_photons/classed_pc_indx": (listed - first[seg] + 1).astype(np.int32),
        "signal_photons/classed_pc_flag": cls[listed],
        "signal_photons/delta_time": shot_dt[ph.shot[listed]],
        "signal_photons/ph_h": (ph.h - ph.ground)[listed].astype(np.float32),
        "land_segments/segment_id_beg": sid[beg],
        "land_segments/segment_id_end": sid[end],
        "land_segments/latitude": lat.astype(np.float32),
        "land_segments/longitude": lon.astype(np.float32),
        "land_segments/delta_time": start_delta_time(spec) + (centre - dist[0]) / GROUND_SPEED,
        "land_segments/n_seg_ph": n_seg_ph.astype(np.int32),
        **ancillary_land_segment_values(spec, beam, beg, end, grid),
    }


# ------------------------------------------------------------------------------------------------
# ancillary datasets (known values; real dtypes)


def ancillary_segment_values(spec: GranuleSpec, beam: str, grid: tuple[np.ndarray, np.ndarray, np.ndarray]
                             ) -> dict[str, np.ndarray]:
    """``geolocation/`` and ``geophys_corr/`` ancillary datasets of one beam (one value per segment).

    With ``i`` the segment index and ``u`` the distance of the segment centre from the start (m):
    ``sigma_h = 0.02 + 0.001 (i mod 50)``, ``ref_elev = 1.5 + 1e-6 i`` (rad), ``ref_azimuth = -3 + 1e-4 i``,
    ``solar_azimuth = 120 + 1e-3 i`` (``podppd_flag``: :func:`podppd_flags`),
    ``surf_type`` (M, 5) = ``[1, 0, 0, 1, 0]`` (``[0, 0, 0, 1, 0]`` on every 7th segment);
    ``geoid = -30 + 1e-4 u``, ``dem_h`` = truth at the centre + 0.5, ``dem_flag = 3``,
    ``tide_ocean`` = fill on the first half of the segments, ``0.4 sin(u / 3000)`` after,
    ``tide_earth = 0.1 cos(u / 5000)``, ``tide_load = 0.01``, ``dac = -0.05 + 1e-6 u``.
    """
    sid, dist, length = grid
    m = len(sid)
    i = np.arange(m)
    u = dist + length / 2.0 - start_distance(spec)
    surf = np.tile(np.array([1, 0, 0, 1, 0], dtype=np.int8), (m, 1))
    surf[i % 7 == 0, 0] = 0
    tide_ocean = (0.4 * np.sin(u / 3000.0)).astype(np.float32)
    tide_ocean[: m // 2] = FILL_F4
    return {
        "geolocation/sigma_h": (0.02 + 0.001 * (i % 50)).astype(np.float32),
        "geolocation/ref_elev": (1.5 + 1e-6 * i).astype(np.float32),
        "geolocation/ref_azimuth": (-3.0 + 1e-4 * i).astype(np.float32),
        "geolocation/solar_azimuth": (120.0 + 1e-3 * i).astype(np.float32),
        "geolocation/surf_type": surf,
        "geophys_corr/geoid": (-30.0 + 1e-4 * u).astype(np.float32),
        "geophys_corr/dem_h": (truth_height(dist + length / 2.0, spec, beam) + 0.5).astype(np.float32),
        "geophys_corr/dem_flag": np.full(m, 3, dtype=np.int8),
        "geophys_corr/tide_ocean": tide_ocean,
        "geophys_corr/tide_earth": (0.1 * np.cos(u / 5000.0)).astype(np.float32),
        "geophys_corr/tide_load": np.full(m, 0.01, dtype=np.float32),
        "geophys_corr/dac": (-0.05 + 1e-6 * u).astype(np.float32),
    }


def ancillary_photon_values(shot: np.ndarray, first: np.ndarray, cnt: np.ndarray) -> dict[str, np.ndarray]:
    """``heights/`` ancillary datasets (one value per photon, file order).

    ``ph_id_pulse = 1 + shot mod 200``, ``pce_mframe_cnt = 1000 + shot // 200``, ``ph_id_count`` =
    1-based position of the photon in its shot, ``ph_id_channel = 1 + (photon index in its segment) mod 16``.
    """
    n = len(shot)
    new_shot = np.ones(n, dtype=bool)
    new_shot[1:] = shot[1:] != shot[:-1]
    start = np.maximum.accumulate(np.where(new_shot, np.arange(n), 0))
    seg_start = np.repeat(first, cnt)
    return {
        "heights/ph_id_pulse": (1 + shot % 200).astype(np.uint8),
        "heights/pce_mframe_cnt": (1000 + shot // 200).astype(np.uint32),
        "heights/ph_id_count": (1 + np.arange(n) - start).astype(np.uint8),
        "heights/ph_id_channel": (1 + (np.arange(n) - seg_start) % 16).astype(np.uint8),
    }


def ancillary_background_values(bckgrd_delta_time: np.ndarray, spec: GranuleSpec) -> dict[str, np.ndarray]:
    """``bckgrd_atlas/`` ancillary datasets (one value per 50-shot sample ``k``).

    ``bckgrd_counts = 100 + k mod 37`` (int32), ``bckgrd_int_height = 100`` m, ``bckgrd_hist_top =
    50 + 1e-3 k`` (float32), ``pce_mframe_cnt = 1000 + k // 4`` (int64).
    """
    k = np.arange(len(bckgrd_delta_time))
    return {
        "bckgrd_atlas/bckgrd_counts": (100 + k % 37).astype(np.int32),
        "bckgrd_atlas/bckgrd_int_height": np.full(len(k), WINDOW, dtype=np.float32),
        "bckgrd_atlas/bckgrd_hist_top": (50.0 + 1e-3 * k).astype(np.float32),
        "bckgrd_atlas/pce_mframe_cnt": (1000 + k // 4).astype(np.int64),
    }


def ancillary_land_segment_values(spec: GranuleSpec, beam: str, beg: np.ndarray, end: np.ndarray,
                                  grid: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """ATL08 ``land_segments/`` ancillary datasets (one value per land segment ``j``).

    ``terrain/h_te_best_fit`` / ``h_te_median`` = truth at the land segment's centre (+ 0.05 for the
    median), ``canopy/h_canopy`` = tree height at the centre inside the canopy patch, fill elsewhere,
    ``canopy/canopy_openness = 1 + 0.01 j``, ``segment_landcover`` 111 in the patch or the forest,
    else 121 (int16),
    ``segment_snowcover = 1`` (int8), ``h_dif_ref = 0.25 - 1e-3 j``, ``rgt`` = the granule's (int16),
    ``sigma_atlas_land = 0.2 + 1e-3 j``, ``cloud_flag_atm = j mod 3`` (int8), ``night_flag = 0`` (int32).
    """
    _, dist, length = grid
    j = np.arange(len(beg))
    x = (dist[beg] + dist[end] + length[end]) / 2.0
    patch = np.isin(beg, feature_segments(spec, beam)["canopy"]) | np.isin(end, feature_segments(spec, beam)["canopy"])
    wooded = patch | np.isin(beg, feature_segments(spec, beam)["forest"])
    ground = truth_height(x, spec, beam)
    return {
        "land_segments/terrain/h_te_best_fit": ground.astype(np.float32),
        "land_segments/terrain/h_te_median": (ground + 0.05).astype(np.float32),
        "land_segments/canopy/h_canopy": np.where(patch, tree_height(x, spec), FILL_F4).astype(np.float32),
        "land_segments/canopy/canopy_openness": (1.0 + 0.01 * j).astype(np.float32),
        "land_segments/segment_landcover": np.where(wooded, 111, 121).astype(np.int16),
        "land_segments/segment_snowcover": np.ones(len(j), dtype=np.int8),
        "land_segments/h_dif_ref": (0.25 - 1e-3 * j).astype(np.float32),
        "land_segments/rgt": np.full(len(j), spec.rgt, dtype=np.int16),
        "land_segments/sigma_atlas_land": (0.2 + 1e-3 * j).astype(np.float32),
        "land_segments/cloud_flag_atm": (j % 3).astype(np.int8),
        "land_segments/night_flag": np.zeros(len(j), dtype=np.int32),
    }


# ------------------------------------------------------------------------------------------------
# writing

_FILLS = {
    "geolocation/segment_ph_cnt": 0,
    "geolocation/ph_index_beg": 0,
    "geolocation/reference_photon_index": 0,
    "geolocation/velocity_sc": FILL_F4,
    "geolocation/solar_elevation": FILL_F4,
    "geophys_corr/tide_ocean": FILL_F4,
}


def _deflate(chunk: np.ndarray, shuffle: bool) -> bytes:
    """HDF5's filter pipeline (shuffle, then deflate level 6) applied to one full chunk."""
    raw = chunk.reshape(-1).view(np.uint8).reshape(-1, chunk.dtype.itemsize)
    return zlib.compress((raw.T if shuffle else raw).tobytes(), 6)


def _dataset(group, name: str, data: np.ndarray, pool: ThreadPoolExecutor, fill=None) -> None:
    """Chunked dataset as in released granules: (10000, ...) chunks, gzip 6, shuffle on integers.

    Chunks are compressed here, in threads (zlib releases the GIL), and stored with
    ``write_direct_chunk``; the bytes are those HDF5's own pipeline would write.
    """
    data = np.ascontiguousarray(data)
    tail = data.shape[1:]
    shuffle = data.dtype.kind in "iu"
    # real signal_conf_ph is (None, None)-extendable, velocity_sc (None, 3)
    maxshape = (None, None) if tail == (5,) else (None, *tail)
    ds = group.create_dataset(name, shape=data.shape, dtype=data.dtype, chunks=(CHUNK, *tail),
                              maxshape=maxshape, compression="gzip", compression_opts=6, shuffle=shuffle,
                              fillvalue=fill)
    if fill is not None:
        ds.attrs["_FillValue"] = np.asarray(fill, dtype=data.dtype)

    def compress(start: int) -> bytes:
        chunk = data[start: start + CHUNK]
        if len(chunk) < CHUNK:  # edge chunks are stored full size
            full = np.full((CHUNK, *tail), 0 if fill is None else fill, dtype=data.dtype)
            full[: len(chunk)] = chunk
            chunk = full
        return _deflate(chunk, shuffle and data.dtype.itemsize > 1)

    starts = range(0, len(data), CHUNK)
    for start, blob in zip(starts, pool.map(compress, starts), strict=True):
        ds.id.write_direct_chunk((start,) + (0,) * len(tail), blob)


def _utc(delta_time: float) -> str:
    """``YYYY-MM-DDThh:mm:ss.ffffffZ`` of a delta_time."""
    when = dt.datetime(2018, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=delta_time)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write_common(f, spec: GranuleSpec, product: str, name: str, t0: float, t1: float) -> None:
    """Root attributes, METADATA, orbit_info and ancillary_data shared by ATL03 and ATL08."""
    attrs = {
        "short_name": product, "granule_type": product, "identifier_product_type": product,
        "level": "L2" if product == "ATL03" else "L3A", "Conventions": "CF-1.6",
        "description": f"icesat2sr synthetic {product} granule (not real data)",
        "date_created": spec.start.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "time_coverage_start": _utc(t0), "time_coverage_end": _utc(t1),
        SPEC_ATTR: spec.to_json(),
    }
    for key, value in attrs.items():
        f.attrs[key] = np.bytes_(value)
    meta = f.create_group("METADATA/DatasetIdentification")
    for key, value in {"fileName": name, "shortName": product, "VersionID": f"{spec.version:03d}"}.items():
        meta.attrs[key] = np.bytes_(value)
    orbit = f.create_group("orbit_info")
    for key, value, dtype in (("sc_orient", spec.sc_orient, np.int8), ("rgt", spec.rgt, np.int16),
                              ("cycle_number", spec.cycle, np.int8),
                              ("sc_orient_time", t0 - 3600.0, np.float64)):
        orbit.create_dataset(key, data=np.array([value], dtype=dtype), chunks=(16,), maxshape=(None,))
    anc = f.create_group("ancillary_data")
    for key, value in (("atlas_sdp_gps_epoch", ATLAS_SDP_EPOCH_GPS), ("start_delta_time", t0),
                       ("end_delta_time", t1)):
        anc.create_dataset(key, data=np.array([value], dtype=np.float64))
    for key, value in (("start_rgt", spec.rgt), ("end_rgt", spec.rgt), ("start_cycle", spec.cycle),
                       ("end_cycle", spec.cycle), ("start_region", spec.region), ("end_region", spec.region)):
        anc.create_dataset(key, data=np.array([value], dtype=np.int32))
    for key, value in (("data_start_utc", _utc(t0)), ("data_end_utc", _utc(t1)),
                       ("release", f"{spec.version:03d}".ljust(80)),
                       ("version", f"{spec.revision:02d}".ljust(80))):
        anc.create_dataset(key, data=np.array([value.encode()]))


def _beam_attrs(group, spec: GranuleSpec, beam: str) -> None:
    s = spot(spec.sc_orient, beam)
    attrs = {"atlas_beam_type": "strong" if is_strong(spec, beam) else "weak",
             "atlas_spot_number": str(s), "atlas_pce": f"pce{(s + 1) // 2}" if s else "pce0",
             "groundtrack_id": beam, "sc_orientation": _ORIENTATION[spec.sc_orient]}
    for key, value in attrs.items():
        group.attrs[key] = np.bytes_(value)


def _end_delta_time(spec: GranuleSpec, grid: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    xs, _ = _shots(spec, grid[1], grid[2])
    return start_delta_time(spec) + (len(xs) - 1) / PRF


def write_granule(directory: str | Path, spec: GranuleSpec) -> list[Path]:
    """Write the ATL03 granule of ``spec`` (and its ATL08 companion when ``spec.atl08``).

    Parameters
    ----------
    directory : str or Path
        Output directory (created if missing).
    spec : GranuleSpec

    Returns
    -------
    list of Path
        ``[ATL03 path]`` or ``[ATL03 path, ATL08 path]``.
    """
    import h5py

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = granule_name(spec)
    atl08_name = parse_name(name).atl08
    grid = segment_grid(spec)
    t0, t1 = start_delta_time(spec), _end_delta_time(spec, grid)
    bt = np.arange(t0 - 0.05, t1 + 0.05, 50 / PRF)
    background = {"bckgrd_atlas/delta_time": bt,
                  "bckgrd_atlas/bckgrd_rate": background_rate(bt + 25 / PRF, spec).astype(np.float32),
                  **ancillary_background_values(bt, spec)}
    atl08: dict[str, dict[str, np.ndarray]] = {}
    pool = ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1))
    with pool, h5py.File(directory / name, "w") as f:
        _write_common(f, spec, "ATL03", name, t0, t1)
        for beam in BEAMS:
            data, atl08[beam] = _beam_data(spec, beam, grid)
            group = f.create_group(beam)
            _beam_attrs(group, spec, beam)
            for key, value in {**data, **background}.items():
                _dataset(group, key, value, pool, _FILLS.get(key))
            del data
    paths = [directory / name]
    if spec.atl08:
        pool = ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1))
        with pool, h5py.File(directory / atl08_name, "w") as f:
            _write_common(f, spec, "ATL08", atl08_name, t0, t1)
            for beam in BEAMS:
                group = f.create_group(beam)
                _beam_attrs(group, spec, beam)
                for key, value in atl08[beam].items():
                    _dataset(group, key, value, pool)
        paths.append(directory / atl08_name)
    return paths


def read_spec(path: str | Path) -> GranuleSpec:
    """The :class:`GranuleSpec` stored in a synthetic ATL03 or ATL08 file.

    Raises
    ------
    KeyError
        If the file is not a synthetic granule (no ``icesat2sr_synth_spec`` root attribute).
    """
    import h5py

    with h5py.File(path, "r") as f:
        text = f.attrs[SPEC_ATTR]
    return GranuleSpec.from_json(text.decode() if isinstance(text, bytes) else str(text))


def synthesize(directory: str | Path, seed: int = 0, segments: int = 2000, atl08: bool = False,
               granules: int = 1) -> list[Path]:
    """Write ``granules`` synthetic granules with different rgt, times and places.

    Places are Antarctic (lat -60 .. -80, any longitude) so segment ids have 7 digits; tracks are
    ascending (heading ~ -10 deg, region 12) or descending (~190 deg, region 10) and the
    spacecraft orientation backward or forward, all drawn from ``seed``.

    Parameters
    ----------
    directory : str or Path
    seed : int
    segments : int
        Segments per beam of every granule.
    atl08 : bool
        Also write the ATL08 companions.
    granules : int

    Returns
    -------
    list of Path
        All files written, ATL03 (then its ATL08) per granule.
    """
    rng = np.random.default_rng([seed, 999])
    rgt0 = int(rng.integers(1, 1388))
    paths: list[Path] = []
    for i in range(granules):
        descending = bool(rng.integers(0, 2))
        start = (dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
                 + dt.timedelta(days=int(rng.integers(0, 1800)), seconds=int(rng.integers(0, 86400))))
        spec = GranuleSpec(
            rgt=(rgt0 + 97 * i) % 1387 + 1, cycle=int(rng.integers(1, 26)), region=10 if descending else 12,
            start=start, lat0=float(rng.uniform(-80.0, -60.0)), lon0=float(rng.uniform(-180.0, 180.0)),
            heading_deg=float((190.0 if descending else -10.0) + rng.uniform(-3.0, 3.0)),
            segments=segments, sc_orient=int(rng.integers(0, 2)), seed=seed * 1000 + i, atl08=atl08,
            height0=float(rng.uniform(200.0, 3000.0)), slope=float(rng.uniform(-0.03, 0.03)),
            phase=float(rng.uniform(0.0, 2 * np.pi)))
        paths += write_granule(directory, spec)
    return paths
