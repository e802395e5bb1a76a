"""The ATL06-SR iterative line fit (SPEC §6), vectorised over extents in dense tiles.

SlideRule (``Atl06Dispatch::iterativeFitStage`` / ``lsf``) fits each extent on its own; here every
pass of the window loop works on many extents at once. Extents are grouped by photon count into
dense padded tiles, one row per extent: sorts and gathers run along rows, sums run slot after
slot over the transposed tile, for all extents of the tile at once.

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
  Tiles are sorted as packed integer keys (residual bits, slot number in the lowest bits); an
  extent whose sorted residuals do not strictly increase (a tie, keys that could not tell two
  residuals apart, a NaN or an infinity) is sorted again stably, so the order is always that of
  a stable sort.
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
_SIGN_BIT = np.uint64(1 << 63)
_OUTPUTS = ("h_mean", "dh_fit_dx", "n_fit_photons", "pflags", "w_surface_window_final", "rms_misfit", "h_sigma",
            "fitted", "in_fit")
_TILE_ENTRIES = 1 << 17          # slots per tile: large enough to amortise numpy call overheads
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
    double: bool = False,
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
        Further named photon columns (e.g. ancillary fields), fitted to the extent centre with the
        final LSF weights like ``latitude``; returned under their names (float32 fields give
        float32 values, others float64). Names of the outputs above are refused.
    photon : ndarray of int64, shape (N,), optional
        When given, the photon fields above are per photon (not per entry) and entry ``i`` is
        photon ``photon[i]``; they are only read at the photons of the final sets (any object
        with numpy fancy indexing will do).
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
    x32 = np.asarray(x, dtype=np.float64 if double else np.float32)
    h32 = np.asarray(h, dtype=np.float32)
    _check_layout(offsets, x32, h32)
    n_ext = offsets.size - 1
    fields = _fields(latitude, longitude, time_ns, y_atc, delta_time, extras, photon, x32.size)
    out = _empty_outputs(n_ext, x32.size, fields)
    with np.errstate(all="ignore"):
        bg_density = _background_density(n_ext, extent_length, velocity, background_rate)
        _Loop(offsets, x32, h32, bg_density, s, fields, out, np.float64 if double else np.float32).run()
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

    def at(self, index: np.ndarray) -> np.ndarray:
        """Values at the given photons (entries when there is no ``photon`` map), as float64."""
        if isinstance(self.values, np.ndarray):
            values = np.take(self.values, index)
        else:
            values = np.asarray(self.values[index])
        if self.dtype == np.float32:
            values = values.astype(np.float32, copy=False)
        return values.astype(np.float64, copy=False)     # a fresh array: the caller may write it


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
        if name in named or name in _OUTPUTS:
            raise ValueError(f"extras: {name!r} is a reserved output name")
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
    """R extents and their current photon sets S, one row per extent: slot j of extent r is ``[r, j]``.

    ``X``, ``H`` (float64) and ``E`` (entry index) hold S in SlideRule's current order; padding
    slots ``j >= n[r]`` hold ``x = h = 0`` and entry -1, and the last column is padding in every row.
    """

    def __init__(self, ext: np.ndarray, n: np.ndarray, X: np.ndarray, H: np.ndarray, E: np.ndarray):
        self.ext, self.n, self.X, self.H, self.E = ext, n, X, H, E
        self.pad = np.arange(X.shape[1])[None, :] >= n[:, None]


def _blocks(ext: np.ndarray, n: np.ndarray) -> list[np.ndarray]:
    """Extents grouped by width class, in blocks of at most ``_TILE_ENTRIES`` slots."""
    if len(ext) == 0:
        return []
    widths = _width_class(n)
    order = np.argsort(widths, kind="stable")
    cuts = np.flatnonzero(np.diff(widths[order])) + 1
    blocks = []
    for group in np.split(order, cuts):
        rows = max(1, _TILE_ENTRIES // int(n[group].max()))
        blocks += [group[a:a + rows] for a in range(0, len(group), rows)]
    return blocks


def _first_tiles(offsets: np.ndarray, x64: np.ndarray, h64: np.ndarray) -> list[_Tile]:
    """Tiles of the first pass: every non-empty extent, its photons in file order."""
    counts = np.diff(offsets)
    ext = np.flatnonzero(counts > 0)
    n = counts[ext]
    tiles = []
    for g in _blocks(ext, n):
        slot = np.arange(int(n[g].max()) + 1)[None, :]     # + 1: every row ends with padding
        E = np.where(slot < n[g][:, None], offsets[ext[g]][:, None] + slot, -1)   # x64[-1] = h64[-1] = 0
        tiles.append(_Tile(ext[g], n[g], np.take(x64, E), np.take(h64, E), E))
    return tiles


def _merge(tiles: list[_Tile]) -> list[_Tile]:
    """Small tiles of similar width packed together (fewer, fuller tiles for the next pass)."""
    small = [t for t in tiles if t.X.size < _TILE_ENTRIES // 2]
    if len(small) < 2:
        return tiles
    out = [t for t in tiles if t.X.size >= _TILE_ENTRIES // 2]
    small.sort(key=lambda t: t.X.shape[1])
    group: list[_Tile] = []
    for tile in [*small, None]:
        if group and (tile is None or tile.X.shape[1] > 1.25 * group[0].X.shape[1]
                      or (sum(len(t.n) for t in group) + len(tile.n)) * tile.X.shape[1] > _TILE_ENTRIES):
            out.append(_stack(group))
            group = []
        if tile is not None:
            group.append(tile)
    return out


def _stack(group: list[_Tile]) -> _Tile:
    if len(group) == 1:
        return group[0]
    width = max(t.X.shape[1] for t in group)
    rows = np.cumsum([0] + [len(t.n) for t in group])
    arrays = [np.zeros((rows[-1], width)), np.zeros((rows[-1], width)), np.full((rows[-1], width), -1, np.int64)]
    for t, a, b in zip(group, rows[:-1], rows[1:], strict=True):
        for dst, src in zip(arrays, (t.X, t.H, t.E), strict=True):
            dst[a:b, :src.shape[1]] = src
    return _Tile(np.concatenate([t.ext for t in group]), np.concatenate([t.n for t in group]), *arrays)


def slot_sums(values: np.ndarray) -> np.ndarray:
    """Sequential sums over slots (axis 0) of a ``(W, R)`` array, as a loop from +0.0 adds them.

    Reducing two or more columns of a C-ordered array along its first axis adds slot after slot
    into a vector of running sums. numpy sums pairwise along a contiguous reduced axis: a single
    column is accumulated instead, and another layout is copied to C order first.

    Parameters
    ----------
    values : ndarray of float64, shape (W, R)
        Slot ``j`` of column ``r`` at ``[j, r]``; padding slots hold exact zeros.

    Returns
    -------
    ndarray of float64, shape (R,)
        ``((0.0 + values[0, r]) + values[1, r]) + ...`` for every column ``r``.
    """
    if values.shape[1] >= 2:
        if not values.flags.c_contiguous:
            values = np.ascontiguousarray(values)
        return np.add.reduce(values, axis=0, initial=0.0)
    if values.shape[0] == 0:
        return np.zeros(values.shape[1])
    return np.add.accumulate(values, axis=0)[-1] + 0.0


def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[r, index[r, j]]`` for every row r (``np.take`` of flat indices: the fastest gather)."""
    base = (np.arange(values.shape[0]) * values.shape[1])[:, None]
    return np.take(values, index + base)


