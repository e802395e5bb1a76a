"""The ATL06-SR iterative line fit (SPEC §6), vectorised over extents in dense tiles.

SlideRule (``Atl06Dispatch::iterativeFitStage`` / ``lsf``) fits each extent on its own; here every
pass of the window loop works on many extents at once. Extents are grouped by photon count into
dense padded tiles, one column per extent and one row per photon slot (``(W, R)``: slot-major),
so every per-extent quantity is a reduction along the first axis, and every sort is along it too.

Fidelity notes (SlideRule HEAD, checked in its source):

* Photon ``x`` (centre-relative along-track), ``h`` and ``y_atc`` are float32; arithmetic is float64.
* The elevation record stores ``dh_fit_dx``, ``window_height``, ``rms_misfit``, ``h_sigma`` and
  ``y_atc`` as float32, and the loop reads them back from there: ``sigma_expected`` uses the
  float32 slope, and the window carried between passes (``0.75·W_prev``, ``N_bg = bg_density·W``,
  ``zmin/zmax = ∓W/2`` and the keep test ``|r| < W/2``) is the float32 window.
* Sums are sequential in the order SlideRule holds the photons (file order on the first pass,
  sorted by the previous pass's residuals afterwards): an accumulation along the slot axis adds
  slot after slot, left to right, for every extent (vectorised over extents; never pairwise);
  padding slots add exact zeros.
* Residual ties are broken stably (previous order); SlideRule's Hoare quicksort is not stable, so
  the order of exactly tied photons, and hence the last bit of later sums, may differ from it.
  Tiles are sorted with numpy's (unstable, vectorised) argsort; an extent whose residuals hold a
  tie, a NaN or +inf is sorted again stably, so the order is always that of a stable sort.
* ``MAX(a, b)`` is C's ``a > b ? a : b``, also for NaN (a degenerate pass yields ``W = 0.75·W_prev``).
"""

from __future__ import annotations

from collections.abc import Mapping
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
_TILE_ENTRIES = 1 << 18          # slots per tile (bounds the temporaries: ~2 MB each)
_WIDTHS_PER_OCTAVE = 4           # tile widths 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, ...


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
    extras: Mapping[str, np.ndarray] | None = None,
    photon: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Fit SlideRule's ATL06-SR line to every extent of a beam.

    Parameters
    ----------
    offsets : ndarray of int64, shape (E+1,)
        CSR boundaries: the photons of extent ``e`` are entries ``offsets[e]:offsets[e+1]`` of the
        per-entry arrays, in file order.
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
    latitude, longitude, delta_time : ndarray of float64, optional
        Photon positions/times, fitted to the extent centre with the final LSF weights.
    time_ns : ndarray of int64, optional
        Photon times in ns; the fit is truncated to int64 (``INT64_MIN`` when not finite or out of
        range, as x86-64 converts).
    y_atc : ndarray of float32, optional
        Across-track distance (m).
    extras : mapping of str to ndarray, optional
        More photon fields fitted the same way (e.g. ancillary fields); float32 fields give
        float32 centre values, others float64.
    photon : ndarray of int64, shape (N,), optional
        When given, the photon fields above are per photon (not per entry) and entry ``i`` is
        photon ``photon[i]``; they are only read at the photons of the final sets (any object
        with numpy fancy indexing will do).

    Returns
    -------
    dict of str to ndarray
        Per extent (length E): ``h_mean`` f8, ``dh_fit_dx`` f4, ``n_fit_photons`` i4, ``pflags`` u2,
        ``w_surface_window_final`` f4, ``rms_misfit`` f4, ``h_sigma`` f4, ``fitted`` bool and, for
        each photon field given, its centre value (``latitude``/``longitude``/``delta_time`` f8,
        ``time_ns`` i8, ``y_atc`` f4, extras as said). Per entry (length N): ``in_fit`` bool,
        membership of the final set. Empty extents are not fitted: ``fitted`` False, floats NaN,
        counts/flags/times 0.

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
    x32 = np.asarray(x, dtype=np.float32)
    h32 = np.asarray(h, dtype=np.float32)
    _check_layout(offsets, x32, h32)
    n_ext = offsets.size - 1
    fields = _fields(latitude, longitude, time_ns, y_atc, delta_time, extras, photon, x32.size)
    out = _empty_outputs(n_ext, x32.size, fields)
    with np.errstate(all="ignore"):
        bg_density = _background_density(n_ext, extent_length, velocity, background_rate)
        _Loop(offsets, x32, h32, bg_density, s, fields, out).run()
    return out


