"""Ancillary datasets of a synthetic granule: known functions of position, in the real dtypes."""

from __future__ import annotations

import numpy as np

from .spec import FILL_F4, WINDOW, GranuleSpec, feature_segments, start_distance, tree_height, truth_height

# ------------------------------------------------------------------------------------------------
# ancillary datasets (known values; real dtypes)


def ancillary_segment_values(spec: GranuleSpec, beam: str, grid: tuple[np.ndarray, np.ndarray, np.ndarray]
                             ) -> dict[str, np.ndarray]:
    """``geolocation/`` and ``geophys_corr/`` ancillary datasets of one beam (one value per segment).

    With ``i`` the segment index and ``u`` the distance of the segment centre from the start (m):
    ``sigma_h = 0.02 + 0.001 (i mod 50)``, ``ref_elev = 1.5 + 1e-6 i`` (rad), ``ref_azimuth = -3 + 1e-4 i``,
    ``solar_azimuth = 120 + 1e-3 i`` (``podppd_flag``: :func:`podppd_flags`),
    ``surf_type`` (M, 5) = ``[1, 0, 0, 1, 0]`` (``[0, 0, 0, 1, 0]`` on every 7th segment);
    ``geoid = -30 + 1e-4 u``, ``dem_h`` = truth at the centre + 0.5, ``dem_flag = 3``,
    ``tide_ocean`` = fill on the first half of the segments, ``0.4 sin(u / 3000)`` after,
    ``tide_earth = 0.1 cos(u / 5000)``, ``tide_load = 0.01``, ``dac = -0.05 + 1e-6 u``.
    """
    sid, dist, length = grid
    m = len(sid)
    i = np.arange(m)
    u = dist + length / 2.0 - start_distance(spec)
    surf = np.tile(np.array([1, 0, 0, 1, 0], dtype=np.int8), (m, 1))
    surf[i % 7 == 0, 0] = 0
    tide_ocean = (0.4 * np.sin(u / 3000.0)).astype(np.float32)
    tide_ocean[: m // 2] = FILL_F4
    return {
        "geolocation/sigma_h": (0.02 + 0.001 * (i % 50)).astype(np.float32),
        "geolocation/ref_elev": (1.5 + 1e-6 * i).astype(np.float32),
        "geolocation/ref_azimuth": (-3.0 + 1e-4 * i).astype(np.float32),
        "geolocation/solar_azimuth": (120.0 + 1e-3 * i).astype(np.float32),
        "geolocation/surf_type": surf,
        "geophys_corr/geoid": (-30.0 + 1e-4 * u).astype(np.float32),
        "geophys_corr/dem_h": (truth_height(dist + length / 2.0, spec, beam) + 0.5).astype(np.float32),
        "geophys_corr/dem_flag": np.full(m, 3, dtype=np.int8),
        "geophys_corr/tide_ocean": tide_ocean,
        "geophys_corr/tide_earth": (0.1 * np.cos(u / 5000.0)).astype(np.float32),
        "geophys_corr/tide_load": np.full(m, 0.01, dtype=np.float32),
        "geophys_corr/dac": (-0.05 + 1e-6 * u).astype(np.float32),
    }


def ancillary_photon_values(shot: np.ndarray, first: np.ndarray, cnt: np.ndarray) -> dict[str, np.ndarray]:
    """``heights/`` ancillary datasets (one value per photon, file order).

    ``ph_id_pulse = 1 + shot mod 200``, ``pce_mframe_cnt = 1000 + shot // 200``, ``ph_id_count`` =
    1-based position of the photon in its shot, ``ph_id_channel = 1 + (photon index in its segment) mod 16``.
    """
    n = len(shot)
    new_shot = np.ones(n, dtype=bool)
    new_shot[1:] = shot[1:] != shot[:-1]
    start = np.maximum.accumulate(np.where(new_shot, np.arange(n), 0))
    seg_start = np.repeat(first, cnt)
    return {
        "heights/ph_id_pulse": (1 + shot % 200).astype(np.uint8),
        "heights/pce_mframe_cnt": (1000 + shot // 200).astype(np.uint32),
        "heights/ph_id_count": (1 + np.arange(n) - start).astype(np.uint8),
        "heights/ph_id_channel": (1 + (np.arange(n) - seg_start) % 16).astype(np.uint8),
    }


def ancillary_background_values(bckgrd_delta_time: np.ndarray, spec: GranuleSpec) -> dict[str, np.ndarray]:
    """``bckgrd_atlas/`` ancillary datasets (one value per 50-shot sample ``k``).

    ``bckgrd_counts = 100 + k mod 37`` (int32), ``bckgrd_int_height = 100`` m, ``bckgrd_hist_top =
    50 + 1e-3 k`` (float32), ``pce_mframe_cnt = 1000 + k // 4`` (int64).
    """
    k = np.arange(len(bckgrd_delta_time))
    return {
        "bckgrd_atlas/bckgrd_counts": (100 + k % 37).astype(np.int32),
        "bckgrd_atlas/bckgrd_int_height": np.full(len(k), WINDOW, dtype=np.float32),
        "bckgrd_atlas/bckgrd_hist_top": (50.0 + 1e-3 * k).astype(np.float32),
        "bckgrd_atlas/pce_mframe_cnt": (1000 + k // 4).astype(np.int64),
    }


def ancillary_land_segment_values(spec: GranuleSpec, beam: str, beg: np.ndarray, end: np.ndarray,
                                  grid: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """ATL08 ``land_segments/`` ancillary datasets (one value per land segment ``j``).

    ``terrain/h_te_best_fit`` / ``h_te_median`` = truth at the land segment's centre (+ 0.05 for the
    median), ``canopy/h_canopy`` = tree height at the centre inside the canopy patch, fill elsewhere,
    ``canopy/canopy_openness = 1 + 0.01 j``, ``segment_landcover`` 111 in the patch or the forest,
    else 121 (int16),
    ``segment_snowcover = 1`` (int8), ``h_dif_ref = 0.25 - 1e-3 j``, ``rgt`` = the granule's (int16),
    ``sigma_atlas_land = 0.2 + 1e-3 j``, ``cloud_flag_atm = j mod 3`` (int8), ``night_flag = 0`` (int32).
    """
    _, dist, length = grid
    j = np.arange(len(beg))
    x = (dist[beg] + dist[end] + length[end]) / 2.0
    patch = np.isin(beg, feature_segments(spec, beam)["canopy"]) | np.isin(end, feature_segments(spec, beam)["canopy"])
    wooded = patch | np.isin(beg, feature_segments(spec, beam)["forest"])
    ground = truth_height(x, spec, beam)
    return {
        "land_segments/terrain/h_te_best_fit": ground.astype(np.float32),
        "land_segments/terrain/h_te_median": (ground + 0.05).astype(np.float32),
        "land_segments/canopy/h_canopy": np.where(patch, tree_height(x, spec), FILL_F4).astype(np.float32),
        "land_segments/canopy/canopy_openness": (1.0 + 0.01 * j).astype(np.float32),
        "land_segments/segment_landcover": np.where(wooded, 111, 121).astype(np.int16),
        "land_segments/segment_snowcover": np.ones(len(j), dtype=np.int8),
        "land_segments/h_dif_ref": (0.25 - 1e-3 * j).astype(np.float32),
        "land_segments/rgt": np.full(len(j), spec.rgt, dtype=np.int16),
        "land_segments/sigma_atlas_land": (0.2 + 1e-3 * j).astype(np.float32),
        "land_segments/cloud_flag_atm": (j % 3).astype(np.int8),
        "land_segments/night_flag": np.zeros(len(j), dtype=np.int32),
    }


