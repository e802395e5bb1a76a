"""The ATL06-SR iterative line fit (SPEC §6), vectorised over all extents of a beam.

SlideRule (``Atl06Dispatch::iterativeFitStage`` / ``lsf``) fits each extent on its own; here every
pass of the window loop works on the whole batch of still-active extents at once.  Photons live in
one flat working array, grouped by extent, and every per-extent reduction is a segment reduction.

Fidelity notes (SlideRule HEAD, checked in its source):

* Photon ``x`` (centre-relative along-track), ``h`` and ``y_atc`` are float32; arithmetic is float64.
* The elevation record stores ``dh_fit_dx``, ``window_height``, ``rms_misfit``, ``h_sigma`` and
  ``y_atc`` as float32, and the loop reads them back from there: ``sigma_expected`` uses the
  float32 slope, and the window carried between passes (``0.75·W_prev``, ``N_bg = bg_density·W``,
  ``zmin/zmax = ∓W/2`` and the keep test ``|r| < W/2``) is the float32 window.
* Sums are sequential in the order SlideRule holds the photons (file order on the first pass,
  sorted by the previous pass's residuals afterwards), done with ``np.bincount`` which adds
  left to right (``np.add.reduceat`` would add pairwise and round differently).
* Residual ties are broken stably (previous order); SlideRule's Hoare quicksort is not stable, so
  the order of exactly tied photons, and hence the last bit of later sums, may differ from it.
* ``MAX(a, b)`` is C's ``a > b ? a : b``, also for NaN (a degenerate pass yields ``W = 0.75·W_prev``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPEED_OF_LIGHT = 299792458.0
PRF = 10000.0
RDE = 1.3490
SIGMA_BEAM = 4.25
SIGMA_XMIT = 0.68e-9

PFLAG_SPREAD_TOO_SHORT = 0x1
PFLAG_TOO_FEW_PHOTONS = 0x2
PFLAG_MAX_ITERATIONS = 0x4
PFLAG_OUT_OF_BOUNDS = 0x8

_HALF_C = SPEED_OF_LIGHT / 2.0
_SE1 = (_HALF_C * SIGMA_XMIT) * (_HALF_C * SIGMA_XMIT)   # GCC folds pow(x, 2) to x*x
_DBL_MAX = np.finfo(np.float64).max
_INT64_MIN = np.iinfo(np.int64).min
_TWO63 = 2.0**63

_POSITION_FIELDS = ("latitude", "longitude", "time_ns", "y_atc", "delta_time")
_FIT_OUTPUTS = ("h_mean", "dh_fit_dx", "n_fit_photons", "pflags", "w_surface_window_final", "rms_misfit",
                "h_sigma", "fitted", "in_fit")


@dataclass(frozen=True)
class FitSettings:
    """Fit parameters (seed names in brackets).

    Attributes
    ----------
    maxi : int
        Maximum refinement passes [``maxi``].
    H_min_win : float
        Minimum window height in metres [``H_min_win``].
    sigma_r_max : float
        Cap on the robust spread of the residuals, metres [``sigma_r_max``].
    cnt : int
        Minimum photons kept by a window [``cnt``].
    ats : float
        Minimum along-track spread of the kept photons, metres [``ats``].
    """

    maxi: int = 5
    H_min_win: float = 3.0
    sigma_r_max: float = 5.0
    cnt: int = 10
    ats: float = 20.0

    def __post_init__(self) -> None:
        for name in ("H_min_win", "sigma_r_max", "ats"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"FitSettings.{name} must be finite, got {getattr(self, name)!r}")


def fit_extents(
    offsets: np.ndarray,
    x: np.ndarray,
    h: np.ndarray,
    extent_length: float | np.ndarray,
    velocity: float | np.ndarray,
    background_rate: float | np.ndarray,
    settings: FitSettings | None = None,
    *,
    latitude: np.ndarray | None = None,
    longitude: np.ndarray | None = None,
    time_ns: np.ndarray | None = None,
    y_atc: np.ndarray | None = None,
    delta_time: np.ndarray | None = None,
    extras: dict[str, np.ndarray] | None = None,
    double: bool = False,
) -> dict[str, np.ndarray]:
    """Fit SlideRule's ATL06-SR line to every extent of a beam.

    Parameters
    ----------
    offsets : ndarray of int64, shape (E+1,)
        CSR boundaries: the photons of extent ``e`` are entries ``offsets[e]:offsets[e+1]`` of the
        per-photon arrays, in file order.
    x : ndarray of float32, shape (N,)
        Along-track distance relative to the extent centre (m); cast to float32.
    h : ndarray of float32, shape (N,)
        Photon heights (m); cast to float32.
    extent_length : float or ndarray of float64, shape (E,)
        Extent length ``L`` (m).
    velocity : float or ndarray of float32, shape (E,)
        Spacecraft speed (m/s); rounded to float32 as SlideRule stores it.
    background_rate : float or ndarray of float64, shape (E,)
        Background photon rate (photons/s).
    settings : FitSettings, optional
        Fit parameters; defaults to ``FitSettings()``.
    latitude, longitude, delta_time : ndarray of float64, shape (N,), optional
        Photon positions/times, fitted to the extent centre with the final LSF weights.
    time_ns : ndarray of int64, shape (N,), optional
        Photon times in ns; the fit is truncated to int64 (``INT64_MIN`` when not finite or out of
        range, as x86-64 converts).
    y_atc : ndarray of float32, shape (N,), optional
        Across-track distance (m).
    extras : dict of str to ndarray of float64, shape (N,), optional
        Further named photon columns (e.g. ancillary fields), fitted to the extent centre with the
        final LSF weights like ``latitude``; returned under their names (float64).
    double : bool
        SlideRule's x-series ``SurfaceFitter`` arithmetic instead of the p-series': ``x`` stays
        float64, the slope and window carried between passes are not rounded to float32,
        ``rms_misfit``/``h_sigma`` are float64 products (rounded when stored) and are not zeroed
        for flagged extents.

    Returns
    -------
    dict of str to ndarray
        Per extent (length E): ``h_mean`` f8, ``dh_fit_dx`` f4, ``n_fit_photons`` i4, ``pflags`` u2,
        ``w_surface_window_final`` f4, ``rms_misfit`` f4, ``h_sigma`` f4, ``fitted`` bool and, for
        each optional input given, ``latitude``/``longitude``/``delta_time`` f8, ``time_ns`` i8,
        ``y_atc`` f4.  Per photon (length N): ``in_fit`` bool, membership of the final set.
        Empty extents are not fitted: ``fitted`` False, floats NaN, counts/flags/times 0.

    Notes
    -----
    The longitude shift uses the first photon of the final set in SlideRule's order, i.e. the
    photon with the smallest residual of the last pass (ties: earlier in the previous order).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-19.5, 19.5, 40, dtype=np.float32)
    >>> h = (100.0 + 0.0625 * x).astype(np.float32)
    >>> out = fit_extents(np.array([0, 40]), x, h, 40.0, 7000.0, 0.0)
    >>> round(float(out["h_mean"][0]), 6), float(out["dh_fit_dx"][0]), int(out["pflags"][0])
    (100.0, 0.0625, 0)
    """
    s = settings if settings is not None else FitSettings()
    offsets = np.asarray(offsets, dtype=np.int64)
    x32 = np.asarray(x, dtype=np.float64 if double else np.float32)
    h32 = np.asarray(h, dtype=np.float32)
    _check_layout(offsets, x32, h32)
    n_ext = offsets.size - 1
    columns = _extras(latitude, longitude, time_ns, y_atc, delta_time)
    for name, values in (extras or {}).items():
        if name in _POSITION_FIELDS or name in _FIT_OUTPUTS:
            raise ValueError(f"extras: {name!r} is a reserved output name")
        columns[name] = np.asarray(values, dtype=np.float64)
    out = _empty_outputs(n_ext, x32.size, columns)
    with np.errstate(all="ignore"):
        bg_density = _background_density(n_ext, extent_length, velocity, background_rate)
        _window_loop(offsets, x32, h32, bg_density, s, columns, out, np.float64 if double else np.float32)
    return out


def _check_layout(offsets: np.ndarray, x: np.ndarray, h: np.ndarray) -> None:
    if offsets.ndim != 1 or offsets.size < 1:
        raise ValueError("offsets must be a 1-D array of length E+1 >= 1")
    if np.any(np.diff(offsets) < 0) or offsets[0] < 0 or offsets[-1] > x.size:
        raise ValueError("offsets must be non-decreasing and within the photon arrays")
    if x.shape != h.shape or x.ndim != 1:
        raise ValueError("x and h must be 1-D arrays of the same length")


def _extras(
    latitude: np.ndarray | None,
    longitude: np.ndarray | None,
    time_ns: np.ndarray | None,
    y_atc: np.ndarray | None,
    delta_time: np.ndarray | None,
) -> dict[str, np.ndarray]:
    given = {"latitude": (latitude, np.float64), "longitude": (longitude, np.float64),
             "time_ns": (time_ns, np.int64), "y_atc": (y_atc, np.float32),
             "delta_time": (delta_time, np.float64)}
    return {k: np.asarray(v, dtype=dt) for k, (v, dt) in given.items() if v is not None}


def _empty_outputs(n_ext: int, n_ph: int, extras: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {
        "h_mean": np.full(n_ext, np.nan, np.float64),
        "dh_fit_dx": np.full(n_ext, np.nan, np.float32),
        "n_fit_photons": np.zeros(n_ext, np.int32),
        "pflags": np.zeros(n_ext, np.uint16),
        "w_surface_window_final": np.full(n_ext, np.nan, np.float32),
        "rms_misfit": np.full(n_ext, np.nan, np.float32),
        "h_sigma": np.full(n_ext, np.nan, np.float32),
        "fitted": np.zeros(n_ext, bool),
        "in_fit": np.zeros(n_ph, bool),
    }
    for name, values in extras.items():
        out[name] = np.zeros(n_ext, np.int64) if name == "time_ns" else np.full(n_ext, np.nan, values.dtype)
    return out


def _background_density(n_ext: int, extent_length, velocity, background_rate) -> np.ndarray:
    """Background photons per metre of height: ``(L·PRF/v)·rate/(c/2)`` (SPEC §6)."""
    length = np.broadcast_to(np.asarray(extent_length, np.float64), (n_ext,))
    speed = np.broadcast_to(np.asarray(velocity, np.float32), (n_ext,)).astype(np.float64)
    rate = np.broadcast_to(np.asarray(background_rate, np.float64), (n_ext,))
    pulses = (length * PRF) / speed
    return pulses * rate / _HALF_C


class _Batch:
    """The photons of the still-active extents, grouped by extent in SlideRule's current order."""

    def __init__(self, ext: np.ndarray, idx: np.ndarray, n: np.ndarray) -> None:
        self.ext = ext                       # original extent ids, (A,)
        self.idx = idx                       # photon indices, (P,), contiguous per extent
        self.n = n                           # photons per extent, (A,), all >= 1
        self.starts = np.zeros(n.size, np.int64)
        np.cumsum(n[:-1], out=self.starts[1:])
        self.sid = np.repeat(np.arange(n.size, dtype=np.int64), n)

    def sum(self, weights: np.ndarray) -> np.ndarray:
        """Sequential per-extent sums (left to right, like SlideRule's loops)."""
        return np.bincount(self.sid, weights=weights, minlength=self.n.size)

    def subset(self, extents: np.ndarray, photons: np.ndarray) -> _Batch:
        """The batch restricted to extents (bool, (A,)) and photons (bool, (P,)), order kept."""
        sid = self.sid[photons]
        return _Batch(self.ext[extents], self.idx[photons], np.bincount(sid, minlength=self.n.size)[extents])


