"""SlideRule's x-series photon frame and surface fit, one photon and one extent at a time.

Written for the tests only, from SlideRule's ``Atl03DataFrame::subsettingThread`` and
``SurfaceFitter`` (their loops, their pointer walks, their float32 stores), reading the granule
with h5py: independent of ``icesat2sr.science.xseries`` and of our granule reader. No polygon.
``surface_fit(..., sliderule_defects=True)`` reproduces SlideRule's C++ where it passes parameters
through ``operator bool``: before a fit the photon count is compared with ``bool(cnt)`` and the
spread with ``bool(ats)``, and the background density uses ``bool(len)`` pulses; by default the
reference does what SlideRule intends (``cnt``, ``ats``, ``len``), as icesat2sr does.
"""

from __future__ import annotations

import math

import h5py

from .reference_fit import PRF, RDE, SIGMA_BEAM, SIGMA_XMIT, C, cmax, div, f32, fmod, to_int64

FLT_MAX = 3.4028234663852886e38


def unix_ns(delta_time: float) -> int:
    """ATLAS delta_time to Unix ns: SDP epoch in GPS seconds, GPS to Unix, 18 leap seconds."""
    return int((((delta_time + 1198800018.0) + 315964800.0) - 18.0) * 1e9)


def photons(path: str, beam: str, srt: int, cnf: set[int], podppd: int = 1) -> list[dict]:
    """Rows of the photon frame of one beam (quality_ph 0 only, no ATL08, no YAPC)."""
    with h5py.File(path) as f:
        g = f[beam]
        counts = g["geolocation/segment_ph_cnt"][:]
        seg_dt = g["geolocation/delta_time"][:]
        bg_dt, bg_rate = g["bckgrd_atlas/delta_time"][:], g["bckgrd_atlas/bckgrd_rate"][:]
        geo = {k: g[f"geolocation/{k}"][:] for k in ("segment_id", "segment_dist_x", "solar_elevation",
                                                       "velocity_sc", "podppd_flag")}
        ph = {k: g[f"heights/{k}"][:] for k in ("delta_time", "lat_ph", "lon_ph", "h_ph", "dist_ph_along",
                                                  "dist_ph_across", "signal_conf_ph", "quality_ph")}
    rows, segment, in_segment, bg = [], 0, 0, 0
    for p in range(len(ph["h_ph"])):
        in_segment += 1
        while segment < len(counts) and in_segment > counts[segment]:
            in_segment, segment = 1, segment + 1
        conf = int(max(ph["signal_conf_ph"][p]) if srt == -1 else ph["signal_conf_ph"][p][srt])
        if conf not in cnf or int(ph["quality_ph"][p]) != 0:
            continue
        if podppd and not ((1 << int(geo["podppd_flag"][segment])) & podppd):
            continue
        v = [float(c) for c in geo["velocity_sc"][segment]]
        while bg < len(bg_rate) - 1 and bg_dt[bg + 1] <= seg_dt[segment]:
            bg += 1
        rows.append({
            "time_ns": unix_ns(float(ph["delta_time"][p])),
            "latitude": float(ph["lat_ph"][p]), "longitude": float(ph["lon_ph"][p]),
            "segment_id": int(geo["segment_id"][segment]),
            "x_atc": float(ph["dist_ph_along"][p]) + float(geo["segment_dist_x"][segment]),
            "y_atc": float(ph["dist_ph_across"][p]), "height": float(ph["h_ph"][p]),
            "solar_elevation": float(geo["solar_elevation"][segment]), "background_rate": float(bg_rate[bg]),
            "spacecraft_velocity": f32(math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])),
            "atl03_cnf": conf, "quality_ph": 0, "ph_index": p,
        })
    return rows


def _mean(values: list[float]) -> float:
    total = 0.0
    for v in values:
        if float(v) < FLT_MAX:
            total += float(v)
    return total / len(values)


def _lsf(pts: list[list[float]], rows: list[dict], final: bool, result: dict) -> None:
    """SurfaceFitter::leastSquaresFit over pts = [[photon, residual, x], ...] in their order."""
    n = len(pts)
    a12 = sum_xx = 0.0
    for _, _, x in pts:
        a12 += x
        sum_xx += x * x
    det = div(1.0, (n * sum_xx) - (a12 * a12))
    i11, i12, i22 = sum_xx * det, -1 * a12 * det, n * det
    if not final:
        height = slope = y_sigma = 0.0
        for p, _, x in pts:
            g1, g2 = i11 + i12 * x, i12 + i22 * x
            height += g1 * rows[p]["height"]
            slope += g2 * rows[p]["height"]
            y_sigma += g1 * g1
        result.update(h_mean=height, dh_fit_dx=slope, h_sigma=math.sqrt(y_sigma))
        for pt in pts:
            pt[1] = rows[pt[0]]["height"] - (height + pt[2] * slope)
        return
    if n == 0:
        return
    lat = lon = t = y = 0.0
    shift = not -150.0 <= rows[pts[0][0]]["longitude"] <= 150.0
    for p, _, x in pts:
        g1 = i11 + i12 * x
        plon = fmod(rows[p]["longitude"] + 360.0, 360.0) if shift else rows[p]["longitude"]
        lat += g1 * rows[p]["latitude"]
        lon += g1 * plon
        t += g1 * float(rows[p]["time_ns"])
        y += g1 * rows[p]["y_atc"]
    result.update(latitude=lat, longitude=fmod(lon + 180.0, 360.0) - 180.0 if shift else lon,
                  time_ns=to_int64(t), y_atc=f32(y))


