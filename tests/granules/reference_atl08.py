"""A straightforward transcription of SlideRule's ATL08 two-pointer merge (Atl08Class::classify), for tests."""

from __future__ import annotations


def reference_atl08(segment_id, segment_ph_cnt, n_photons, ph_segment_id, classed_pc_indx,
                    classed_pc_flag):
    """SPEC §2 two-pointer merge, literally. Returns a list of ints (class per photon)."""
    sid_list = [int(v) for v in segment_id]
    cnt_list = [int(v) for v in segment_ph_cnt]
    seg08 = [int(v) for v in ph_segment_id]
    idx08 = [int(v) for v in classed_pc_indx]
    flag08 = [int(v) for v in classed_pc_flag]
    k08 = len(seg08)
    out = [4] * n_photons
    photon = 0
    j = 0
    for sid, cnt in zip(sid_list, cnt_list, strict=True):
        for k in range(1, cnt + 1):
            if photon >= n_photons:
                return out
            while j < k08 and seg08[j] < sid:
                j += 1
            while j < k08 and seg08[j] == sid and idx08[j] < k:
                j += 1
            if j < k08 and seg08[j] == sid and idx08[j] == k:
                out[photon] = flag08[j]
                j += 1
            else:
                out[photon] = 4
            photon += 1
    return out