class _Loop:
    """SPEC §6's repeat-loop over tiles; extents that stop are written to ``out``."""

    def __init__(self, offsets, x32, h32, bg_density, s: FitSettings, fields: dict[str, _Field], out,
                 stored=np.float32):
        # exact widening, once; a trailing 0 is the padding slots' x and h
        self.x64 = np.append(x32.astype(np.float64), 0.0)
        self.h64 = np.append(h32.astype(np.float64), 0.0)
        self.offsets, self.bg_density, self.s, self.fields, self.out = offsets, bg_density, s, fields, out
        self.stored = stored             # the type slope and window are kept in between passes
        n_ext = offsets.size - 1
        self.window = np.zeros(n_ext, stored)
        self.pflags = np.zeros(n_ext, np.uint16)
        self.invalid = np.zeros(n_ext, bool)
        self.in_fit = np.zeros(x32.size + 1, bool)       # + 1: the padding entries' (-1) slot

    def run(self) -> None:
        tiles = _first_tiles(self.offsets, self.x64, self.h64)
        iteration = 0
        while tiles:
            tiles = _merge([nxt for tile in tiles if (nxt := self._pass(tile, iteration)) is not None])
            iteration += 1
        self.out["in_fit"][:] = self.in_fit[:-1]

    # -------------------------------------------------------------- one pass of one tile
    def _pass(self, tile: _Tile, iteration: int) -> _Tile | None:
        """One pass; returns the tile of the extents that go on (S in its new order)."""
        s = self.s
        X, H, pad, n, e = tile.X, tile.H, tile.pad, tile.n, tile.ext
        h_mean, slope, y_sigma = _lsf(X, H, n)
        r = X * slope[:, None]
        r += h_mean[:, None]
        np.subtract(H, r, out=r)                          # h - (h_mean + x·slope)
        np.copyto(r, np.inf, where=pad)
        order, ranked = _sort_residuals(r, pad, n)

        w_prev = self.window[e].astype(np.float64)
        if iteration == 0:
            zmin, zmax = ranked[:, 0], ranked[np.arange(len(n)), n - 1]
            n_bg = self.bg_density[e] * (zmax - zmin)
        else:
            zmin, zmax = -(w_prev / 2.0), w_prev / 2.0
            n_bg = self.bg_density[e] * w_prev
        sigma_r, oob = _robust_spread(ranked, pad, n, zmin, zmax, n_bg)
        self.pflags[e[oob]] |= PFLAG_OUT_OF_BOUNDS
        self.invalid[e[oob]] = True
        slope32 = slope.astype(self.stored)
        w_new = _window_height(sigma_r, slope32, w_prev, s, self.stored)
        self.window[e] = w_new

        half = (w_new.astype(np.float64) / 2.0)[:, None]
        keep = np.abs(r) < half                            # padding: r = inf
        n2, flags, go_on = _checks(keep, X, n, iteration, s)
        self.pflags[e] |= flags
        self.invalid[e] |= (flags & (PFLAG_TOO_FEW_PHOTONS | PFLAG_SPREAD_TOO_SHORT)) != 0

        stop = np.flatnonzero(~go_on)
        if stop.size:
            self._finish(tile, stop, order, ranked, (h_mean, slope32, y_sigma))
        going = np.flatnonzero(go_on)
        if not going.size:
            return None
        # the kept photons are a band of the sorted residuals, (-W/2, W/2): the next pass's S;
        # slots past it take the last column, padding in every row (x = h = 0)
        width = X.shape[1]
        low = np.count_nonzero(ranked <= -half, axis=1)[going]
        n2 = n2[going]
        slot = np.arange(int(n2.max()) + 1)[None, :]
        base = (going * width)[:, None]
        rank = np.take(order, base + np.minimum(low[:, None] + slot, width - 1))
        flat = base + np.where(slot < n2[:, None], rank, width - 1)
        return _Tile(e[going], n2, *(np.take(a, flat) for a in (X, H, tile.E)))

    # -------------------------------------------------------------- extents that stop
    def _finish(self, tile: _Tile, rows: np.ndarray, order: np.ndarray, ranked: np.ndarray, fit) -> None:
        """Write the results of extents whose loop stopped; S (this pass's set) in the sorted order."""
        h_mean, slope32, y_sigma = (v[rows] for v in fit)
        out, e, n = self.out, tile.ext[rows], tile.n[rows]
        width = ranked.shape[1]
        # slot-major (W, R) views of the sorted S: padding sorts last (x = 0, entry -1)
        flat = np.ascontiguousarray(order[rows].T)
        flat += (rows * width)[None, :]
        padT = np.arange(width)[:, None] >= n[None, :]
        rms = _rms(ranked[rows], n).astype(self.stored)
        h_sigma = rms * y_sigma.astype(self.stored)           # a float32 product in the p-series
        bad = self.invalid[e] & (self.stored == np.float32)   # the x-series keeps the values
        out["h_mean"][e] = h_mean
        out["dh_fit_dx"][e] = slope32
        out["n_fit_photons"][e] = n
        out["pflags"][e] = self.pflags[e]
        out["w_surface_window_final"][e] = self.window[e]
        out["rms_misfit"][e] = np.where(bad, np.float32(0), rms)
        out["h_sigma"][e] = np.where(bad, np.float32(0), h_sigma)
        out["fitted"][e] = True
        entries = np.take(tile.E, flat)
        self.in_fit[entries] = True                     # padding entries (-1) mark the spare slot
        if self.fields:
            self._positions(e, np.take(tile.X, flat), entries, padT, n)

    def _positions(self, e: np.ndarray, XT: np.ndarray, entries: np.ndarray, padT: np.ndarray,
                   n: np.ndarray) -> None:
        """Centre values of the photon fields with the final LSF weights (lsf ``final``)."""
        i11, i12, _ = _inverse_normal(XT, n)
        g1 = XT * i12[None, :]
        g1 += i11[None, :]
        photons = {}
        for name, f in self.fields.items():
            key = id(f.photon)
            if key not in photons:
                photons[key] = entries if f.photon is None else np.take(f.photon, entries)
            v = f.at(photons[key])
            if f.kind == "longitude":
                self.out[name][e] = _fit_longitude(g1, v, padT)
            else:
                np.multiply(v, g1, out=v)
                np.copyto(v, 0.0, where=padT)
                total = slot_sums(v)
                self.out[name][e] = _to_int64(total) if f.kind == "time_ns" else total.astype(f.dtype)


