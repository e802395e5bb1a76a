"""Building Beam objects directly from arrays, for unit tests."""

from __future__ import annotations

import numpy as np

from icesat2sr.granules.beam import Beam


def make_beam(sdx, counts, dpa, *, seg_id=None, h=None, beam="gt1l", sc_orient=0, seg_time=None,
              bckgrd_time=(0.0, 1e9), bckgrd_rate=(1.0, 2.0), velocity=(7000.0, 0.0, 0.0)) -> Beam:
    sdx = np.asarray(sdx, dtype=np.float64)
    m, n = len(sdx), int(np.sum(counts))
    zeros = np.zeros(n)
    return Beam(
        granule="ATL03_20200101000000_01230405_006_01.h5", beam=beam, rgt=123, cycle=4, region=5,
        sc_orient=sc_orient,
        segment_id=np.asarray(seg_id if seg_id is not None else np.arange(m) + 1_000_000, dtype=np.int32),
        segment_dist_x=sdx, segment_ph_cnt=np.asarray(counts, dtype=np.int32),
        segment_delta_time=np.asarray(seg_time if seg_time is not None else np.arange(m, dtype=float)),
        velocity_sc=np.tile(np.asarray(velocity, dtype=np.float32), (m, 1)),
        solar_elevation=np.linspace(10, 20, m).astype(np.float32),
        delta_time=np.linspace(1, 2, n), lat_ph=zeros, lon_ph=zeros,
        h_ph=np.asarray(h if h is not None else zeros, dtype=np.float32),
        dist_ph_along=np.asarray(dpa, dtype=np.float32), dist_ph_across=zeros.astype(np.float32),
        signal_conf_ph=np.full(n, 4, dtype=np.int8), quality_ph=np.zeros(n, dtype=np.int8),
        bckgrd_delta_time=np.asarray(bckgrd_time, dtype=np.float64),
        bckgrd_rate=np.asarray(bckgrd_rate, dtype=np.float32),
    )
