"""SlideRule's PhoREAL canopy metrics (``Atl08Dispatch``), vectorised over all extents of a beam.

Per extent SlideRule takes the extent's photons (after the reader's filters; by default ATL08
ground, canopy and top of canopy), splits them into ground (class 1) and canopy (classes 2, 3),
and reports the median ground height, canopy relief statistics (ATL08 ``ph_h``: height above the
ground), binned relief percentiles and, on request, the binned canopy waveform. Here every step
is done for all extents of a beam at once: photons are sorted by (extent, value), per-extent sums
are ``np.bincount`` (which adds left to right, in SlideRule's order) and the percentile search is
one comparison per percentile over the sorted photons. Memory is a few arrays of the beam's
photons, nothing per extent-and-photon.

Fidelity notes (SlideRule 5.5 ``Atl08Dispatch.cpp``):

* Heights and reliefs are float32; sums, means and bins are float64 as in the C++ (``delta`` of
  the standard deviation is float32 minus float32, like ``relief - h_mean_canopy`` there).
* Percentile ``p`` is the relief of the highest photon in the first bin whose cumulative count
  reaches ``p`` % of the canopy photons (``cbins[b] / veg_cnt * 100 >= p``).
* ``h_te_median`` is the median of the ground photons' ATL03 ``h_ph`` (mean of the middle two).

Where SlideRule does not do what it documents we do what it intends (docs/decisions.md, PhoREAL):
``binsize`` is honoured (SlideRule always bins by 1 m), the 20th percentile slot is the 100th
percentile (SlideRule's table has 19 entries, so it repeats the 95th), extents without canopy
photons report 0 mean and openness (SlideRule: NaN from 0/0), ``use_abs_h`` replaces the relief
by ``h_ph`` without moving every photon into the ground set, and the ABoVE classifier leaves ATL08
ground photons alone.
"""

from __future__ import annotations

import numpy as np

from ..granules.beam import Beam
from ..request.params import Phoreal
from ..request.timeutil import delta_time_to_ns
from .extents import Extents
from .records import EXTENT_ID_ELEVATION, NUM_PERCENTILES, VEGETATION, WAVEFORM, extent_ids

GROUND, CANOPY, TOP_OF_CANOPY = 1, 2, 3
MAX_BINS = 1000
PFLAG_BIN_UNDERFLOW = 0x1
PFLAG_BIN_OVERFLOW = 0x2
PERCENTILES = tuple(float(5 * (k + 1)) for k in range(NUM_PERCENTILES))   # 5, 10, ..., 95, 100
CANOPY_PERCENTILE = 98.0
# ABoVE classifier (Atl03Reader::Atl08Class::classify)
ABOVE_MAX_SOLAR_ELEVATION = 5.0
ABOVE_MAX_RELIEF = 35.0
ABOVE_CNF = 4
STRONG_SPOTS = (1, 3, 5)


def above_classifier(classes: np.ndarray, relief: np.ndarray, conf: np.ndarray, solar_elevation: np.ndarray,
                     spot: int) -> np.ndarray:
    """The ABoVE top-of-canopy reclassification of a beam's photons.

    On strong spots (1, 3, 5), a classified noise or canopy photon with high confidence (4), a
    solar elevation at most 5 degrees and ``0 <= relief < 35`` m becomes top of canopy (3).
    SlideRule reclassifies ground photons too (its code carries a "TODO: check for valid ground
    photons"); ground photons keep their class here.

    Parameters
    ----------
    classes : ndarray of uint8, shape (N,)
        ATL08 classes (4 = unclassified, never reclassified).
    relief : ndarray of float32, shape (N,)
        ATL08 ``ph_h``.
    conf : ndarray of int8, shape (N,)
        Signal confidence for the request's surface type.
    solar_elevation : ndarray of float32, shape (N,)
        Solar elevation of each photon's ATL03 segment (degrees).
    spot : int
        Laser spot of the beam.

    Returns
    -------
    ndarray of uint8, shape (N,)
    """
    classes = np.asarray(classes)
    if spot not in STRONG_SPOTS:
        return classes
    relief = np.asarray(relief, dtype=np.float32)
    moved = (((classes == 0) | (classes == CANOPY)) & (np.asarray(solar_elevation) <= ABOVE_MAX_SOLAR_ELEVATION)
             & (np.asarray(conf) == ABOVE_CNF) & (relief >= 0.0) & (relief < ABOVE_MAX_RELIEF))
    return np.where(moved, np.uint8(TOP_OF_CANOPY), classes).astype(np.uint8)