def _iterate(rows: list[dict], first: int, count: int, centre: float, pulse_length: float, s: dict) -> dict:
    """SurfaceFitter::iterativeFitStage for one extent (``pulse_length``: the length of the
    background density's pulses)."""
    result = {"pflags": 0, "window": 0.0, "h_sigma": 0.0, "rms_misfit": 0.0, "dh_fit_dx": 0.0}
    pulses = (pulse_length * PRF) / rows[first]["spacecraft_velocity"]
    density = pulses * rows[first]["background_rate"] / (C / 2.0)
    pts = [[first + i, 0.0, rows[first + i]["x_atc"] - centre] for i in range(count)]
    iteration = 0
    while True:
        _lsf(pts, rows, False, result)
        pts.sort(key=lambda pt: pt[1])
        n = len(pts)
        if iteration == 0:
            lo, hi = pts[0][1], pts[-1][1]
            n_bg = density * (hi - lo)
        else:
            n_bg = density * result["window"]
            lo, hi = -(result["window"] / 2.0), result["window"] / 2.0
        rate = div(n_bg, hi - lo)
        n_sig = n - n_bg
        sigma_r = 0.0
        if n_sig <= 1:
            sigma_r = div(hi - lo, n)
        else:
            i0 = 0
            while i0 < n and ((i0 + 1.0 - 0.5 + 1.0) < (0.25 * n_sig) + ((pts[i0][1] - lo) * rate)):
                i0 += 1
            i1 = n - 1
            while i1 >= 0 and ((i1 + 1.0 - 0.5 - 1.0) > (0.75 * n_sig) + ((pts[i1][1] - lo) * rate)):
                i1 -= 1
            if i1 < i0:
                i0 = int((n / 2.0) - (n_sig / 4.0) + 0.5) - 1
                i1 = int((n / 2.0) + (n_sig / 4.0) + 0.5)
            if i0 >= 0 and i1 < n:
                sigma_r = (pts[i1][1] - pts[i0][1]) / RDE
            else:
                result["pflags"] |= 8
        expected = math.sqrt((C / 2.0 * SIGMA_XMIT) ** 2 + SIGMA_BEAM ** 2 * result["dh_fit_dx"] ** 2)
        if sigma_r > s["sigma_r_max"]:
            sigma_r = s["sigma_r_max"]
        window = cmax(cmax(s["H_min_win"], 6.0 * expected), 6.0 * sigma_r)
        result["window"] = cmax(window, 0.75 * result["window"])
        inside = [pt for pt in pts if abs(pt[1]) < result["window"] / 2.0]
        xs = [rows[pt[0]]["x_atc"] for pt in inside]
        if len(inside) < s["cnt"]:
            result["pflags"] |= 2
            break
        if max(xs) - min(xs) < s["ats"]:
            result["pflags"] |= 1
            break
        if len(inside) == n:
            break
        iteration += 1
        if iteration >= s["maxi"]:
            result["pflags"] |= 4
            break
        pts = inside
    result["n_fit_photons"] = len(pts)
    if pts:
        result["rms_misfit"] = math.sqrt(sum(pt[1] * pt[1] for pt in pts) / len(pts))
        result["h_sigma"] = result["rms_misfit"] * result["h_sigma"]
    _lsf(pts, rows, True, result)
    return result


def surface_fit(rows: list[dict], length: float, step: float, s: dict, pass_invalid: bool = False,
                extras: tuple[str, ...] = (), sliderule_defects: bool = False) -> list[dict]:
    """SurfaceFitter::run over one beam's photon rows; ``s``: cnt, ats, maxi, H_min_win, sigma_r_max.

    ``sliderule_defects``: use ``bool(cnt)``, ``bool(ats)`` and ``bool(len)`` where SlideRule's C++ does.

    ``extras`` (ancillary columns of the rows) become the mean of the extent's photons' values,
    a value at or above FLT_MAX (or NaN) counting as 0 (FieldColumn::mean).
    """
    out = []
    cnt, ats, pulse_length = s["cnt"], s["ats"], length
    if sliderule_defects:
        cnt, ats, pulse_length = int(bool(cnt)), float(bool(ats)), float(bool(length))
    n = len(rows)
    start = rows[0]["x_atc"] if n else 0.0
    i0 = 0
    while i0 < n:
        i1 = i0
        while i1 < n - 1 and (rows[i1 + 1]["x_atc"] - start) < length:
            i1 += 1
        count = i1 - i0 + 1
        early = (1 if rows[i1]["x_atc"] - rows[i0]["x_atc"] < ats else 0) | (2 if count < cnt else 0)
        if early == 0 or pass_invalid:
            centre = start + length / 2.0
            r = _iterate(rows, i0, count, centre, pulse_length, s)
            if r["pflags"] == 0 or pass_invalid:
                out.append({"time_ns": r["time_ns"], "latitude": r["latitude"], "longitude": r["longitude"],
                            "segment_id_beg": rows[i0]["segment_id"], "x_atc": centre, "y_atc": r["y_atc"],
                            "photon_start": rows[i0]["ph_index"], "pflags": r["pflags"] | early,
                            "h_mean": f32(r["h_mean"]), "dh_fit_dx": f32(r["dh_fit_dx"]),
                            "w_surface_window_final": f32(r["window"]), "n_fit_photons": r["n_fit_photons"],
                            "rms_misfit": f32(r["rms_misfit"]), "h_sigma": f32(r["h_sigma"]),
                            **{name: _mean([rows[i][name] for i in range(i0, i1 + 1)]) for name in extras}})
        while i0 < n:
            start += step
            while i0 < n and rows[i0]["x_atc"] < start:
                i0 += 1
            if i0 < n and (rows[i0]["x_atc"] - start) < length:
                break
    return out
