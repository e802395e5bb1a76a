"""Per-photon selection (SPEC §2, §4.2-4.4, §4.7): confidence, quality, ATL08 class, YAPC score.

Everything works on whole region-trimmed beams at once. The order of the tests matters only for
which photons are *validated*: as in SlideRule's ``subsettingThread``, a photon rejected by an
earlier test is never checked by a later one, so e.g. an out-of-range ``quality_ph`` on a photon
whose confidence is not wanted does not fail the granule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..request.errors import ResourceError
from ..request.params import Parms

CNF_MIN, CNF_MAX = -2, 4
NUM_PHOTON_QUALITY = 26      # quality_ph 0..25 (release >= 006 values included)
NUM_ATL08_CLASSES = 5        # 0 noise .. 3 top of canopy, 4 unclassified
NUM_SURFACE_TYPES = 5


# ---------------------------------------------------------------------- confidence
def photon_confidence(signal_conf_ph: np.ndarray, srt: int, granule: str = "") -> np.ndarray:
    """Signal confidence of every photon for the request's surface type.

    Parameters
    ----------
    signal_conf_ph : ndarray of int8, shape (N,), (N, 1) or (N, 5)
        ``heights/signal_conf_ph``: the ``srt`` column already sliced out, or all five columns
        (required when ``srt == -1``).
    srt : int
        Surface type -1..4; -1 ("dynamic") takes the maximum over the five columns.
    granule : str
        Granule name for error messages.

    Returns
    -------
    ndarray of int8, shape (N,)

    Raises
    ------
    ResourceError
        If a confidence is outside -2..4 (SlideRule: "invalid atl03 signal confidence").
    ValueError
        If the shape does not fit ``srt``.
    """
    conf = np.asarray(signal_conf_ph)
    if not -1 <= srt < NUM_SURFACE_TYPES:
        raise ValueError(f"srt must be in -1..4, got {srt}")
    if conf.ndim == 2 and conf.shape[1] == NUM_SURFACE_TYPES:
        conf = conf.max(axis=1) if srt == -1 else conf[:, srt]
    elif srt == -1:
        raise ValueError(f"srt -1 needs all {NUM_SURFACE_TYPES} signal_conf_ph columns, "
                         f"got shape {conf.shape}")
    elif conf.ndim == 2 and conf.shape[1] == 1:
        conf = conf[:, 0]
    elif conf.ndim != 1:
        raise ValueError(f"signal_conf_ph must be (N,), (N, 1) or (N, 5), got shape {conf.shape}")
    conf = conf.astype(np.int8, copy=False)
    _check_range(conf, CNF_MIN, CNF_MAX, granule, "invalid atl03 signal confidence")
    return conf


# ---------------------------------------------------------------------- the mask
def photon_mask(conf: np.ndarray, quality_ph: np.ndarray, parms: Parms,
                atl08_class: np.ndarray | None = None, yapc_score: np.ndarray | None = None,
                granule: str = "", podppd_ph: np.ndarray | None = None) -> np.ndarray:
    """Photons passing every per-photon test of SPEC §4.7, in SlideRule's order.

    cnf membership -> quality_ph membership -> POD/PPD flag bit set in ``parms.podppd`` (when
    set and not 0; SlideRule's atl03x test: bit ``podppd_flag`` of the mask) -> ATL08 class membership (when
    ``parms.atl08_class`` is set) -> ``yapc_score >= parms.yapc.score`` (when ``parms.yapc``
    is set). Each value is validated only on photons that passed the earlier tests.

    Parameters
    ----------
    conf : ndarray of int8, shape (N,)
        Output of :func:`photon_confidence`.
    quality_ph : ndarray of int8, shape (N,)
        ``heights/quality_ph``.
    parms : Parms
        Uses ``cnf``, ``quality_ph``, ``podppd``, ``atl08_class`` and ``yapc``.
    atl08_class : ndarray of uint8, shape (N,), optional
        Output of :func:`icesat2sr.granules.atl08.atl08_classes`; required when ``parms.atl08_class`` is set.
    yapc_score : ndarray of uint8 or uint16, shape (N,), optional
        YAPC scores (:func:`icesat2sr.science.yapc.yapc_scores`); required when ``parms.yapc`` is set.
    granule : str
        Granule name for error messages.
    podppd_ph : ndarray of uint8, shape (N,), optional
        Each photon's segment ``geolocation/podppd_flag`` (0-7); required when ``parms.podppd`` is set (not 0).

    Returns
    -------
    ndarray of bool, shape (N,)

    Raises
    ------
    ResourceError
        For a confidence outside -2..4, a quality outside 0..25 or a class outside 0..4.
    ValueError
        If a stage is on but its array is missing, or the arrays differ in length.
    """
    conf = np.asarray(conf)
    n = len(conf)
    _check_range(conf, CNF_MIN, CNF_MAX, granule, "invalid atl03 signal confidence")
    keep = _member(conf, parms.cnf, CNF_MIN, CNF_MAX)

    quality = _stage_array(quality_ph, n, "quality_ph")
    _check_range(quality[keep], 0, NUM_PHOTON_QUALITY - 1, granule, "invalid atl03 photon quality")
    keep &= _member(quality, parms.quality_ph, 0, NUM_PHOTON_QUALITY - 1)

    if parms.podppd:   # 0, like none, filters nothing (SlideRule: usePodppd = mask != 0)
        flags = _stage_array(podppd_ph, n, "podppd_ph")
        _check_range(flags[keep], 0, 7, granule, "invalid POD/PPD flag")
        keep &= _member(flags, [bit for bit in range(8) if parms.podppd >> bit & 1], 0, 7)

    if parms.atl08_class is not None:
        classes = _stage_array(atl08_class, n, "atl08_class")
        _check_range(classes[keep], 0, NUM_ATL08_CLASSES - 1, granule, "invalid atl08 classification")
        keep &= _member(classes, parms.atl08_class, 0, NUM_ATL08_CLASSES - 1)

    if parms.yapc is not None:
        scores = _stage_array(yapc_score, n, "yapc_score")
        keep &= scores >= parms.yapc.score
    return keep


def _stage_array(values: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if values is None:
        raise ValueError(f"{name} is required by the request's parameters")
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"{name} has shape {values.shape}, expected ({n},)")
    return values


def _member(values: np.ndarray, allowed: Sequence[int], lo: int, hi: int) -> np.ndarray:
    """``values in allowed`` (all within lo..hi) through a lookup table."""
    table = np.zeros(hi - lo + 1, dtype=bool)
    table[np.asarray(allowed, dtype=np.int64) - lo] = True
    # Out-of-range values belong to photons already rejected (never validated): clip them.
    return table[np.clip(values.astype(np.int64) - lo, 0, hi - lo)]


def _check_range(values: np.ndarray, lo: int, hi: int, granule: str, message: str) -> None:
    if values.size == 0 or (values.min() >= lo and values.max() <= hi):
        return
    bad = (values < lo) | (values > hi)
    if np.any(bad):
        raise ResourceError(granule, f"{message}: {int(values[np.argmax(bad)])}")


__all__ = ["photon_confidence", "photon_mask"]