def _window_loop(offsets, x32, h32, bg_density, s: FitSettings, extras, out, stored=np.float32) -> None:
    """SPEC §6's repeat-loop, one pass over all still-active extents per iteration.

    The pass number equals SlideRule's ``iteration`` for every active extent, since an extent only
    stays active by incrementing it.  Extents that stop are written to ``out`` by ``_finish``.
    ``stored`` is the type the slope and window are kept in between passes.
    """
    counts = np.diff(offsets)
    ext = np.flatnonzero(counts > 0)
    batch = _Batch(ext, np.arange(offsets[0], offsets[-1], dtype=np.int64), counts[ext])
    window = np.zeros(offsets.size - 1, stored)
    pflags = np.zeros(offsets.size - 1, np.uint16)
    invalid = np.zeros(offsets.size - 1, bool)
    iteration = 0
    x64, h64 = x32.astype(np.float64), h32.astype(np.float64)  # exact widening, done once
    while batch.n.size:
        xs = x64[batch.idx]
        hs = h64[batch.idx]
        h_mean, slope, y_sigma = _lsf(batch, xs, hs)
        r = hs - (h_mean[batch.sid] + xs * slope[batch.sid])
        order = _segment_order(batch.sid, r)
        batch.idx, xs, r = batch.idx[order], xs[order], r[order]

        w_prev = window[batch.ext].astype(np.float64)
        zmin, zmax, n_bg = _bounds(iteration, batch, r, bg_density[batch.ext], w_prev)
        sigma_r, oob = _robust_spread(batch, r, zmin, zmax, n_bg)
        pflags[batch.ext[oob]] |= PFLAG_OUT_OF_BOUNDS
        invalid[batch.ext[oob]] = True
        slope32 = slope.astype(stored)
        w_new = _window_height(sigma_r, slope32, w_prev, s, stored)
        window[batch.ext] = w_new

        keep = np.abs(r) < (w_new.astype(np.float64) / 2.0)[batch.sid]
        flags, go_on = _checks(batch, keep, xs, iteration, s)
        pflags[batch.ext] |= flags
        invalid[batch.ext] |= (flags & (PFLAG_TOO_FEW_PHOTONS | PFLAG_SPREAD_TOO_SHORT)) != 0

        stop = ~go_on
        if stop.any():
            done = batch.subset(stop, stop[batch.sid])
            fit = (h_mean[stop], slope32[stop], y_sigma[stop])
            _finish(done, xs[stop[batch.sid]], r[stop[batch.sid]], fit, window, pflags, invalid, extras, out,
                    stored)
        batch = batch.subset(go_on, keep & go_on[batch.sid])
        iteration += 1