def canopy_metrics(offsets: np.ndarray, classes: np.ndarray, height: np.ndarray, relief: np.ndarray,
                   binsize: float = 1.0, waveform: bool = False) -> dict[str, np.ndarray]:
    """PhoREAL's per-extent metrics of photons grouped by extent (CSR).

    Parameters
    ----------
    offsets : ndarray of int64, shape (E+1,)
        The photons of extent ``e`` are entries ``offsets[e]:offsets[e+1]``.
    classes : ndarray of uint8, shape (N,)
        ATL08 class of each photon (1 ground; 2, 3 canopy; others count only in ``ph_count``).
    height : ndarray of float32, shape (N,)
        ATL03 ``h_ph``.
    relief : ndarray of float32, shape (N,)
        Canopy height of each photon: ATL08 ``ph_h`` (or ``h_ph`` with ``use_abs_h``).
    binsize : float
        Relief bin (m) of the percentiles and the waveform.
    waveform : bool
        Also return the binned canopy waveforms.

    Returns
    -------
    dict of str to ndarray
        Per extent: ``ph_count``, ``gnd_ph_count``, ``veg_ph_count`` (u4), ``h_te_median``,
        ``h_max_canopy``, ``h_min_canopy``, ``h_mean_canopy``, ``h_canopy``, ``canopy_openness`` (f4),
        ``canopy_h_metrics`` (f4, (E, 20): percentiles 5..100), ``num_bins`` (i8), ``pflags`` (u2);
        with ``waveform``: ``waveform`` (f4, all extents' bins one after the other, ``num_bins``
        each: canopy photons per bin / all photons of the extent).

    Examples
    --------
    >>> m = canopy_metrics(np.array([0, 4]), np.array([1, 2, 2, 3]),
    ...                    np.array([100.0, 105.0, 110.0, 120.0], np.float32),
    ...                    np.array([0.0, 5.0, 10.0, 20.0], np.float32))
    >>> float(m["h_te_median"][0]), float(m["h_canopy"][0]), float(m["canopy_h_metrics"][0, 9])
    (100.0, 20.0, 10.0)
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n_ext = len(offsets) - 1
    counts = np.diff(offsets)
    owner = np.repeat(np.arange(n_ext), counts)
    classes = np.asarray(classes)
    ground = classes == GROUND
    canopy = (classes == CANOPY) | (classes == TOP_OF_CANOPY)
    out: dict[str, np.ndarray] = {"ph_count": counts.astype(np.uint32)}
    out["gnd_ph_count"], out["h_te_median"] = _median_terrain(owner[ground], np.asarray(height)[ground], n_ext)

    # canopy photons sorted by (extent, relief); v_owner stays sorted
    v_owner = owner[canopy]
    v_r = np.asarray(relief, dtype=np.float32)[canopy]
    v_r = v_r[np.lexsort((v_r, v_owner))]
    n_veg = np.bincount(v_owner, minlength=n_ext)
    start = np.cumsum(n_veg) - n_veg
    has = n_veg > 0
    last = start + n_veg - 1
    r64 = v_r.astype(np.float64)
    min_h, max_h = np.zeros(n_ext), np.zeros(n_ext)
    min_h[has], max_h[has] = r64[start[has]], r64[last[has]]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(has, np.bincount(v_owner, weights=r64, minlength=n_ext) / n_veg, 0.0).astype(np.float32)
        delta = (v_r - mean[v_owner]).astype(np.float64)
        spread = np.bincount(v_owner, weights=delta * delta, minlength=n_ext) / n_veg
        openness = np.where(has, np.sqrt(spread), 0.0).astype(np.float32)
    out.update(veg_ph_count=n_veg.astype(np.uint32), h_max_canopy=max_h.astype(np.float32),
               h_min_canopy=min_h.astype(np.float32), h_mean_canopy=mean, canopy_openness=openness)

    num_bins, pflags = _num_bins(max_h - min_h, binsize)
    b = np.floor((r64 - min_h[v_owner]) / binsize)
    b = np.clip(b, 0, num_bins[v_owner] - 1).astype(np.int64)
    # cumulative count through each photon's bin = position of the last photon of that bin + 1
    new_bin = np.ones(len(b), dtype=bool)
    new_bin[1:] = (v_owner[1:] != v_owner[:-1]) | (b[1:] != b[:-1])
    bin_end = np.flatnonzero(np.append(new_bin[1:], True))
    cumulative = bin_end[np.cumsum(new_bin) - 1] - start[v_owner] + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (cumulative.astype(np.float64) / n_veg[v_owner].astype(np.float64)) * 100.0
    metrics = np.zeros((n_ext, NUM_PERCENTILES + 1), dtype=np.float32)
    for k, p in enumerate((*PERCENTILES, CANOPY_PERCENTILE)):
        first = start + np.bincount(v_owner[share < p], minlength=n_ext)  # share rises within an extent
        metrics[has, k] = v_r[start[has] + cumulative[first[has]] - 1]
    out["canopy_h_metrics"] = metrics[:, :NUM_PERCENTILES].copy()
    out["h_canopy"] = metrics[:, NUM_PERCENTILES].copy()
    out["num_bins"], out["pflags"] = num_bins, pflags
    if waveform:
        bin_start = np.cumsum(num_bins) - num_bins
        per_bin = np.bincount(bin_start[v_owner] + b, minlength=int(num_bins.sum())).astype(np.float64)
        photons = np.repeat(np.maximum(counts, 1), num_bins).astype(np.float64)   # an empty extent has no canopy
        out["waveform"] = (per_bin / photons).astype(np.float32)
    return out


def _median_terrain(g_owner: np.ndarray, g_h: np.ndarray, n_ext: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground photon counts and median ground height (0 without ground photons) per extent."""
    g_h = np.asarray(g_h, dtype=np.float32)
    g_h = g_h[np.lexsort((g_h, g_owner))]
    n_gnd = np.bincount(g_owner, minlength=n_ext)
    has = n_gnd > 0
    low = (np.cumsum(n_gnd) - n_gnd + (n_gnd - 1) // 2)[has]
    even = (n_gnd[has] % 2) == 0
    high = low + even
    median = np.zeros(n_ext, dtype=np.float32)
    median[has] = (g_h[low] + g_h[high]) / np.float32(2.0)   # float + float in the C++; x/2 is exact
    return n_gnd.astype(np.uint32), median


def _num_bins(span: np.ndarray, binsize: float) -> tuple[np.ndarray, np.ndarray]:
    """``ceil(span / binsize)`` limited to 1..MAX_BINS, and the under/overflow flags."""
    bins = np.ceil(span / binsize)
    pflags = np.where(bins > MAX_BINS, PFLAG_BIN_OVERFLOW, np.where(bins <= 0, PFLAG_BIN_UNDERFLOW, 0))
    return np.clip(bins, 1, MAX_BINS).astype(np.int64), pflags.astype(np.uint16)


def geolocation(offsets: np.ndarray, time_ns: np.ndarray, latitude: np.ndarray, longitude: np.ndarray,
                x_rel: np.ndarray, distance: np.ndarray, geoloc: str = "median",
                y_atc: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Time, position and along-track distance of each extent (every extent has a photon).

    ``median``: the middle photon in extent order (the mean of the middle two); ``mean``: the
    means; ``center``: the midpoint of the minimum and maximum of each. ``x_atc`` is the photon's
    centre-relative ``x_rel`` plus the extent centre ``distance``.

    ``y_atc`` (the photons' across-track distance), when given, is located the same way (float64
    arithmetic, as SlideRule's x-series PhoREAL, stored as float32).

    Returns
    -------
    dict
        ``time`` (i8 ns), ``latitude``, ``longitude`` (f8), ``x_atc`` (f4), ``photon`` (i8: the
        photon nearest in time to ``time``, the first of equals, whose cover flags the extent takes)
        and, with ``y_atc``, ``y_atc`` (f4).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    start = offsets[:-1]
    owner = np.repeat(np.arange(len(counts)), counts)
    time_ns = np.asarray(time_ns, dtype=np.int64)
    x_rel = np.asarray(x_rel, dtype=np.float32)
    distance = np.asarray(distance, dtype=np.float64)
    y = np.zeros(len(time_ns)) if y_atc is None else np.asarray(y_atc, dtype=np.float64)
    if geoloc == "median":
        c = start + counts // 2
        b = np.where(counts % 2 == 1, c, c - 1)    # an odd count averages the middle photon with itself
        time = (time_ns[c] + time_ns[b]) // 2
        lat = (latitude[c] + latitude[b]) / 2
        lon = (longitude[c] + longitude[b]) / 2
        x = ((x_rel[c] + x_rel[b]) / np.float32(2)).astype(np.float64) + distance
        across = (y[c] + y[b]) / 2
    elif geoloc == "mean":
        def mean(values):
            return np.bincount(owner, weights=values, minlength=len(counts)) / counts
        time = mean(time_ns.astype(np.float64)).astype(np.int64)
        lat, lon, across = mean(latitude), mean(longitude), mean(y)
        x = mean(x_rel.astype(np.float64) + distance[owner])
    elif geoloc == "center":
        def mid(values):
            return (np.minimum.reduceat(values, start) + np.maximum.reduceat(values, start)) / 2.0
        time = mid(time_ns.astype(np.float64)).astype(np.int64)
        lat, lon, across = mid(latitude), mid(longitude), mid(y)
        x = mid(x_rel.astype(np.float64)) + distance
    else:
        raise ValueError(f"geoloc must be mean, median or center, got {geoloc!r}")
    gap = np.abs(time_ns - time[owner]).astype(np.float64)
    hit = np.flatnonzero(gap == np.minimum.reduceat(gap, start)[owner])
    nearest = hit[np.unique(owner[hit], return_index=True)[1]]
    out = {"time": time, "latitude": lat, "longitude": lon, "x_atc": x.astype(np.float32), "photon": nearest}
    if y_atc is not None:
        out["y_atc"] = across.astype(np.float32)
    return out


def vegetation_rows(beam: Beam, extents: Extents, classes: np.ndarray, settings: Phoreal
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """PhoREAL records of one beam: one per extent with photons.

    Parameters
    ----------
    beam : Beam
        With ``relief``, ``landcover``, ``snowcover`` (the ATL08 join with PhoREAL on).
    extents : Extents
        The beam's emitted extents.
    classes : ndarray of uint8, shape (N,)
        ATL08 class of every photon of the beam (after the ABoVE classifier, if on).
    settings : Phoreal
        The request's ``phoreal`` parameters.

    Returns
    -------
    (vegetation, waveforms, waveform)
        :data:`VEGETATION` rows; with ``send_waveform`` the :data:`WAVEFORM` heads and their
        float32 bins (one after the other), else None, None.
    """
    keep, offsets = extents_with_photons(extents)
    p = extents.photon
    relief = beam.h_ph[p] if settings.use_abs_h else beam.relief[p]
    m = canopy_metrics(offsets, classes[p], beam.h_ph[p], relief, settings.binsize, settings.send_waveform)
    geo = geolocation(offsets, delta_time_to_ns(beam.delta_time[p]), beam.lat_ph[p], beam.lon_ph[p],
                      extents.x_rel, extents.distance[keep], settings.geoloc)
    rows = np.zeros(len(keep), dtype=VEGETATION)
    ids = extent_ids(beam.rgt, beam.cycle, beam.region, beam.track, beam.pair, extents.counter[keep])
    rows["extent_id"] = ids | np.uint64(EXTENT_ID_ELEVATION)
    rows["segment_id"] = extents.segment_id[keep]
    rows["rgt"], rows["cycle"], rows["spot"], rows["gt"] = beam.rgt, beam.cycle, beam.spot, beam.gt
    rows["solar_elevation"] = extents.solar_elevation[keep]
    nearest = p[geo.pop("photon")]
    rows["landcover"], rows["snowcover"] = beam.landcover[nearest], beam.snowcover[nearest]
    for name, values in (*geo.items(), *m.items()):
        if name in VEGETATION.names:
            rows[name] = values
    if not settings.send_waveform:
        return rows, None, None
    heads = np.zeros(len(keep), dtype=WAVEFORM)
    heads["extent_id"] = rows["extent_id"]
    heads["num_bins"] = m["num_bins"]
    heads["binsize"] = settings.binsize
    return rows, heads, m["waveform"]


def across_track(beam: Beam, extents: Extents, settings: Phoreal) -> np.ndarray:
    """Across-track distance (f4) of each record of :func:`vegetation_rows`, located as its
    position is (``geoloc``): SlideRule's x-series PhoREAL frame has it, its record does not."""
    keep, offsets = extents_with_photons(extents)
    p = extents.photon
    geo = geolocation(offsets, delta_time_to_ns(beam.delta_time[p]), beam.lat_ph[p], beam.lon_ph[p],
                      extents.x_rel, extents.distance[keep], settings.geoloc, y_atc=beam.dist_ph_across[p])
    return geo["y_atc"]


def extents_with_photons(extents: Extents) -> tuple[np.ndarray, np.ndarray]:
    """The extents that have photons (PhoREAL's rows, in extent order) and the CSR offsets of their
    photons in ``extents.photon``.

    Parameters
    ----------
    extents : Extents
        A beam's emitted extents.

    Returns
    -------
    (ndarray of int64, ndarray of int64)
        Indices of the extents with photons; offsets, shape (len(indices) + 1,).
    """
    keep = np.flatnonzero(extents.count > 0)
    return keep, np.concatenate(([0], np.cumsum(extents.count[keep]))).astype(np.int64)


__all__ = ["above_classifier", "across_track", "canopy_metrics", "extents_with_photons", "geolocation",
           "vegetation_rows"]
