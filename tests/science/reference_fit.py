"""Straightforward per-extent ATL06-SR fit (SPEC §6), written from the spec for the tests only.

One extent at a time, plain Python floats (IEEE double) and loops over photons, with explicit
float32 rounding where SlideRule stores float32 (slope, window, rms, h_sigma, y_atc; photon x, h, y
and the spacecraft speed).  It mirrors SlideRule's photon order: file order on the first pass,
sorted by residual (stably) afterwards.  Independent of ``icesat2sr.science.fit`` on purpose.
"""

from __future__ import annotations

import math

import numpy as np

C = 299792458.0
PRF = 10000.0
RDE = 1.3490
SIGMA_BEAM = 4.25
SIGMA_XMIT = 0.68e-9
DBL_MAX = 1.7976931348623157e308
INT64_MIN = -(2**63)


def f32(v: float) -> float:
    """Round a double to float32 (the value SlideRule stores)."""
    with np.errstate(all="ignore"):
        return float(np.float32(v))


def div(a: float, b: float) -> float:
    """IEEE division (Python raises on /0)."""
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def cmax(a: float, b: float) -> float:
    """C's MAX(a, b) = a > b ? a : b."""
    return a if a > b else b


def fmod(a: float, b: float) -> float:
    """C fmod: NaN for a non-finite dividend."""
    return math.fmod(a, b) if math.isfinite(a) else math.nan


def to_int64(v: float) -> int:
    """(int64_t)v on x86-64."""
    if math.isfinite(v) and -(2.0**63) <= v < 2.0**63:
        return int(v)
    return INT64_MIN


def lsf(S: list[int], x: list[float], h: list[float]) -> tuple[float, float, float, float, float]:
    """Least squares line over the photons S in that order: h_mean, slope, y_sigma, i11, i12."""
    n = len(S)
    a12 = 0.0
    a22 = 0.0
    for k in S:
        a12 += x[k]
        a22 += x[k] * x[k]
    det = div(1.0, n * a22 - a12 * a12)
    i11 = a22 * det
    i12 = -a12 * det
    i22 = n * det
    h_mean = slope = ys = 0.0
    for k in S:
        g1 = i11 + i12 * x[k]
        g2 = i12 + i22 * x[k]
        h_mean += g1 * h[k]
        slope += g2 * h[k]
        ys += g1 * g1
    return h_mean, slope, math.sqrt(ys), i11, i12


def robust_spread(rs: list[float], zmin: float, zmax: float, n_bg: float) -> tuple[float, bool]:
    """sigma_r from sorted residuals; second value True when the percentiles are out of bounds."""
    n = len(rs)
    bckgrd = div(n_bg, zmax - zmin)
    n_sig = n - n_bg
    if n_sig <= 1:
        return (zmax - zmin) / n, False
    i0 = 0
    while i0 < n and (i0 + 1.0 - 0.5 + 1.0) < 0.25 * n_sig + (rs[i0] - zmin) * bckgrd:
        i0 += 1
    i1 = n - 1
    while i1 >= 0 and (i1 + 1.0 - 0.5 - 1.0) > 0.75 * n_sig + (rs[i1] - zmin) * bckgrd:
        i1 -= 1
    if i1 < i0:
        a = n / 2.0 - n_sig / 4.0 + 0.5
        b = n / 2.0 + n_sig / 4.0 + 0.5
        if math.isfinite(a) and math.isfinite(b):
            i0 = int(a) - 1
            i1 = int(b)
        else:
            i0, i1 = -1, n
    if i0 >= 0 and i1 < n:
        return (rs[i1] - rs[i0]) / RDE, False
    return 0.0, True


def fit_one(x, h, L, v, bgr, *, maxi, H_min_win, sigma_r_max, cnt, ats, lat=None, lon=None,
            t=None, y=None, dt=None) -> dict | None:
    """Fit one extent; None when it has no photons."""
    x = [f32(float(a)) for a in x]
    h = [f32(float(a)) for a in h]
    n_all = len(x)
    if n_all == 0:
        return None
    pulses = div(L * PRF, f32(v))
    bg_density = pulses * bgr / (C / 2.0)
    se1 = ((C / 2.0) * SIGMA_XMIT) * ((C / 2.0) * SIGMA_XMIT)

    S = list(range(n_all))
    W = 0.0
    iteration = 0
    pflags = 0
    invalid = False
    while True:
        n = len(S)
        h_mean, slope, ys, _, _ = lsf(S, x, h)
        r = {k: h[k] - (h_mean + x[k] * slope) for k in S}
        S = sorted(S, key=lambda k: (r[k] != r[k], r[k] if r[k] == r[k] else 0.0))
        rs = [r[k] for k in S]
        if iteration == 0:
            zmin, zmax = rs[0], rs[n - 1]
            n_bg = bg_density * (zmax - zmin)
        else:
            zmin, zmax = -(W / 2.0), W / 2.0
            n_bg = bg_density * W
        sigma_r, oob = robust_spread(rs, zmin, zmax, n_bg)
        if oob:
            pflags |= 0x8
            invalid = True
        slope32 = f32(slope)
        sigma_exp = math.sqrt(se1 + (SIGMA_BEAM * SIGMA_BEAM) * (slope32 * slope32))
        if sigma_r > sigma_r_max:
            sigma_r = sigma_r_max
        W = f32(cmax(cmax(cmax(H_min_win, 6.0 * sigma_exp), 6.0 * sigma_r), 0.75 * W))
        keep = [k for k in S if abs(r[k]) < W / 2.0]
        x_min, x_max = DBL_MAX, -DBL_MAX
        for k in keep:
            x_min = min(x_min, x[k])
            x_max = max(x_max, x[k])
        if len(keep) < cnt:
            pflags |= 0x2
            invalid = True
            break
        if x_max - x_min < ats:
            pflags |= 0x1
            invalid = True
            break
        if len(keep) == n:
            break
        iteration += 1
        if iteration >= maxi:
            pflags |= 0x4
            break
        S = keep

    res = {"h_mean": h_mean, "dh_fit_dx": slope32, "n_fit_photons": len(S), "pflags": pflags,
           "w_surface_window_final": W, "in_fit": set(S)}
    delta = 0.0
    for k in S:
        delta += r[k] * r[k]
    if invalid:
        res["rms_misfit"] = res["h_sigma"] = 0.0
    else:
        rms = f32(math.sqrt(delta / len(S)))
        res["rms_misfit"] = rms
        res["h_sigma"] = f32(rms * f32(ys))
    res.update(positions(S, x, lat, lon, t, y, dt))
    return res