def _check_layout(offsets: np.ndarray, x: np.ndarray, h: np.ndarray) -> None:
    if offsets.ndim != 1 or offsets.size < 1:
        raise ValueError("offsets must be a 1-D array of length E+1 >= 1")
    if np.any(np.diff(offsets) < 0) or offsets[0] < 0 or offsets[-1] > x.size:
        raise ValueError("offsets must be non-decreasing and within the photon arrays")
    if x.shape != h.shape or x.ndim != 1:
        raise ValueError("x and h must be 1-D arrays of the same length")


@dataclass(frozen=True)
class _Field:
    """A photon field fitted to the extent centre: where its values are and how the result is typed."""

    values: object               # per entry, or per photon with ``photon``
    photon: np.ndarray | None
    kind: str                    # "float", "longitude", "time_ns"
    dtype: np.dtype              # of the centre value

    def at(self, entries: np.ndarray) -> np.ndarray:
        """Values of the given entries, as float64 (what the weighted sum adds)."""
        index = entries if self.photon is None else self.photon[entries]
        values = np.asarray(self.values[index])
        if self.dtype == np.float32:
            values = values.astype(np.float32, copy=False)
        return values.astype(np.float64)


def _fields(latitude, longitude, time_ns, y_atc, delta_time, extras, photon, n_entries) -> dict[str, _Field]:
    photon = None if photon is None else np.asarray(photon, dtype=np.int64)
    if photon is not None and photon.shape != (n_entries,):
        raise ValueError("photon must give one photon index per entry")
    named = {"latitude": (latitude, "float", np.float64), "longitude": (longitude, "longitude", np.float64),
             "time_ns": (time_ns, "time_ns", np.int64), "y_atc": (y_atc, "float", np.float32),
             "delta_time": (delta_time, "float", np.float64)}
    fields = {}
    for name, (values, kind, dtype) in named.items():
        if values is not None:
            fields[name] = _Field(values if photon is not None else np.asarray(values), photon, kind,
                                  np.dtype(dtype))
    for name, values in (extras or {}).items():
        if name in fields:
            raise ValueError(f"extra field {name!r} is already fitted")
        dtype = np.float32 if getattr(values, "dtype", None) == np.float32 else np.float64
        fields[name] = _Field(values if photon is not None else np.asarray(values), photon, "float",
                              np.dtype(dtype))
    return fields


def _empty_outputs(n_ext: int, n_ph: int, fields: dict[str, _Field]) -> dict[str, np.ndarray]:
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
    for name, f in fields.items():
        out[name] = np.zeros(n_ext, np.int64) if f.kind == "time_ns" else np.full(n_ext, np.nan, f.dtype)
    return out


def _background_density(n_ext: int, extent_length, velocity, background_rate) -> np.ndarray:
    """Background photons per metre of height: ``(L·PRF/v)·rate/(c/2)`` (SPEC §6)."""
    length = np.broadcast_to(np.asarray(extent_length, np.float64), (n_ext,))
    speed = np.broadcast_to(np.asarray(velocity, np.float32), (n_ext,)).astype(np.float64)
    rate = np.broadcast_to(np.asarray(background_rate, np.float64), (n_ext,))
    pulses = (length * PRF) / speed
    return pulses * rate / _HALF_C


