"""A synthetic beam's photons and the arrays written for it (ATL03 and ATL08)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..request.names import BEAMS
from .ancillary import ancillary_land_segment_values, ancillary_photon_values, ancillary_segment_values
from .spec import (
    AFTERPULSE,
    ALONG_SIGMA,
    BEAM_Y,
    CANOPY,
    GROUND,
    GROUND_SPEED,
    NOISE,
    PRF,
    SC_SPEED,
    SIGNAL_SIGMA,
    WINDOW,
    C,
    GranuleSpec,
    background_rate,
    feature_segments,
    forest_heights,
    is_strong,
    lat_lon,
    podppd_flags,
    start_delta_time,
    start_distance,
    track_frame,
    tree_height,
    truth_height,
)

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


def shots(spec: GranuleSpec, dist: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def beam_data(spec: GranuleSpec, beam: str, grid: tuple[np.ndarray, np.ndarray, np.ndarray]
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """ATL03 datasets (path relative to the beam group -> array) and ATL08 datasets of one beam."""
    sid, dist, length = grid
    rng = np.random.default_rng([spec.seed, 1 + BEAMS.index(beam)])
    strong = is_strong(spec, beam)
    t0 = start_delta_time(spec)
    x0 = start_distance(spec)
    xs, seg_of_shot = shots(spec, dist, length)
    shot_dt = t0 + np.arange(len(xs)) / PRF
    ph = _make_photons(spec, beam, rng, dist, xs, seg_of_shot, shot_dt)
    n = len(ph.kind)

    quality = _quality(ph, strong, rng)
    across = (BEAM_Y[beam] + rng.uniform(-1.0, 1.0, n)).astype(np.float32)
    lat, lon = lat_lon(spec, ph.x - x0, across)
    cnt = np.bincount(ph.seg, minlength=spec.segments).astype(np.int32)
    first = np.cumsum(cnt, dtype=np.int64) - cnt
    mid = dist + length / 2.0
    ref_lat, ref_lon = lat_lon(spec, mid - x0, np.full(spec.segments, BEAM_Y[beam]))
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
        "geolocation/velocity_sc": (track_frame(spec, mid - x0)[1] * SC_SPEED).astype(np.float32),
        "geolocation/solar_elevation": (spec.solar_elevation + 2.0 * (mid - x0) / 1e5).astype(np.float32),
        "geolocation/podppd_flag": podppd_flags(spec),
    }
    atl03.update(ancillary_segment_values(spec, beam, grid))
    atl03.update(ancillary_photon_values(ph.shot, first, cnt))
    atl08 = atl08_data(spec, beam, ph, quality, shot_dt, grid, first, rng) if spec.atl08 else {}
    return atl03, atl08


def atl08_data(spec: GranuleSpec, beam: str, ph: _Photons, quality: np.ndarray, shot_dt: np.ndarray,
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
    lat, lon = lat_lon(spec, centre - start_distance(spec), np.full(len(blocks), BEAM_Y[beam]))
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


