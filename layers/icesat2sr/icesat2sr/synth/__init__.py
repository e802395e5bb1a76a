"""Synthetic ATL03 (and companion ATL08) granules in the real layout, with a known truth surface.

The files mimic released ATL03/ATL08 granules as far as SlideRule reads them (SPEC §1-§3): six
beams, chunked ``(10000,)`` / ``(10000, 5)`` / ``(10000, 3)`` datasets, gzip level 6, shuffle on
integer datasets, h5py's default ``libver="earliest"`` (so h5coro 1.0.7 reads them).

Model (all numbers are fields of :class:`GranuleSpec`, stored as JSON in the root attribute
``icesat2sr_synth_spec``; :func:`read_spec` gives it back):

* Geometry: a great circle from ``(lat0, lon0)`` with azimuth ``heading_deg``; beam ``gtNs`` runs
  parallel to it at the across-track offset :data:`BEAM_Y` (positive = left of the direction of
  travel; pairs 3.3 km apart, left/right 90 m apart). Every beam shares the same geolocation
  segments (ids, ``segment_dist_x``); segment lengths are 20 m +- 0.01 m.
* Shots: 10 kHz, ground speed :data:`GROUND_SPEED` (0.695 m apart), time ``delta_time`` from
  ``start``. A photon's along-track distance is its shot's plus N(0, 0.15 m); it belongs to its
  shot's segment (so ``dist_ph_along`` may be slightly negative or exceed the segment length, as
  in real files). Photons of a shot are stored in arrival order (highest first).
* Heights: ground photons ``truth_height + N(0, 0.10 m)``, Poisson ``signal_rate`` per shot on
  strong beams and ``signal_rate * weak_ratio`` on weak beams; background photons uniform in
  ``truth +- 50 m`` (telemetry window), Poisson ``rate(t) * 2 * 100 m / c`` per shot where
  ``rate(t) = background_rate * (1 + background_variation * sin(2 pi (t - t0) / 2 s))``; that
  rate is also written to ``bckgrd_atlas`` (one sample per 50 shots).
* Features (segment indices from :func:`feature_segments`): a canopy patch (ground rate x0.35,
  canopy photons uniform 2 m .. tree height (12-20 m) above the ground), one gap (a run of >= 10
  empty segments) and a few scattered empty segments; afterpulses (3 % of strong-beam ground
  photons, 0.5-6 m below, ``quality_ph`` 1); a few ``quality_ph`` 2 (0.3 % of noise) and, on strong
  beams, ``quality_ph`` 3 photons (TEP, 0.1 % of noise, confidence -2 in every column).
* ``geolocation/podppd_flag``: nominal (0) but for two degraded runs (:func:`podppd_flags`).
* ``signal_conf_ph``: columns land (0) and land ice (3) are filled (they differ on purpose);
  ocean, sea ice and inland water are -1, except for TEP photons (-2 everywhere).
* Forest (``forest=True``, off by default; segments 5 %..28 % along the track): every 20 m
  segment is a stand whose tree height ``H`` is drawn from N(``forest_height_mean``,
  ``forest_height_sd``) clipped to [``forest_height_min``, ``forest_height_max``]
  (:func:`forest_heights`). Per shot, Poisson ``forest_ground_rate * rate`` ground photons and
  ``forest_canopy_rate * rate`` canopy photons; a canopy photon comes from the crown top
  (relief uniform in ``H - forest_top_depth .. H``) with probability ``forest_top_fraction``,
  else from the crown interior (uniform in ``forest_crown_base * H .. H``). :func:`canopy_truth`
  gives the relief percentiles this implies over any along-track window.
* Ancillary datasets (the ones SlideRule's ancillary-field requests read), in the real product's
  dtypes, with values that are simple known functions of position (:func:`ancillary_segment_values`,
  :func:`ancillary_photon_values`, :func:`ancillary_background_values`,
  :func:`ancillary_land_segment_values`); ``geophys_corr/tide_ocean`` is the float fill
  (3.4028235e38, "over land") on the first half of the segments, and ATL08 ``canopy/h_canopy``
  outside the canopy patch, as in released granules. They use their own random streams, so the
  photons are the same with or without them.

Modules: :mod:`.spec` (the spec, truth surface, forest and track geometry), :mod:`.photons` (a
beam's photons and arrays), :mod:`.ancillary` (ancillary datasets), :mod:`.writer` (HDF5 files).
"""

from .ancillary import (
    ancillary_background_values,
    ancillary_land_segment_values,
    ancillary_photon_values,
    ancillary_segment_values,
)
from .spec import (
    BEAM_Y,
    GROUND_SPEED,
    PRF,
    R_EARTH,
    SEGMENT,
    WINDOW,
    C,
    GranuleSpec,
    background_rate,
    canopy_truth,
    feature_segments,
    forest_heights,
    granule_name,
    is_strong,
    podppd_flags,
    segment_grid,
    start_delta_time,
    start_distance,
    tree_height,
    truth_height,
    truth_mean,
)
from .writer import read_spec, synthesize, write_granule

__all__ = [
    "BEAM_Y", "GROUND_SPEED", "PRF", "R_EARTH", "SEGMENT", "WINDOW", "C", "GranuleSpec",
    "ancillary_background_values", "ancillary_land_segment_values", "ancillary_photon_values",
    "ancillary_segment_values", "background_rate", "canopy_truth", "feature_segments", "forest_heights",
    "granule_name", "is_strong", "podppd_flags", "read_spec", "segment_grid", "start_delta_time",
    "start_distance", "synthesize", "tree_height", "truth_height", "truth_mean", "write_granule",
]