# ---------------------------------------------------------------------- tiles
def _width_class(n: np.ndarray) -> np.ndarray:
    """Tile width for extents of ``n`` photons: n rounded up to 4 steps per octave (<= 25 % padding)."""
    n = np.maximum(n, 1)
    octave = np.floor(np.log2(n)).astype(np.int64)
    step = np.maximum(1, (1 << np.maximum(octave, 0)) // _WIDTHS_PER_OCTAVE)
    return -(-n // step) * step


class _Tile:
    """Extents ``ext`` (R) with their current photon sets S, slot-major: ``E[j, r]`` is entry j of S_r.

    Slots at ``j >= n[r]`` are padding (``E`` = 0, masked out).
    """

    def __init__(self, ext: np.ndarray, n: np.ndarray, entries: np.ndarray):
        self.ext, self.n, self.E = ext, n, entries
        self.width = entries.shape[0]
        self.member = np.arange(self.width)[:, None] < n[None, :]


def _tiles(ext: np.ndarray, n: np.ndarray, source: np.ndarray, first: np.ndarray) -> list[_Tile]:
    """Tiles of extents grouped by photon count; S_r is ``source[first[r] + j]`` for j < n[r]."""
    if len(ext) == 0:
        return []
    widths = _width_class(n)
    order = np.argsort(widths, kind="stable")
    widths = widths[order]
    cuts = np.flatnonzero(np.diff(widths)) + 1
    tiles = []
    for group in np.split(order, cuts):
        width = int(n[group].max())
        rows = max(1, _TILE_ENTRIES // width)
        for a in range(0, len(group), rows):
            g = group[a:a + rows]
            slot = np.arange(width)[:, None]
            member = slot < n[g][None, :]
            index = np.where(member, first[g][None, :] + slot, 0)
            tiles.append(_Tile(ext[g], n[g], np.where(member, source[index], 0)))
    return tiles


def _sum(values: np.ndarray, scratch: bool = True) -> np.ndarray:
    """Sequential sums over slots (axis 0) of a ``(W, R)`` tile, as a loop from +0.0 adds them.

    ``np.add.accumulate`` is sequential whatever the layout (a reduction may sum pairwise); the
    final ``+ 0.0`` turns an all ``-0.0`` sum into ``+0.0`` as a loop from ``0.0`` would.
    ``scratch`` lets it overwrite ``values``.
    """
    if values.shape[0] == 0:
        return np.zeros(values.shape[1])
    return np.add.accumulate(values, axis=0, out=values if scratch else None)[-1] + 0.0


def _masked(values: np.ndarray, member: np.ndarray) -> np.ndarray:
    np.copyto(values, 0.0, where=~member)
    return values


class _Loop:
    """SPEC §6's repeat-loop over tiles; extents that stop are written to ``out``."""

    def __init__(self, offsets, x32, h32, bg_density, s: FitSettings, fields: dict[str, _Field], out):
        self.x64, self.h64 = x32.astype(np.float64), h32.astype(np.float64)  # exact widening, once
        self.offsets, self.bg_density, self.s, self.fields, self.out = offsets, bg_density, s, fields, out
        n_ext = offsets.size - 1
        self.window = np.zeros(n_ext, np.float32)
        self.pflags = np.zeros(n_ext, np.uint16)
        self.invalid = np.zeros(n_ext, bool)

    def run(self) -> None:
        counts = np.diff(self.offsets)
        ext = np.flatnonzero(counts > 0)
        entries = np.arange(self.offsets[-1], dtype=np.int64)
        tiles = _tiles(ext, counts[ext], entries, self.offsets[ext])
        iteration = 0
        while tiles:
            going = [self._pass(tile, iteration) for tile in tiles]
            going = [g for g in going if g is not None]
            tiles = []
            if going:
                ext = np.concatenate([g[0] for g in going])
                n = np.concatenate([g[1] for g in going])
                flat = np.concatenate([g[2] for g in going])
                first = np.concatenate(([0], np.cumsum(n)[:-1]))
                tiles = _tiles(ext, n, flat, first)
            iteration += 1

    # -------------------------------------------------------------- one pass of one tile
    def _pass(self, tile: _Tile, iteration: int):
        """One pass; returns the extents that go on (ids, counts, their S in the new order, flat)."""
        s = self.s
        E, member, n = tile.E, tile.member, tile.n
        X = self.x64[E]
        H = self.h64[E]
        X[~member] = 0.0
        H[~member] = 0.0
        h_mean, slope, y_sigma = _lsf(X, H, member, n)
        r = H - (h_mean + X * slope)

        order, ranked = _sort_residuals(r, member, n)
        w_prev = self.window[tile.ext].astype(np.float64)
        if iteration == 0:
            zmin = ranked[0]
            zmax = np.take_along_axis(ranked, (n - 1)[None, :], axis=0)[0]
            n_bg = self.bg_density[tile.ext] * (zmax - zmin)
        else:
            zmin, zmax = -(w_prev / 2.0), w_prev / 2.0
            n_bg = self.bg_density[tile.ext] * w_prev
        sigma_r, oob = _robust_spread(ranked, member, n, zmin, zmax, n_bg)
        e = tile.ext
        self.pflags[e[oob]] |= PFLAG_OUT_OF_BOUNDS
        self.invalid[e[oob]] = True
        slope32 = slope.astype(np.float32)
        w_new = _window_height(sigma_r, slope32, w_prev, s)
        self.window[e] = w_new

        half = (w_new.astype(np.float64) / 2.0)[None, :]
        keep = (np.abs(r) < half) & member
        flags, go_on = _checks(keep, X, n, iteration, s)
        self.pflags[e] |= flags
        self.invalid[e] |= (flags & (PFLAG_TOO_FEW_PHOTONS | PFLAG_SPREAD_TOO_SHORT)) != 0

        stop = np.flatnonzero(~go_on)
        if stop.size:
            self._finish(tile, stop, order, ranked, (h_mean, slope32, y_sigma))
        going = np.flatnonzero(go_on)
        if not going.size:
            return None
        # the kept photons are a band of the sorted residuals: (-W/2, W/2)
        low = np.sum((ranked[:, going] <= -half[:, going]) & member[:, going], axis=0)
        n2 = np.sum(keep[:, going], axis=0)
        slot = np.arange(int(n2.max()))[:, None]
        inside = slot < n2[None, :]
        pick = np.where(inside, low[None, :] + slot, 0)
        rank_order = np.take_along_axis(order[:, going], pick, axis=0)
        kept = np.take_along_axis(E[:, going], rank_order, axis=0)
        return e[going], n2, kept.T[inside.T]

    # -------------------------------------------------------------- extents that stop
    def _finish(self, tile: _Tile, rows: np.ndarray, order: np.ndarray, ranked: np.ndarray, fit) -> None:
        """Write the results of extents whose loop stopped; S (this pass's set) in the sorted order."""
        h_mean, slope32, y_sigma = (v[rows] for v in fit)
        out, e = self.out, tile.ext[rows]
        n = tile.n[rows]
        member = tile.member[:, rows]
        r = _masked(ranked[:, rows].copy(), member)
        rms = np.sqrt(_sum(r * r) / n).astype(np.float32)
        h_sigma = rms * y_sigma.astype(np.float32)            # float32 product, as in SlideRule
        bad = self.invalid[e]
        out["h_mean"][e] = h_mean
        out["dh_fit_dx"][e] = slope32
        out["n_fit_photons"][e] = n
        out["pflags"][e] = self.pflags[e]
        out["w_surface_window_final"][e] = self.window[e]
        out["rms_misfit"][e] = np.where(bad, np.float32(0), rms)
        out["h_sigma"][e] = np.where(bad, np.float32(0), h_sigma)
        out["fitted"][e] = True
        entries = np.take_along_axis(tile.E[:, rows], order[:, rows], axis=0)
        out["in_fit"][entries[member]] = True
        if self.fields:
            self._positions(e, entries, member, n)

    def _positions(self, e: np.ndarray, entries: np.ndarray, member: np.ndarray, n: np.ndarray) -> None:
        """Centre values of the photon fields with the final LSF weights (lsf ``final``)."""
        X = _masked(self.x64[entries], member)
        i11, i12, _ = _inverse_normal(X, n)
        g1 = i11[None, :] + i12[None, :] * X
        flat = entries[member]
        for name, f in self.fields.items():
            v = np.zeros(entries.shape)
            v[member] = f.at(flat)
            if f.kind == "longitude":
                self.out[name][e] = _fit_longitude(g1, v, member)
            else:
                total = _sum(_masked(g1 * v, member))
                self.out[name][e] = _to_int64(total) if f.kind == "time_ns" else total.astype(f.dtype)


def _lsf(X: np.ndarray, H: np.ndarray, member: np.ndarray, n: np.ndarray):
    """Least squares ``h = h_mean + slope·x`` per extent; also ``sqrt(Σ g_k²)``."""
    i11, i12, i22 = _inverse_normal(X, n)
    g1 = i11[None, :] + i12[None, :] * X
    g2 = i12[None, :] + i22[None, :] * X
    h_mean = _sum(_masked(g1 * H, member))
    slope = _sum(_masked(g2 * H, member))
    y_sigma = np.sqrt(_sum(_masked(g1 * g1, member)))
    return h_mean, slope, y_sigma


def _inverse_normal(X: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(GᵀG)⁻¹ for G = [1, x] (padding x = 0); a singular matrix gives inf/NaN, as in SlideRule."""
    a11 = n.astype(np.float64)
    a12 = _sum(X, scratch=False)
    a22 = _sum(X * X)
    det = 1.0 / ((a11 * a22) - (a12 * a12))
    return a22 * det, -a12 * det, a11 * det


def _sort_residuals(r: np.ndarray, member: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each extent's residual order (stable, NaN last, padding after) and its sorted residuals."""
    key = np.where(member, r, np.inf)
    order = np.argsort(key, axis=0)
    ranked = np.take_along_axis(key, order, axis=0)
    # a tie, +inf or NaN needs the stable order of a lexicographic sort (padding, NaN, value)
    last = np.take_along_axis(ranked, np.maximum(n - 1, 0)[None, :], axis=0)[0]
    special = ~(last < np.inf) | np.any((ranked[1:] == ranked[:-1]) & member[1:], axis=0)
    if special.any():
        cols = np.flatnonzero(special)
        sub, pad = key[:, cols], ~member[:, cols]
        nan = np.isnan(r[:, cols]) & ~pad
        fixed = np.lexsort((np.where(nan, 0.0, sub), nan, pad), axis=0)
        order[:, cols] = fixed
        ranked[:, cols] = np.take_along_axis(np.where(nan, np.nan, sub), fixed, axis=0)
    return order, ranked


def _robust_spread(ranked: np.ndarray, member: np.ndarray, n: np.ndarray, zmin: np.ndarray, zmax: np.ndarray,
                   n_bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Background-corrected robust spread sigma_r (ATBD §5.9) and the out-of-bounds mask."""
    nf = n.astype(np.float64)
    bckgrd = n_bg / (zmax - zmin)
    n_sig = nf - n_bg
    low = n_sig <= 1
    i0, i1 = _percentile_indices(ranked, member, nf, zmin, bckgrd, n_sig)
    swap = i1 < i0
    # SlideRule's fallback: central values, with C truncation of the float positions
    f0 = np.where(swap, np.trunc(nf / 2.0 - n_sig / 4.0 + 0.5) - 1.0, i0)
    f1 = np.where(swap, np.trunc(nf / 2.0 + n_sig / 4.0 + 0.5), i1)
    inside = ~low & (f0 >= 0) & (f1 < nf)
    j0 = np.where(inside, f0, 0).astype(np.int64)
    j1 = np.where(inside, f1, 0).astype(np.int64)
    r0 = np.take_along_axis(ranked, j0[None, :], axis=0)[0]
    r1 = np.take_along_axis(ranked, j1[None, :], axis=0)[0]
    spread = (r1 - r0) / RDE
    sigma_r = np.where(low, (zmax - zmin) / nf, np.where(inside, spread, 0.0))
    return sigma_r, ~low & ~inside


def _percentile_indices(ranked: np.ndarray, member: np.ndarray, nf: np.ndarray, zmin: np.ndarray,
                        bckgrd: np.ndarray, n_sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SlideRule's i0 (first failing upward scan) and i1 (first failing downward scan) as floats."""
    j = np.arange(ranked.shape[0], dtype=np.float64)[:, None]
    level = (ranked - zmin[None, :]) * bckgrd[None, :]
    stop_up = ~((((j + 1.0) - 0.5) + 1.0) < (0.25 * n_sig[None, :] + level)) | ~member
    stop_down = ~((((j + 1.0) - 0.5) - 1.0) > (0.75 * n_sig[None, :] + level)) & member
    i0 = np.where(stop_up.any(axis=0), np.argmax(stop_up, axis=0), nf)
    top = stop_down.shape[0] - 1 - np.argmax(stop_down[::-1], axis=0)
    i1 = np.where(stop_down.any(axis=0), top, -1)
    return i0.astype(np.float64), i1.astype(np.float64)


def _cmax(a, b):
    """C's ``MAX(a, b)``: ``a > b ? a : b`` (returns b when either is NaN)."""
    return np.where(a > b, a, b)


def _window_height(sigma_r: np.ndarray, slope32: np.ndarray, w_prev: np.ndarray,
                   s: FitSettings) -> np.ndarray:
    """New window height W (float32, as stored in the elevation record)."""
    slope = slope32.astype(np.float64)
    sigma_expected = np.sqrt(_SE1 + (SIGMA_BEAM * SIGMA_BEAM) * (slope * slope))
    sigma_r = np.where(sigma_r > s.sigma_r_max, s.sigma_r_max, sigma_r)
    w_new = _cmax(_cmax(s.H_min_win, 6.0 * sigma_expected), 6.0 * sigma_r)
    return _cmax(w_new, 0.75 * w_prev).astype(np.float32)


def _checks(keep: np.ndarray, X: np.ndarray, n: np.ndarray, iteration: int,
            s: FitSettings) -> tuple[np.ndarray, np.ndarray]:
    """The ordered stop tests; returns the flags to add and which extents go on."""
    n2 = np.sum(keep, axis=0)
    x_min = np.min(np.where(keep, X, _DBL_MAX), axis=0)
    x_max = np.max(np.where(keep, X, -_DBL_MAX), axis=0)
    few = n2 < s.cnt
    short = ~few & ((x_max - x_min) < s.ats)
    changed = ~few & ~short & (n2 != n)
    capped = changed & (iteration + 1 >= s.maxi)
    flags = (few * PFLAG_TOO_FEW_PHOTONS) | (short * PFLAG_SPREAD_TOO_SHORT) | (capped * PFLAG_MAX_ITERATIONS)
    return flags.astype(np.uint16), changed & ~capped


def _fit_longitude(g1: np.ndarray, lon: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Fit longitudes, shifted to [0, 360) when the first photon of S is within 30° of ±180."""
    first = lon[0]
    shift = (first < -150.0) | (first > 150.0)
    lon = np.where(shift[None, :], np.fmod(lon + 360.0, 360.0), lon)
    fitted = _sum(_masked(g1 * lon, member))
    return np.where(shift, np.fmod(fitted + 180.0, 360.0) - 180.0, fitted)


def _to_int64(v: np.ndarray) -> np.ndarray:
    """C's ``(int64_t)v`` on x86-64: truncation; INT64_MIN when not finite or out of range."""
    ok = np.isfinite(v) & (v >= -_TWO63) & (v < _TWO63)
    return np.where(ok, np.where(ok, v, 0.0).astype(np.int64), _INT64_MIN)
