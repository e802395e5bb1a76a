"""What a compiled fit would buy: SlideRule's ATL06-SR fit as a per-extent numba kernel, timed against
the package's numpy tiles and checked bit for bit (issue 11; a measurement aid, not part of the package).

The project keeps its science in numpy (DEVELOPERS.md); this kernel exists to put a number on that
choice. It follows ``icesat2sr.science.fit`` step by step for the p-series with the photon fields of
an ATL06-SR row (no ancillary extras, no x-series arithmetic), one extent at a time in SlideRule's own
loop order, so every sum adds in the same order and every rounding is the same. Needs numba
(``.venv/bin/pip install numba``: it is in no lock file, so a fresh ``make setup`` goes without it)::

    .venv/bin/python tools/numba_fit.py [GRANULE.h5]        # default: the bench granule (make bench)

It prints whether every output column is identical, the fit's CPU seconds both ways, and in-process
ATL06-SR (recommended parameters) with each fit, beside SlideRule's C++ when ``SR_ROOT`` has it built.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import numba as nb
import numpy as np

from icesat2sr import bench
from icesat2sr.engine import process_granule, steps
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.request.timeutil import ATLAS_SDP_EPOCH_GPS, GPS_TO_UNIX
from icesat2sr.science import fit

_SB2 = fit.SIGMA_BEAM * fit.SIGMA_BEAM
_DBL_MAX = float(np.finfo(np.float64).max)
_INT64_MIN = int(np.iinfo(np.int64).min)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _cmax(a, b):
    return a if a > b else b


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _inverse_normal(xs, n):
    """(GᵀG)⁻¹ for G = [1, x] over the first n photons, summed in their order (fit._inverse_normal)."""
    a12 = 0.0
    a22 = 0.0
    for k in range(n):
        a12 += xs[k]
        a22 += xs[k] * xs[k]
    det = 1.0 / ((np.float64(n) * a22) - (a12 * a12))
    return a22 * det, -a12 * det, np.float64(n) * det


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _lsf(xs, hs, n):
    """h_mean, slope, y_sigma of the first n photons, summed in their order."""
    i11, i12, i22 = _inverse_normal(xs, n)
    h_mean = 0.0
    slope = 0.0
    ys = 0.0
    for k in range(n):
        g1 = xs[k] * i12 + i11
        h_mean += g1 * hs[k]
        slope += (xs[k] * i22 + i12) * hs[k]
        ys += g1 * g1
    return h_mean, slope, math.sqrt(ys)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _sort(r, n, keys, ranked, order, nearly_sorted):
    """Stable order of r[:n] (packed keys as the tiles sort them; a tie or NaN falls back to mergesort)."""
    bits = 1
    while (1 << bits) < n:
        bits += 1
    low = np.uint64((1 << bits) - 1)
    for k in range(n):
        u = r[k:k + 1].view(np.uint64)[0]
        u = ~u if u >> np.uint64(63) else u | np.uint64(1 << 63)
        keys[k] = (u & ~low) | np.uint64(k)
    if nearly_sorted:      # S is in the previous pass's residual order: insertion sort is ~linear
        for k in range(1, n):
            key = keys[k]
            j = k - 1
            while j >= 0 and keys[j] > key:
                keys[j + 1] = keys[j]
                j -= 1
            keys[j + 1] = key
    else:
        keys[:n].sort()
    strict = True
    for k in range(n):
        order[k] = np.int64(keys[k] & low)
        ranked[k] = r[order[k]]
        if k > 0 and not (ranked[k] > ranked[k - 1]):
            strict = False
    if not strict:
        order[:n] = np.argsort(r[:n], kind="mergesort")
        for k in range(n):
            ranked[k] = r[order[k]]


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _spread(ranked, n, zmin, zmax, n_bg):
    """sigma_r and the out-of-bounds test (fit._robust_spread for one extent)."""
    nf = np.float64(n)
    bckgrd = n_bg / (zmax - zmin)
    n_sig = nf - n_bg
    low = n_sig <= 1
    i0 = n
    for j in range(n):
        if not ((((j + 1.0) - 0.5) + 1.0) < ((ranked[j] - zmin) * bckgrd + 0.25 * n_sig)):
            i0 = j
            break
    i1 = -1
    for j in range(n - 1, -1, -1):
        if not ((((j + 1.0) - 0.5) - 1.0) > ((ranked[j] - zmin) * bckgrd + 0.75 * n_sig)):
            i1 = j
            break
    f0, f1 = np.float64(i0), np.float64(i1)
    if i1 < i0:
        f0 = math.trunc(nf / 2.0 - n_sig / 4.0 + 0.5) - 1.0
        f1 = math.trunc(nf / 2.0 + n_sig / 4.0 + 0.5)
    inside = (not low) and f0 >= 0 and f1 < nf
    if low:
        return (zmax - zmin) / nf, False
    if inside:
        return (ranked[int(f1)] - ranked[int(f0)]) / fit.RDE, False
    return 0.0, True


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _centre(S, xs, n, photon, lat, lon, dtime, yatc, out_f8, out_i8, out_f4, e):
    """Latitude, longitude, time_ns, y_atc, delta_time of extent e with the final LSF weights."""
    j11, j12, _ = _inverse_normal(xs, n)
    first = lon[photon[S[0]]]
    shift = first < -150.0 or first > 150.0
    s_lat = s_lon = s_time = s_y = s_dt = 0.0
    for k in range(n):
        p = photon[S[k]]
        g1 = xs[k] * j12 + j11
        s_lat += g1 * lat[p]
        s_lon += g1 * (np.fmod(lon[p] + 360.0, 360.0) if shift else lon[p])
        ns = np.int64((((dtime[p] + ATLAS_SDP_EPOCH_GPS) + GPS_TO_UNIX) - 18.0) * 1e9)
        s_time += g1 * np.float64(ns)
        s_y += g1 * np.float64(yatc[p])
        s_dt += g1 * dtime[p]
    out_f8[0, e] = s_lat
    out_f8[1, e] = np.fmod(s_lon + 180.0, 360.0) - 180.0 if shift else s_lon
    out_f8[2, e] = s_dt
    ok = math.isfinite(s_time) and -9.223372036854775808e18 <= s_time < 9.223372036854775808e18
    out_i8[e] = np.int64(s_time) if ok else _INT64_MIN
    out_f4[e] = np.float32(s_y)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _kernel(offsets, x32, h32, bg_density, maxi, h_min_win, sigma_r_max, cnt, ats,
            photon, lat, lon, dtime, yatc, f8, f4, n_fit, pflags_out, fitted, in_fit, out_f8, out_i8, out_f4):
    widest = 0
    for e in range(offsets.size - 1):
        widest = max(widest, offsets[e + 1] - offsets[e])
    S, S2, order = np.empty(widest, np.int64), np.empty(widest, np.int64), np.empty(widest, np.int64)
    r, ranked, xs, hs, xs2, hs2 = (np.empty(widest), np.empty(widest), np.empty(widest), np.empty(widest),
                                   np.empty(widest), np.empty(widest))
    keys = np.empty(widest, np.uint64)
    for e in range(offsets.size - 1):
        n = offsets[e + 1] - offsets[e]
        if n == 0:
            continue
        for k in range(n):
            S[k] = offsets[e] + k
            xs[k] = np.float64(x32[S[k]])
            hs[k] = np.float64(h32[S[k]])
        window = np.float32(0.0)
        pflags = 0
        invalid = False
        iteration = 0
        while True:
            h_mean, slope, y_sigma = _lsf(xs, hs, n)
            for k in range(n):
                r[k] = hs[k] - (xs[k] * slope + h_mean)
            _sort(r, n, keys, ranked, order, iteration > 0)
            for k in range(n):
                S2[k] = S[order[k]]
                xs2[k] = xs[order[k]]
                hs2[k] = hs[order[k]]
            w_prev = np.float64(window)
            if iteration == 0:
                zmin, zmax = ranked[0], ranked[n - 1]
                n_bg = bg_density[e] * (zmax - zmin)
            else:
                zmin, zmax = -(w_prev / 2.0), w_prev / 2.0
                n_bg = bg_density[e] * w_prev
            sigma_r, out_of_bounds = _spread(ranked, n, zmin, zmax, n_bg)
            if out_of_bounds:
                pflags |= fit.PFLAG_OUT_OF_BOUNDS
                invalid = True
            slope32 = np.float32(slope)
            sigma_expected = math.sqrt(fit._SE1 + _SB2 * (np.float64(slope32) * np.float64(slope32)))
            sigma_r = sigma_r_max if sigma_r > sigma_r_max else sigma_r
            w_new = _cmax(_cmax(h_min_win, 6.0 * sigma_expected), 6.0 * sigma_r)
            window = np.float32(_cmax(w_new, 0.75 * w_prev))
            half = np.float64(window) / 2.0
            n2 = below = 0
            x_min, x_max = _DBL_MAX, -_DBL_MAX
            for k in range(n):
                below += ranked[k] <= -half
                if abs(ranked[k]) < half:
                    n2 += 1
                    if xs2[k] < x_min:
                        x_min = xs2[k]
                    if xs2[k] > x_max:
                        x_max = xs2[k]
            few = n2 < cnt
            short = (not few) and (x_max - x_min) < ats
            changed = (not few) and (not short) and n2 != n
            capped = changed and iteration + 1 >= maxi
            pflags |= (fit.PFLAG_TOO_FEW_PHOTONS * few) | (fit.PFLAG_SPREAD_TOO_SHORT * short) \
                | (fit.PFLAG_MAX_ITERATIONS * capped)
            invalid |= few or short
            if changed and not capped:
                for k in range(n2):
                    S[k] = S2[below + k]
                    xs[k] = xs2[below + k]
                    hs[k] = hs2[below + k]
                n = n2
                iteration += 1
                continue
            squares = 0.0
            for k in range(n):
                squares += ranked[k] * ranked[k]
            rms = np.float32(math.sqrt(squares / n))
            f8[e] = h_mean
            f4[0, e], f4[1, e] = slope32, window
            f4[2, e] = np.float32(0) if invalid else rms
            f4[3, e] = np.float32(0) if invalid else rms * np.float32(y_sigma)
            n_fit[e], pflags_out[e], fitted[e] = n, pflags, True
            for k in range(n):
                in_fit[S2[k]] = True
            _centre(S2, xs2, n, photon, lat, lon, dtime, yatc, out_f8, out_i8, out_f4, e)
            break


def fit_extents_numba(offsets, x, h, extent_length, velocity, background_rate, settings, *, photon, latitude,
                      longitude, time_ns, y_atc, delta_time, extras=None) -> dict[str, np.ndarray]:
    """``fit.fit_extents`` for an ATL06-SR row's photon fields, by the kernel (``time_ns`` derived from
    ``delta_time`` as the engine derives it)."""
    if extras:
        raise ValueError("the kernel has no ancillary extras")
    n_ext = len(offsets) - 1
    bg = fit._background_density(n_ext, extent_length, velocity, background_rate)
    f8, f4 = np.full(n_ext, np.nan), np.full((4, n_ext), np.nan, np.float32)
    out_f8, out_i8, out_f4 = np.full((3, n_ext), np.nan), np.zeros(n_ext, np.int64), np.full(n_ext, np.nan, np.float32)
    n_fit, pflags = np.zeros(n_ext, np.int32), np.zeros(n_ext, np.uint16)
    fitted, in_fit = np.zeros(n_ext, bool), np.zeros(len(x), bool)
    s = settings
    _kernel(np.asarray(offsets, np.int64), np.asarray(x, np.float32), np.asarray(h, np.float32), bg, s.maxi,
            float(s.H_min_win), float(s.sigma_r_max), s.cnt, float(s.ats), np.asarray(photon, np.int64),
            latitude, longitude, delta_time, y_atc, f8, f4, n_fit, pflags, fitted, in_fit, out_f8, out_i8, out_f4)
    return {"h_mean": f8, "dh_fit_dx": f4[0], "n_fit_photons": n_fit, "pflags": pflags,
            "w_surface_window_final": f4[1], "rms_misfit": f4[2], "h_sigma": f4[3], "fitted": fitted,
            "in_fit": in_fit, "latitude": out_f8[0], "longitude": out_f8[1], "time_ns": out_i8, "y_atc": out_f4,
            "delta_time": out_f8[2]}


def _timed(run, rounds: int = 3) -> float:
    best = math.inf
    for _ in range(rounds):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str]) -> int:
    """Check the kernel against the package's fit on a granule and time both (see the module docstring)."""
    path = Path(argv[0]) if argv else bench.granule(bench.cache_dir() / "segments-8300", 8300)
    asset = resolve_asset("atlas-local", str(path.parent))
    calls = []                                 # the engine's fit calls, recorded once

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return fit.fit_extents(*args, **kwargs)

    steps.fit_extents = record
    process_granule(asset, path.name, Parms.from_dict({}))
    same = True
    for args, kwargs in calls:
        ours, theirs = fit.fit_extents(*args, **kwargs), fit_extents_numba(*args, **kwargs)
        same &= all(np.array_equal(ours[k], theirs[k], equal_nan=ours[k].dtype.kind == "f") for k in theirs)
    numpy_s = _timed(lambda: [fit.fit_extents(*a, **k) for a, k in calls])
    numba_s = _timed(lambda: [fit_extents_numba(*a, **k) for a, k in calls])
    print(f"fit, default parameters, {len(calls)} batches: every column identical: {same}; CPU best of 3: "
          f"numpy tiles {numpy_s:.3f} s, numba kernel {numba_s:.3f} s ({numpy_s / numba_s:.2f}x)")
    parms = Parms.from_dict(bench.RECOMMENDED)
    runs: dict[str, list[float]] = {"numpy fit": [], "numba fit": [], "SlideRule C++": []}
    for _ in range(3):
        for name, step in (("numpy fit", fit.fit_extents), ("numba fit", fit_extents_numba)):
            steps.fit_extents = step
            started = time.perf_counter()
            process_granule(asset, path.name, parms)
            runs[name].append(time.perf_counter() - started)
        cpp = bench.sliderule_seconds(path, bench.RECOMMENDED)
        if cpp is not None:
            runs["SlideRule C++"].append(cpp)
    for name, seconds in runs.items():
        if seconds:
            what = "processing" if name == "SlideRule C++" else "in process"
            print(f"ATL06-SR, recommended parameters, {name} ({what}): median {statistics.median(seconds):.2f} s "
                  f"({', '.join(f'{s:.2f}' for s in seconds)})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
