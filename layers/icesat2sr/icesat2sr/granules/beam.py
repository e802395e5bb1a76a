"""One beam of one granule, trimmed to the request's region: the arrays the science works on.

Dtypes are those SlideRule's reader declares (SPEC §1.2). Photon arrays have length ``N``,
segment arrays length ``M``; ``segment_ph_cnt`` sums to at most ``N`` (photons past the last
segment are never used, as in SlideRule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..request.names import GT_CODE, spot, track_pair


@dataclass
class Beam:
    """Region-trimmed arrays of one beam plus its identity (granule fields, orientation)."""

    granule: str
    beam: str                       # gt1l .. gt3r
    rgt: int
    cycle: int
    region: int
    sc_orient: int                  # 0 backward, 1 forward, 2 transition
    # geolocation segments (M)
    segment_id: np.ndarray          # i4
    segment_dist_x: np.ndarray      # f8, m from the equator crossing to the segment start
    segment_ph_cnt: np.ndarray      # i4, photons per segment (0 allowed)
    segment_delta_time: np.ndarray  # f8
    velocity_sc: np.ndarray         # f4 (M, 3)
    solar_elevation: np.ndarray     # f4
    # photons (N)
    delta_time: np.ndarray          # f8
    lat_ph: np.ndarray              # f8
    lon_ph: np.ndarray              # f8
    h_ph: np.ndarray                # f4
    dist_ph_along: np.ndarray       # f4, m from the start of the photon's segment
    dist_ph_across: np.ndarray      # f4
    signal_conf_ph: np.ndarray      # i1 (N,) for one surface type; (N, 5) when srt = -1
    quality_ph: np.ndarray          # i1
    # background (B), not region-trimmed
    bckgrd_delta_time: np.ndarray   # f8
    bckgrd_rate: np.ndarray         # f4
    weight_ph: np.ndarray | None = None   # ATL03-native YAPC weight, only for yapc version 0
    atl08_class: np.ndarray | None = None  # u1 per photon when ATL08 was joined (§2)
    podppd_flag: np.ndarray | None = None  # u1 per segment, only when the request filters on it
    relief: np.ndarray | None = None       # f4 ATL08 ph_h per photon (PhoREAL only)
    landcover: np.ndarray | None = None    # u1 ATL08 land segment flags per photon (PhoREAL only)
    snowcover: np.ndarray | None = None
    first_segment: int = 0          # index of segment_id[0] in the full beam (provenance)
    first_photon: int = 0           # index of photon 0 in the full beam
    extra: dict = field(default_factory=dict)

    @property
    def track(self) -> int:
        """Reference pair track, 1-3."""
        return track_pair(self.beam)[0]

    @property
    def pair(self) -> int:
        """0 for the left beam of the pair, 1 for the right."""
        return track_pair(self.beam)[1]

    @property
    def spot(self) -> int:
        """Laser spot 1-6 (0 in transition)."""
        return spot(self.sc_orient, self.beam)

    @property
    def gt(self) -> int:
        """Ground-track code 10..60."""
        return GT_CODE[self.beam]

    @property
    def n_photons(self) -> int:
        """Photons usable by the extent walk: those covered by the segments."""
        return int(min(len(self.h_ph), int(np.sum(self.segment_ph_cnt, dtype=np.int64))))

    def photon_segment(self) -> np.ndarray:
        """Segment index (into the segment arrays) of every photon, from cumulative counts."""
        return np.repeat(np.arange(len(self.segment_ph_cnt), dtype=np.int64),
                         self.segment_ph_cnt.astype(np.int64))[: len(self.h_ph)]
