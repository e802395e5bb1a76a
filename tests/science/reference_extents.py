"""Straightforward transcription of SPEC §5 (SlideRule's extent loop), for tests only.

One photon at a time, with SlideRule's own segment bookkeeping (the ``c``/``s`` counters), in
Python floats. Deliberately shares no code with ``icesat2sr.science.extents``.
"""

from __future__ import annotations

import math

import numpy as np


def reference_extents(sdx, cnt, seg_id, dpa, selected, *, length, res, dist_in_seg=False,
                      pass_invalid=False, ats=20.0, min_count=10):
    """Return a list of dicts, one per emitted extent (SPEC §5 pseudo-code)."""
    sdx = [float(v) for v in sdx]
    cnt = [int(v) for v in cnt]
    dpa = [float(np.float32(v)) for v in dpa]
    m, n = len(sdx), len(dpa)
    L = length * 20.0 if dist_in_seg else length
    out = []
    if n == 0 or m == 0:
        return out
    ph_in = seg_in = seg_ph = start_segment = 0
    start_distance = sdx[0]
    counter = 0
    complete = False
    while not complete:
        p, s, c = ph_in, seg_in, seg_ph
        extent_done = step_done = False
        start_seg_portion = dpa[p] / 20.0
        extent_segment = seg_in
        photons = []
        while not (extent_done and step_done):
            c += 1
            while s < m and c > cnt[s]:
                c = 1
                s += 1
            if s >= m:
                complete = True
                break
            x = (sdx[s] - start_distance) + dpa[p]
            nseg = s - extent_segment
            if not step_done and ((not dist_in_seg and x >= res) or (dist_in_seg and nseg >= int(res))):
                ph_in, seg_in, seg_ph = p, s, c - 1
                step_done = True
            if (not dist_in_seg and x < length) or (dist_in_seg and nseg < length):
                if selected[p]:
                    photons.append((p, float(np.float32(x - L / 2.0))))
            else:
                extent_done = True
            p += 1
            if p >= n:
                complete = True
                break
        seg_distance = start_distance + L / 2.0
        if not dist_in_seg:
            start_distance += res
            while start_segment + 1 < m and start_distance >= sdx[start_segment + 1]:
                start_distance += sdx[start_segment + 1] - sdx[start_segment]
                start_distance -= 20.0
                start_segment += 1
        else:
            nxt = extent_segment + int(res)
            if nxt < m:
                start_distance = sdx[nxt]
        valid = len(photons) >= min_count and (
            len(photons) <= 1 or float(np.float32(photons[-1][1]) - np.float32(photons[0][1])) >= ats)
        if valid or pass_invalid:
            if dist_in_seg:
                centre = float(seg_id[extent_segment]) + int(length / 2.0)
            else:
                centre = float(seg_id[extent_segment]) + start_seg_portion + int((length / 20.0) / 2.0)
            out.append({
                "counter": counter,
                "segment": extent_segment,
                "segment_id": math.floor(centre + 0.5),
                "distance": seg_distance,
                "valid": valid,
                "photons": [q for q, _ in photons],
                "x_rel": [x for _, x in photons],
            })
        counter += 1
    return out