def _rms(ranked: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``sqrt(Σ r² / n)`` per row of sorted residuals, summed in that order (SlideRule's delta_sum)."""
    r = np.ascontiguousarray(ranked.T)
    np.copyto(r, 0.0, where=np.arange(r.shape[0])[:, None] >= n[None, :])
    np.multiply(r, r, out=r)
    return np.sqrt(slot_sums(r) / n)


def _lsf(X: np.ndarray, H: np.ndarray, n: np.ndarray):
    """Least squares ``h = h_mean + slope·x`` per extent (rows); also ``sqrt(Σ g_k²)``.

    Works slot-major (the transposed tile) so that sums run slot after slot. Padding slots
    (x = h = 0) add exact zeros: ``g·h`` is 0 there when g is finite; the weights of a degenerate
    extent (a singular matrix: inf/NaN) and ``g1²`` are zeroed explicitly.
    """
    XT, HT = np.ascontiguousarray(X.T), np.ascontiguousarray(H.T)
    padT = np.arange(XT.shape[0])[:, None] >= n[None, :]
    i11, i12, i22 = _inverse_normal(XT, n)
    g1 = XT * i12[None, :]
    g1 += i11[None, :]
    g2 = XT * i22[None, :]
    g2 += i12[None, :]
    if not (np.isfinite(i11).all() and np.isfinite(i12).all() and np.isfinite(i22).all()):
        np.copyto(g1, 0.0, where=padT)
        np.copyto(g2, 0.0, where=padT)
    h_mean = slot_sums(g1 * HT)
    np.multiply(g2, HT, out=g2)
    slope = slot_sums(g2)
    np.multiply(g1, g1, out=g1)
    np.copyto(g1, 0.0, where=padT)
    y_sigma = np.sqrt(slot_sums(g1))
    return h_mean, slope, y_sigma


def _inverse_normal(XT: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(GᵀG)⁻¹ for G = [1, x] (slot-major x, padding 0); a singular matrix gives inf/NaN, as in SlideRule."""
    a11 = n.astype(np.float64)
    a12 = slot_sums(XT)
    a22 = slot_sums(XT * XT)
    det = 1.0 / ((a11 * a22) - (a12 * a12))
    return a22 * det, -a12 * det, a11 * det


def _sort_residuals(r: np.ndarray, pad: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each extent's residual order (stable, NaN last, padding after) and its sorted residuals.

    Padding residuals are +inf. Rows are sorted by a packed 64-bit key: the residual's bits made
    order-preserving as an unsigned integer, with their lowest bits replaced by the slot number.
    numpy sorts such keys much faster than it argsorts floats, and equal residuals keep their slot
    order. The order is exact unless the replaced bits told two residuals apart, a row holds a tie
    (``-0.0`` and ``+0.0`` have different keys), an infinite residual or a NaN: each shows as a
    sorted row that does not strictly increase, and such rows are sorted again lexicographically
    (padding last, then NaN, then value), which is stable.
    """
    width = r.shape[1]
    bits = max(1, (width - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    key = r.view(np.uint64) >> np.uint64(63)
    np.negative(key, out=key)                        # all ones where the sign bit is set
    key |= _SIGN_BIT
    key ^= r.view(np.uint64)                         # orderable: negatives flipped, positives above them
    key &= ~low
    key |= np.arange(width, dtype=np.uint64)
    key.sort(axis=1)
    key &= low
    order = key.view(np.int64)
    ranked = _take(r, order)
    first, last = ranked[:, 0], ranked[np.arange(len(n)), np.maximum(n - 1, 0)]
    special = ~(last < np.inf) | ~(first > -np.inf) | np.any(np.diff(ranked, axis=1) <= 0, axis=1)
    if special.any():
        rows = np.flatnonzero(special)
        sub = r[rows]
        nan = np.isnan(sub)
        fixed = np.lexsort((np.where(nan, 0.0, sub), nan, pad[rows]), axis=1)
        order[rows] = fixed
        ranked[rows] = _take(sub, fixed)
    return order, ranked


def _robust_spread(ranked: np.ndarray, pad: np.ndarray, n: np.ndarray, zmin: np.ndarray, zmax: np.ndarray,
                   n_bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Background-corrected robust spread sigma_r (ATBD §5.9) and the out-of-bounds mask."""
    nf = n.astype(np.float64)
    bckgrd = n_bg / (zmax - zmin)
    n_sig = nf - n_bg
    low = n_sig <= 1
    i0, i1 = _percentile_indices(ranked, pad, n, zmin, bckgrd, n_sig)
    swap = i1 < i0
    # SlideRule's fallback: central values, with C truncation of the float positions
    f0 = np.where(swap, np.trunc(nf / 2.0 - n_sig / 4.0 + 0.5) - 1.0, i0)
    f1 = np.where(swap, np.trunc(nf / 2.0 + n_sig / 4.0 + 0.5), i1)
    inside = ~low & (f0 >= 0) & (f1 < nf)
    rows = np.arange(len(n))
    r0 = ranked[rows, np.where(inside, f0, 0).astype(np.int64)]
    r1 = ranked[rows, np.where(inside, f1, 0).astype(np.int64)]
    spread = (r1 - r0) / RDE
    sigma_r = np.where(low, (zmax - zmin) / nf, np.where(inside, spread, 0.0))
    return sigma_r, ~low & ~inside


def _percentile_indices(ranked: np.ndarray, pad: np.ndarray, n: np.ndarray, zmin: np.ndarray,
                        bckgrd: np.ndarray, n_sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SlideRule's i0 (first failing upward scan, or n) and i1 (first failing downward scan, or
    -1) as floats. Padding (+inf) never counts: i0 is capped at n, i1 looks at members only."""
    width, rows = ranked.shape[1], np.arange(len(n))
    j = np.arange(width, dtype=np.float64)[None, :]
    level = ranked - zmin[:, None]
    level *= bckgrd[:, None]
    up = (((j + 1.0) - 0.5) + 1.0) < (level + 0.25 * n_sig[:, None])
    i0 = np.argmin(up, axis=1)
    i0 = np.minimum(np.where(up[rows, i0], width, i0), n)
    level += 0.75 * n_sig[:, None]
    fail = ~((((j + 1.0) - 0.5) - 1.0) > level)
    fail &= ~pad
    top = width - 1 - np.argmax(fail[:, ::-1], axis=1)
    i1 = np.where(fail[rows, top], top, -1)
    return i0.astype(np.float64), i1.astype(np.float64)


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


def _checks(keep: np.ndarray, X: np.ndarray, n: np.ndarray, iteration: int,
            s: FitSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ordered stop tests; returns the photons kept, the flags to add and which extents go on."""
    n2 = np.count_nonzero(keep, axis=1)
    x_min = np.fmin.reduce(np.where(keep, X, _DBL_MAX), axis=1)   # C's MIN/MAX skip NaN x here
    x_max = np.fmax.reduce(np.where(keep, X, -_DBL_MAX), axis=1)
    few = n2 < s.cnt
    short = ~few & ((x_max - x_min) < s.ats)
    changed = ~few & ~short & (n2 != n)
    capped = changed & (iteration + 1 >= s.maxi)
    flags = (few * PFLAG_TOO_FEW_PHOTONS) | (short * PFLAG_SPREAD_TOO_SHORT) | (capped * PFLAG_MAX_ITERATIONS)
    return n2, flags.astype(np.uint16), changed & ~capped


def _fit_longitude(g1: np.ndarray, lon: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Fit longitudes, shifted to [0, 360) when the first photon of S is within 30° of ±180.

    ``lon`` (slot-major, a fresh array from :meth:`_Field.at`) is shifted in place.
    """
    first = lon[0]
    shift = (first < -150.0) | (first > 150.0)
    if shift.any():
        lon[:, shift] = np.fmod(lon[:, shift] + 360.0, 360.0)
    fitted = slot_sums(np.where(pad, 0.0, g1 * lon))
    return np.where(shift, np.fmod(fitted + 180.0, 360.0) - 180.0, fitted)


def _to_int64(v: np.ndarray) -> np.ndarray:
    """C's ``(int64_t)v`` on x86-64: truncation; INT64_MIN when not finite or out of range."""
    ok = np.isfinite(v) & (v >= -_TWO63) & (v < _TWO63)
    return np.where(ok, np.where(ok, v, 0.0).astype(np.int64), _INT64_MIN)
