"""Straightforward transcriptions of SPEC §4.4 (YAPC), for tests only.

One photon at a time, in Python floats, following the SPEC text (and SlideRule's C++ where the
text is silent: float32 height differences, the normalisation ``(w / (hWZ * K)) * 255``, and
the v1/2 replacement buffer). Deliberately shares no code with
``icesat2sr.science.yapc``.
"""

from __future__ import annotations

import math

import numpy as np


def _f32_abs_diff(a, b):
    """|a - b| computed in float32 (C++ abs(float - float)), returned as a Python float."""
    return float(abs(np.float32(a) - np.float32(b)))


def reference_yapc_v3(segment_dist_x, segment_ph_cnt, dist_ph_along, h_ph, win_x, win_h, min_knn):
    """SPEC §4.4 version 3, photon by photon. Returns a list of ints 0..255."""
    hwx = win_x / 2.0
    hwz = win_h / 2.0
    cnt = [int(v) for v in segment_ph_cnt]
    n = min(len(h_ph), sum(cnt))
    xs, seg_of = [], []
    for s, c in enumerate(cnt):
        for _ in range(c):
            if len(xs) < n:
                xs.append(float(segment_dist_x[s]) + float(np.float32(dist_ph_along[len(xs)])))
                seg_of.append(s)
    hs = [np.float32(v) for v in h_ph[:n]]

    knns, weights = [], []
    for i in range(n):
        prox = []
        for step in (-1, 1):
            j = i + step
            while 0 <= j < n:
                dx = xs[i] - xs[j] if step < 0 else xs[j] - xs[i]
                if dx <= hwx:
                    p = _f32_abs_diff(hs[i], hs[j])
                    if p <= hwz:
                        prox.append(p)
                if dx >= hwx + 1.0:
                    break
                j += step
        prox.sort()
        knn = max(math.floor(math.sqrt(len(prox))), min_knn)
        w = 0.0
        for k in range(min(knn, len(prox))):
            w += hwz - prox[k]
        knns.append(knn)
        weights.append(w)

    k_seg = [min_knn] * len(cnt)
    for i in range(n):
        k_seg[seg_of[i]] = max(k_seg[seg_of[i]], knns[i])
    scores = [0] * len(h_ph)
    for i in range(n):
        wt = weights[i] / (hwz * k_seg[seg_of[i]])
        scores[i] = int(min(wt * 255.0, 255.0))
    return scores


def reference_yapc_v2(segment_ph_cnt, dist_ph_along, h_ph, knn, win_x, win_h, min_photons):
    """SPEC §4.4 version 1/2 with SlideRule's index bookkeeping and replacement buffer."""
    cnt = [int(v) for v in segment_ph_cnt]
    xs = [np.float32(v) for v in dist_ph_along]
    hs = [np.float32(v) for v in h_ph]
    m = len(cnt)
    scores = [0] * len(hs)
    b0 = b1 = c0 = c1 = 0
    for s in range(m):
        b0 += cnt[s - 2] if s > 1 else 0
        c0 += cnt[s - 1] if s > 0 else 0
        c1 += cnt[s]
        b1 += cnt[s + 1] if s < m - 1 else 0
        n = cnt[s]
        k = knn if knn != 0 else max(1, int((math.sqrt(n) + 0.5) / 2))
        k = min(k, 25)
        if n <= k or n < min_photons:
            continue
        h_first = [float(v) for v in hs[:n]]
        x_first = [float(v) for v in xs[:n]]
        hspread = max(h_first) - min(h_first)
        xspread = max(x_first) - min(x_first)
        if hspread <= 0.0 or hspread > 15000.0 or xspread <= 0.0:
            continue
        bins = {int((v - min(h_first)) / 1.0) for v in h_first}
        h_span = len(bins) * 1.0 / n * k
        hwx = win_x / 2.0
        hwh = win_h / 2.0 if win_h != 0.0 else h_span / 2.0
        for y in range(c0, c1):
            buf = []
            smallest, smallest_i = math.inf, 0
            for x in range(b0, b1):
                if x == y:
                    continue
                if _f32_abs_diff(xs[x], xs[y]) > hwx:
                    continue
                prox = hwh - _f32_abs_diff(hs[x], hs[y])
                if len(buf) < k:
                    if prox < smallest:
                        smallest, smallest_i = prox, len(buf)
                    buf.append(prox)
                elif prox > smallest:
                    buf[smallest_i] = prox
                    smallest = prox
                    for q in range(k):
                        if buf[q] < smallest:
                            smallest, smallest_i = buf[q], q
            buf += [0.0] * (k - len(buf))
            total = 0.0
            for v in buf:
                if v > 0.0:
                    total += v
            total /= k
            scores[y] = int((total / hwh) * 255.0)
    return scores
