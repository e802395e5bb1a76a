"""Per-kind steps: what one batch of extents of one chunk becomes (SPEC §6-§9).

A step gets a :class:`ChunkData` (one batch of extents and the photons they index) and returns
the tables of that batch as a partial :class:`GranuleResult`; a new kind plugs in with one
function registered by :func:`kind_step`. :func:`select` is the photon selection every kind
starts from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..granules.beam import Beam
from ..request.params import Parms
from ..request.timeutil import delta_time_to_ns
from ..science import ancillary, xseries
from ..science.extents import Extents
from ..science.fit import FitSettings, fit_extents
from ..science.records import GranuleResult, elevation_rows, photon_rows
from ..science.select import photon_confidence, photon_mask


@dataclass
class ChunkData:
    """One batch of extents of one chunk of one beam: what a per-kind step works on.

    Attributes
    ----------
    beam : Beam
        The beam's segment arrays (its region-trimmed run) with the chunk's window of photons.
    extents : Extents
        Emitted extents: ``photon`` indexes the window's photon arrays, ``segment`` the beam's
        segment arrays.
    conf : ndarray of int8
        Signal confidence (the request's surface type) of the window's photons.
    yapc : ndarray or None
        YAPC scores of the window's photons, when the request has ``yapc``.
    parms : Parms
    kind : str
    first : int
        Index in the beam of the window's first photon.
    """

    beam: Beam
    extents: Extents
    conf: np.ndarray
    yapc: np.ndarray | None
    parms: Parms
    kind: str
    first: int = 0


KIND_STEPS: dict[str, Callable[[ChunkData], GranuleResult]] = {}
KINDS = ("atl06", "atl03s", "atl08", "atl03x")
XPHOREAL = "atl03x-phoreal"  # the step of atl03x with phoreal (and no fit): PhoREAL's extents, x-series columns


def kind_step(kind: str) -> Callable:
    """Register the per-kind step of ``kind`` (decorator): ``step(ChunkData) -> GranuleResult``."""
    def register(step: Callable[[ChunkData], GranuleResult]) -> Callable[[ChunkData], GranuleResult]:
        KIND_STEPS[kind] = step
        return step
    return register


@kind_step("atl06")
def fit_step(chunk: ChunkData) -> GranuleResult:
    """ATL06-SR: the line fit of every extent of the batch, as elevation rows."""
    parms, beam, ext = chunk.parms, chunk.beam, chunk.extents
    settings = FitSettings(maxi=parms.maxi, H_min_win=parms.H_min_win, sigma_r_max=parms.sigma_r_max,
                           cnt=parms.cnt, ats=parms.ats)
    p = ext.photon
    anc = beam.extra.get("ancillary")  # requested ancillary fields, per photon of the window
    fit = fit_extents(ext.offsets, ext.x_rel, beam.h_ph[p], ext.length, ext.velocity, ext.background_rate,
                      settings, photon=p, latitude=beam.lat_ph, longitude=beam.lon_ph,
                      time_ns=_LazyTimes(beam.delta_time), y_atc=beam.dist_ph_across, delta_time=beam.delta_time,
                      extras=ancillary.fit_inputs(anc, slice(None)) if anc else None)
    rows = elevation_rows(beam, ext, fit, parms.compact)
    columns = ancillary.extent_columns(anc, p, ext.offsets, ext.x_rel, fit, np.flatnonzero(fit["fitted"])) \
        if anc else None
    return GranuleResult(beam.granule, "atl06", elevations=rows, ancillary=columns)


@kind_step("atl08")
def vegetation_step(chunk: ChunkData) -> GranuleResult:
    """PhoREAL: canopy metrics of every extent of the batch."""
    from ..science.phoreal import extents_with_photons, vegetation_rows

    rows, heads, bins = vegetation_rows(chunk.beam, chunk.extents, chunk.beam.atl08_class, chunk.parms.phoreal)
    anc = chunk.beam.extra.get("ancillary")
    columns = None
    if anc:
        offsets = extents_with_photons(chunk.extents)[1]
        columns = ancillary.vegetation_columns(anc, chunk.extents.photon, offsets)
    return GranuleResult(chunk.beam.granule, "atl08", vegetation=rows, waveforms=heads, waveform=bins,
                         ancillary=columns)


@kind_step(XPHOREAL)
def phoreal_frame_step(chunk: ChunkData) -> GranuleResult:
    """atl03x with ``phoreal``: PhoREAL of every extent of the batch, as SlideRule's x-series frame."""
    frame = xseries.phoreal_frame(chunk.beam, chunk.extents, chunk.parms, chunk.first)
    return GranuleResult(chunk.beam.granule, "atl03x", frame=frame)


@kind_step("atl03s")
def photon_step(chunk: ChunkData) -> GranuleResult:
    """Photon subsetting: extent headers and their photons."""
    head, photons, offsets = photon_rows(chunk.beam, chunk.extents, chunk.conf, chunk.yapc)
    anc = chunk.beam.extra.get("ancillary")
    return GranuleResult(chunk.beam.granule, "atl03s", extents=head, photons=photons, offsets=offsets,
                         ancillary=ancillary.photon_columns(anc, chunk.extents.photon) if anc else None)


class _LazyTimes:
    """``delta_time_to_ns`` of the photons the fit asks for (it only gathers its final photons)."""

    def __init__(self, delta_time: np.ndarray):
        self.delta_time = delta_time

    def __getitem__(self, index) -> np.ndarray:
        return delta_time_to_ns(self.delta_time[index])


def select(beam: Beam, parms: Parms, yapc: np.ndarray | None, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and selection mask of a beam's photons (``seg``: each photon's segment index).

    PhoREAL's ABoVE classifier, when on, moves photons to top of canopy first (in ``beam``).
    """
    conf = photon_confidence(beam.signal_conf_ph, parms.srt, beam.granule)
    if parms.phoreal is not None and parms.phoreal.above_classifier and beam.atl08_class is not None:
        from ..science.phoreal import above_classifier
        beam.atl08_class = above_classifier(beam.atl08_class, beam.relief, conf, beam.solar_elevation[seg], beam.spot)
    podppd = None if beam.podppd_flag is None else beam.podppd_flag[seg]
    mask = photon_mask(conf, beam.quality_ph, parms, beam.atl08_class, yapc, beam.granule, podppd_ph=podppd)
    return conf, mask