def _segment_order(sid: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Stable order by (extent, residual), NaN last: ``np.lexsort((r, sid))``, about 5x faster.

    A stable sort of complex keys ``sid + r·j`` is lexicographic; NaN is replaced by +inf because
    numpy sorts every complex NaN after all non-NaN keys, which would break the grouping.
    """
    nan = np.isnan(r)
    if nan.any() and np.isposinf(r).any():      # NaN must follow +inf: keep lexsort's exact order
        return np.lexsort((r, sid))
    key = np.empty(r.size, np.complex128)
    key.real = sid
    key.imag = np.where(nan, np.inf, r)
    return np.argsort(key, kind="stable")


def _lsf(batch: _Batch, xs: np.ndarray, hs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares ``h = h_mean + slope·x`` per extent; also ``sqrt(Σ g_k²)``."""
    i11, i12, i22 = _inverse_normal(batch, xs)
    g1 = i11[batch.sid] + i12[batch.sid] * xs
    g2 = i12[batch.sid] + i22[batch.sid] * xs
    return batch.sum(g1 * hs), batch.sum(g2 * hs), np.sqrt(batch.sum(g1 * g1))


def _inverse_normal(batch: _Batch, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(GᵀG)⁻¹ for G = [1, x]; a singular matrix gives inf/NaN, as in SlideRule."""
    a11 = batch.n.astype(np.float64)
    a12 = batch.sum(xs)
    a22 = batch.sum(xs * xs)
    det = 1.0 / ((a11 * a22) - (a12 * a12))
    return a22 * det, -a12 * det, a11 * det


def _bounds(iteration: int, batch: _Batch, r: np.ndarray, bg_density: np.ndarray,
            w_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """zmin, zmax and the background count N_bg of this pass."""
    if iteration == 0:
        zmin = r[batch.starts]
        zmax = r[batch.starts + batch.n - 1]
        return zmin, zmax, bg_density * (zmax - zmin)
    return -(w_prev / 2.0), w_prev / 2.0, bg_density * w_prev


def _robust_spread(batch: _Batch, r: np.ndarray, zmin: np.ndarray, zmax: np.ndarray,
                   n_bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Background-corrected robust spread sigma_r (ATBD §5.9) and the out-of-bounds mask."""
    nf = batch.n.astype(np.float64)
    bckgrd = n_bg / (zmax - zmin)
    n_sig = nf - n_bg
    low = n_sig <= 1
    i0, i1 = _percentile_indices(batch, r, zmin, bckgrd, n_sig)
    swap = i1 < i0
    # SlideRule's fallback: central values, with C truncation of the float positions
    f0 = np.where(swap, np.trunc(nf / 2.0 - n_sig / 4.0 + 0.5) - 1.0, i0)
    f1 = np.where(swap, np.trunc(nf / 2.0 + n_sig / 4.0 + 0.5), i1)
    inside = ~low & (f0 >= 0) & (f1 < nf)
    j0 = np.where(inside, f0, 0).astype(np.int64)
    j1 = np.where(inside, f1, 0).astype(np.int64)
    spread = (r[batch.starts + j1] - r[batch.starts + j0]) / RDE
    sigma_r = np.where(low, (zmax - zmin) / nf, np.where(inside, spread, 0.0))
    return sigma_r, ~low & ~inside


def _percentile_indices(batch: _Batch, r: np.ndarray, zmin: np.ndarray, bckgrd: np.ndarray,
                        n_sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SlideRule's i0 (first failing upward scan) and i1 (first failing downward scan) as floats."""
    sid = batch.sid
    j = (np.arange(r.size, dtype=np.int64) - batch.starts[sid]).astype(np.float64)
    level = (r - zmin[sid]) * bckgrd[sid]
    go_up = (((j + 1.0) - 0.5) + 1.0) < (0.25 * n_sig[sid] + level)
    go_down = (((j + 1.0) - 0.5) - 1.0) > (0.75 * n_sig[sid] + level)
    nf = batch.n.astype(np.float64)
    i0 = np.minimum.reduceat(np.where(go_up, nf[sid], j), batch.starts)
    i1 = np.maximum.reduceat(np.where(go_down, -1.0, j), batch.starts)
    return i0, i1


def _cmax(a, b):
    """C's ``MAX(a, b)``: ``a > b ? a : b`` (returns b when either is NaN)."""
    return np.where(a > b, a, b)


def _window_height(sigma_r: np.ndarray, slope32: np.ndarray, w_prev: np.ndarray,
                   s: FitSettings, stored=np.float32) -> np.ndarray:
    """New window height W (float32 as stored in the elevation record, or float64)."""
    slope = slope32.astype(np.float64)
    sigma_expected = np.sqrt(_SE1 + (SIGMA_BEAM * SIGMA_BEAM) * (slope * slope))
    sigma_r = np.where(sigma_r > s.sigma_r_max, s.sigma_r_max, sigma_r)
    w_new = _cmax(_cmax(s.H_min_win, 6.0 * sigma_expected), 6.0 * sigma_r)
    return _cmax(w_new, 0.75 * w_prev).astype(stored)


def _checks(batch: _Batch, keep: np.ndarray, xs: np.ndarray, iteration: int,
            s: FitSettings) -> tuple[np.ndarray, np.ndarray]:
    """The ordered stop tests; returns the flags to add and which extents go on."""
    n2 = np.add.reduceat(keep.astype(np.int64), batch.starts)
    x_min = np.minimum.reduceat(np.where(keep, xs, _DBL_MAX), batch.starts)
    x_max = np.maximum.reduceat(np.where(keep, xs, -_DBL_MAX), batch.starts)
    few = n2 < s.cnt
    short = ~few & ((x_max - x_min) < s.ats)
    changed = ~few & ~short & (n2 != batch.n)
    capped = changed & (iteration + 1 >= s.maxi)
    flags = (few * PFLAG_TOO_FEW_PHOTONS) | (short * PFLAG_SPREAD_TOO_SHORT) | (capped * PFLAG_MAX_ITERATIONS)
    return flags.astype(np.uint16), changed & ~capped


def _finish(done: _Batch, xs: np.ndarray, r: np.ndarray, fit, window, pflags, invalid, extras,
            out, stored=np.float32) -> None:
    """Write the results of extents whose loop stopped; ``done`` holds their final set S."""
    h_mean, slope32, y_sigma = fit
    e = done.ext
    rms = np.sqrt(done.sum(r * r) / done.n).astype(stored)
    h_sigma = rms * y_sigma.astype(stored)                # a float32 product in the p-series
    bad = invalid[e] & (stored == np.float32)             # the x-series keeps the values
    out["h_mean"][e] = h_mean
    out["dh_fit_dx"][e] = slope32
    out["n_fit_photons"][e] = done.n
    out["pflags"][e] = pflags[e]
    out["w_surface_window_final"][e] = window[e]
    out["rms_misfit"][e] = np.where(bad, np.float32(0), rms)
    out["h_sigma"][e] = np.where(bad, np.float32(0), h_sigma)
    out["fitted"][e] = True
    out["in_fit"][done.idx] = True
    if extras:
        _positions(done, xs, extras, out)


def _positions(done: _Batch, xs: np.ndarray, extras: dict[str, np.ndarray], out) -> None:
    """Centre values of the optional photon fields with the final LSF weights (lsf ``final``)."""
    i11, i12, _ = _inverse_normal(done, xs)
    g1 = i11[done.sid] + i12[done.sid] * xs
    e = done.ext
    for name, values in extras.items():
        v = values[done.idx].astype(np.float64)
        if name == "longitude":
            out[name][e] = _fit_longitude(done, g1, v)
        elif name == "time_ns":
            out[name][e] = _to_int64(done.sum(g1 * v))
        else:
            out[name][e] = done.sum(g1 * v).astype(values.dtype)


def _fit_longitude(done: _Batch, g1: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Fit longitudes, shifted to [0, 360) when the first photon of S is within 30° of ±180."""
    first = lon[done.starts]
    shift = (first < -150.0) | (first > 150.0)
    lon = np.where(shift[done.sid], np.fmod(lon + 360.0, 360.0), lon)
    fitted = done.sum(g1 * lon)
    return np.where(shift, np.fmod(fitted + 180.0, 360.0) - 180.0, fitted)


def _to_int64(v: np.ndarray) -> np.ndarray:
    """C's ``(int64_t)v`` on x86-64: truncation; INT64_MIN when not finite or out of range."""
    ok = np.isfinite(v) & (v >= -_TWO63) & (v < _TWO63)
    return np.where(ok, np.where(ok, v, 0.0).astype(np.int64), _INT64_MIN)