def positions(S, x, lat, lon, t, y, dt) -> dict:
    """Centre values of the photon fields with the LSF weights of S (in S's order)."""
    if all(a is None for a in (lat, lon, t, y, dt)):
        return {}
    _, _, _, i11, i12 = lsf(S, x, [0.0] * len(x))
    g = {k: i11 + i12 * x[k] for k in S}
    res = {}
    if lat is not None:
        res["latitude"] = wsum(S, g, [float(a) for a in lat])
    if lon is not None:
        lons = [float(a) for a in lon]
        shift = lons[S[0]] < -150.0 or lons[S[0]] > 150.0
        if shift:
            lons = [math.fmod(a + 360.0, 360.0) for a in lons]
        fit = wsum(S, g, lons)
        res["longitude"] = fmod(fit + 180.0, 360.0) - 180.0 if shift else fit
    if t is not None:
        res["time_ns"] = to_int64(wsum(S, g, [float(a) for a in t]))
    if y is not None:
        res["y_atc"] = f32(wsum(S, g, [f32(float(a)) for a in y]))
    if dt is not None:
        res["delta_time"] = wsum(S, g, [float(a) for a in dt])
    return res


def wsum(S, g, values) -> float:
    total = 0.0
    for k in S:
        total += g[k] * values[k]
    return total


def fit_reference(offsets, x, h, extent_length, velocity, background_rate, *, maxi=5, H_min_win=3.0,
                  sigma_r_max=5.0, cnt=10, ats=20.0, **photon_fields) -> dict[str, np.ndarray]:
    """Loop ``fit_one`` over CSR extents; same output layout as ``icesat2sr.science.fit.fit_extents``."""
    offsets = np.asarray(offsets, np.int64)
    E = offsets.size - 1
    L = np.broadcast_to(np.asarray(extent_length, np.float64), (E,))
    V = np.broadcast_to(np.asarray(velocity, np.float64), (E,))
    B = np.broadcast_to(np.asarray(background_rate, np.float64), (E,))
    short = {"latitude": "lat", "longitude": "lon", "time_ns": "t", "y_atc": "y", "delta_time": "dt"}
    fields = {k: v for k, v in photon_fields.items() if v is not None}
    cols: dict[str, list] = {k: [] for k in ("h_mean", "dh_fit_dx", "n_fit_photons", "pflags",
                                              "w_surface_window_final", "rms_misfit", "h_sigma",
                                              "fitted", *fields)}
    in_fit = np.zeros(len(x), bool)
    for e in range(E):
        a, b = int(offsets[e]), int(offsets[e + 1])
        sub = {short[k]: list(np.asarray(v)[a:b]) for k, v in fields.items()}
        res = fit_one(list(x[a:b]), list(h[a:b]), float(L[e]), float(V[e]), float(B[e]), maxi=maxi,
                      H_min_win=H_min_win, sigma_r_max=sigma_r_max, cnt=cnt, ats=ats, **sub)
        if res is None:
            res = {k: (0 if k in ("n_fit_photons", "pflags", "time_ns") else math.nan) for k in cols}
            res["fitted"] = False
        else:
            res["fitted"] = True
            for k in res.pop("in_fit"):
                in_fit[a + k] = True
        for k in cols:
            cols[k].append(res[k])
    dtypes = {"h_mean": np.float64, "dh_fit_dx": np.float32, "n_fit_photons": np.int32,
              "pflags": np.uint16, "w_surface_window_final": np.float32, "rms_misfit": np.float32,
              "h_sigma": np.float32, "fitted": bool, "latitude": np.float64, "longitude": np.float64,
              "time_ns": np.int64, "y_atc": np.float32, "delta_time": np.float64}
    out = {k: np.array(v, dtype=dtypes[k]) for k, v in cols.items()}
    out["in_fit"] = in_fit
    return out
