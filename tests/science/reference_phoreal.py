"""A straightforward per-extent PhoREAL, transcribed from SlideRule's Atl08Dispatch.cpp, for tests.

One extent at a time, photon by photon, with Python floats for the C++ doubles and numpy
float32 scalars for its floats. It does what SlideRule intends where SlideRule does not
(docs/decisions.md, PhoREAL): bins of ``binsize``, percentiles 5..100, 0 mean and openness
without canopy photons.
"""

from __future__ import annotations

import math

import numpy as np

F4 = np.float32
PERCENTILES = [5.0 * (k + 1) for k in range(20)]
MAX_BINS = 1000


def reference_metrics(classes, height, relief, binsize: float) -> dict:
    """Metrics of one extent's photons (lists or arrays in extent order)."""
    n = len(classes)
    ground = sorted((i for i in range(n) if classes[i] == 1), key=lambda i: height[i])
    canopy = sorted((i for i in range(n) if classes[i] in (2, 3)), key=lambda i: relief[i])
    out = {"ph_count": n, "gnd_ph_count": len(ground), "veg_ph_count": len(canopy), "pflags": 0}
    if canopy:
        lo = min(float(relief[i]) for i in canopy)
        hi = max(float(relief[i]) for i in canopy)
        total = 0.0
        for i in canopy:
            total += float(relief[i])
        mean = F4(total / len(canopy))
        squares = 0.0
        for i in canopy:
            delta = float(F4(relief[i]) - mean)
            squares += delta * delta
        openness = F4(math.sqrt(squares / len(canopy)))
    else:
        lo = hi = 0.0
        mean = openness = F4(0.0)
    out.update(h_min_canopy=F4(lo), h_max_canopy=F4(hi), h_mean_canopy=mean, canopy_openness=openness)

    num_bins = math.ceil((hi - lo) / binsize)
    if num_bins > MAX_BINS:
        out["pflags"] |= 0x2
        num_bins = MAX_BINS
    elif num_bins <= 0:
        out["pflags"] |= 0x1
        num_bins = 1
    bins = [0] * num_bins
    for i in canopy:
        b = math.floor((float(relief[i]) - lo) / binsize)
        bins[min(max(b, 0), num_bins - 1)] += 1
    cumulative = []
    running = 0
    for count in bins:
        running += count
        cumulative.append(running)
    out["num_bins"] = num_bins
    out["waveform"] = [F4(count / n) for count in bins]

    if not ground:
        out["h_te_median"] = F4(0.0)
    elif len(ground) % 2 == 0:
        k = (len(ground) - 1) // 2
        out["h_te_median"] = F4((F4(height[ground[k]]) + F4(height[ground[k + 1]])) / 2.0)
    else:
        out["h_te_median"] = F4(height[ground[(len(ground) - 1) // 2]])

    metrics = [F4(0.0)] * 20
    h_canopy = F4(0.0)
    if canopy:
        b = 0

        def search(threshold: float) -> np.float32:   # SlideRule's bin pointer carries on
            nonlocal b
            while b < num_bins:
                if cumulative[b] / len(canopy) * 100.0 >= threshold and cumulative[b] > 0:
                    return F4(relief[canopy[cumulative[b] - 1]])
                b += 1
            return F4(0.0)

        metrics[:19] = [search(p) for p in PERCENTILES[:19]]
        h_canopy = search(98.0)
        metrics[19] = search(100.0)
    out["canopy_h_metrics"] = metrics
    out["h_canopy"] = h_canopy
    return out


def reference_geolocation(time_ns, latitude, longitude, x_rel, distance: float, geoloc: str) -> dict:
    """Time, latitude, longitude, x_atc of one extent and the index of its cover photon."""
    n = len(time_ns)
    t = [int(v) for v in time_ns]
    if geoloc == "median":
        c = n // 2
        if n % 2 == 1:
            time, lat, lon = t[c], float(latitude[c]), float(longitude[c])
            x = F4(float(F4(x_rel[c])) + distance)
        else:
            time = (t[c] + t[c - 1]) // 2
            lat = (float(latitude[c]) + float(latitude[c - 1])) / 2
            lon = (float(longitude[c]) + float(longitude[c - 1])) / 2
            x = F4(float((F4(x_rel[c]) + F4(x_rel[c - 1])) / F4(2)) + distance)
    elif geoloc == "mean":
        st = sa = so = sx = 0.0
        for i in range(n):
            st += float(t[i])
            sa += float(latitude[i])
            so += float(longitude[i])
            sx += float(F4(x_rel[i])) + distance
        time, lat, lon, x = int(st / n), sa / n, so / n, F4(sx / n)
    else:
        tt = [float(v) for v in t]
        xs = [float(F4(v)) for v in x_rel]
        time = int((min(tt) + max(tt)) / 2.0)
        lat = (min(map(float, latitude)) + max(map(float, latitude))) / 2.0
        lon = (min(map(float, longitude)) + max(map(float, longitude))) / 2.0
        x = F4((min(xs) + max(xs)) / 2.0 + distance)
    best, nearest = math.inf, 0
    for i in range(n):
        gap = float(abs(t[i] - time))
        if gap < best:
            best, nearest = gap, i
    return {"time": time, "latitude": lat, "longitude": lon, "x_atc": x, "photon": nearest}
