"""Ancillary fields: which datasets a request asks for, reading them, and their value per photon.

SlideRule's ancillary-field families (its ``Atl03Reader``), each a list of dataset names:

| key | group | one value per | ``anc_type`` |
|---|---|---|---|
| ``atl03_ph_fields`` | ``heights/`` | photon | 0 |
| ``atl03_geo_fields`` | ``geolocation/`` (``geophys_corr/`` for names starting tid, geo, dem, dac) | segment | 1 |
| ``atl08_fields`` | ATL08 ``land_segments/`` (``name%``: interpolated per extent) | land segment | 2 |
| ``atl03_corr_fields`` | ``geophys_corr/`` | segment | 4 (ours) |
| ``atl03_bckgrd_fields`` | ``bckgrd_atlas/`` | background sample | 5 (ours) |

Every field is carried to the photons as SlideRule does: a segment value to the photons of the
segment, a background sample to the photons of the segments whose time it covers (SlideRule's
x-series rule: the last sample at or before the segment's ``delta_time``), an ATL08 land segment
to the classified photons of the ATL03 segments it spans. A photon without a land segment gets
all-0xFF bytes (NaN, -1, or the unsigned maximum), as SlideRule sends it. Only the region's
hyperslices are read (segments, photons, background samples, land segments); a two-dimensional
dataset gives its first column, as in SlideRule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..request.errors import ResourceError
from ..request.params import ANCILLARY_KEYS, Parms
from .assets import Asset
from .beam import Beam
from .h5read import Read

ANC_TYPE = {"atl03_ph_fields": 0, "atl03_geo_fields": 1, "atl08_fields": 2, "atl03_corr_fields": 4,
            "atl03_bckgrd_fields": 5}
"""``anc_type`` of each family on the wire (0-2 SlideRule's; 3 is its atl06_fields; 4-5 ours)."""
FAMILY = {v: k for k, v in ANC_TYPE.items()}
_GEOPHYS_PREFIXES = ("tid", "geo", "dem", "dac")   # SlideRule's geo-field rule (Atl03Reader)
_PER_SEGMENT = {"atl03_geo_fields", "atl03_corr_fields"}


@dataclass(frozen=True)
class AncField:
    """One requested ancillary field.

    Attributes
    ----------
    key : str
        Its family (request key), e.g. ``atl03_geo_fields``.
    index : int
        Position in that request list (SlideRule's ``field_index``).
    name : str
        The name as requested (``h_dif_ref%`` keeps its ``%``): the column name.
    dataset : str
        Path below the beam group, e.g. ``geophys_corr/dem_h``.
    """

    key: str
    index: int
    name: str
    dataset: str

    @property
    def anc_type(self) -> int:
        """SlideRule's ``anc_type`` of the family."""
        return ANC_TYPE[self.key]

    @property
    def interpolate(self) -> bool:
        """``name%`` (ATL08): SlideRule's "interpolation" estimate."""
        return self.name.endswith("%")


def requested_fields(parms: Parms) -> list[AncField]:
    """The request's ancillary fields in wire order (ph, geo, atl08, corr, bckgrd; list order within)."""
    out = []
    for key in ANCILLARY_KEYS:
        for i, name in enumerate(getattr(parms, key) or ()):
            out.append(AncField(key, i, name, _dataset(key, name.rstrip("%"))))
    return out


def _dataset(key: str, name: str) -> str:
    if key == "atl03_ph_fields":
        return f"heights/{name}"
    if key == "atl03_geo_fields":
        return f"{'geophys_corr' if name.startswith(_GEOPHYS_PREFIXES) else 'geolocation'}/{name}"
    if key == "atl03_corr_fields":
        return f"geophys_corr/{name}"
    if key == "atl03_bckgrd_fields":
        return f"bckgrd_atlas/{name}"
    return f"land_segments/{name}"


def atl03_reads(beams: Sequence[str], runs: dict, fields: Sequence[AncField], photons: bool = True) -> list[Read]:
    """Hyperslice reads of the ATL03 fields (segment or photon range of each beam's run).

    Background fields are read whole here and trimmed by :func:`photon_values` (the beam's
    ``bckgrd_atlas/delta_time`` is needed first to know the range; it is 1/50 of the shots).
    ``photons=False`` leaves the per-photon fields out (read a window at a time: :func:`photon_reads`).
    """
    reads = []
    for b in beams:
        (s0, s1), (p0, p1), _ = runs[b]
        for f in fields:
            if f.key == "atl03_ph_fields":
                if photons:
                    reads.append(Read(f"/{b}/{f.dataset}", [(p0, p1)], optional=True))
            elif f.key in _PER_SEGMENT:
                reads.append(Read(f"/{b}/{f.dataset}", [(s0, s1)], optional=True))
            elif f.key == "atl03_bckgrd_fields":
                reads.append(Read(f"/{b}/{f.dataset}", optional=True))
    return reads


def photon_reads(beam: str, lo: int, hi: int, fields: Sequence[AncField]) -> list[Read]:
    """Reads of the per-photon fields for photons ``lo .. hi - 1`` of a beam (file indices)."""
    return [Read(f"/{beam}/{f.dataset}", [(lo, hi)], optional=True) for f in fields if f.key == "atl03_ph_fields"]


def read_land_segments(asset: Asset, atl08_name: str, beams: Sequence[str], runs: dict, data: dict,
                       fields: Sequence[AncField], resource: str) -> dict[str, dict]:
    """ATL08 land segments spanning each beam's run: ``segment_id_beg/end`` and the fields.

    Returns
    -------
    dict
        beam -> ``{"beg": i4, "end": i4, "values": {AncField: array}}`` (absent beams: not listed).
    """
    fields = [f for f in fields if f.key == "atl08_fields"]
    if not fields:
        return {}
    try:
        with asset.open(atl08_name) as h5:
            present = h5.groups("/")
            missing = [b for b in beams if b not in present]
            if missing:
                raise ResourceError(atl08_name, f"no beam {missing[0]} in the ATL08 granule")
            bounds = h5.read([Read(f"/{b}/land_segments/segment_id_{e}") for b in beams for e in ("beg", "end")])
            spans = {b: _land_span(bounds, b, data[f"/{b}/geolocation/segment_id"]) for b in beams}
            values = h5.read([Read(f"/{b}/{f.dataset}", [spans[b][:2]] if spans[b][1] else [], optional=True)
                              for b in beams for f in fields])
    except ResourceError as exc:
        raise ResourceError(resource, f"atl08_fields need the ATL08 granule {atl08_name}: {exc}",
                            ResourceError.RESOURCE_DOES_NOT_EXIST) from None
    out = {}
    for b in beams:
        _, _, beg, end = spans[b]
        vals = {f: _column(_required(values.get(f"/{b}/{f.dataset}"), f, f"/{b}/{f.dataset}", atl08_name))
                for f in fields}
        out[b] = {"beg": beg, "end": end, "values": vals}
    return out


def _land_span(bounds: dict, b: str, segment_id: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Land segments ``[lo, hi)`` that can hold photons of the run (at least one when any exist)."""
    beg = bounds[f"/{b}/land_segments/segment_id_beg"].astype(np.int64)
    end = bounds[f"/{b}/land_segments/segment_id_end"].astype(np.int64)
    if not len(beg):
        return 0, 0, beg, end
    lo = hi = 0
    if segment_id.size:
        lo = max(int(np.searchsorted(beg, int(segment_id.min()), side="right")) - 1, 0)
        hi = int(np.searchsorted(beg, int(segment_id.max()), side="right"))
    hi = max(hi, lo + 1)
    return lo, hi, beg[lo:hi], end[lo:hi]


def photon_values(beam: Beam, data: dict, fields: Sequence[AncField], land: dict | None,
                  seg: np.ndarray | None = None) -> dict[AncField, np.ndarray]:
    """Every requested field's value for every photon of a region-trimmed beam (dataset dtype).

    Parameters
    ----------
    beam : Beam
        With ``atl08_class`` set when ATL08 fields are requested.
    data : dict
        The reader's path -> array (holds the :func:`atl03_reads`).
    fields : sequence of AncField
        The requested fields (:func:`requested_fields`).
    land : dict or None
        This beam's entry of :func:`read_land_segments` (needed for ATL08 fields).
    seg : ndarray of int64, optional
        The segment (index in the beam's segment arrays) of each photon, when the beam holds a
        window of its photons; default: photon 0 starts segment 0.

    Raises
    ------
    ResourceError
        A requested dataset is not in the granule, or its length does not fit the run.
    """
    out = {}
    seg = beam.photon_segment() if seg is None else seg
    b = beam.beam
    for f in fields:
        path = f"/{b}/{f.dataset}"
        if f.key == "atl08_fields":
            out[f] = _land_values(beam, seg, f, land)
            continue
        values = _column(_required(data.get(path), f, path, beam.granule))
        if f.key == "atl03_ph_fields":
            _check_length(values, len(beam.h_ph), f, path, beam.granule)
            out[f] = values
        elif f.key in _PER_SEGMENT:
            _check_length(values, len(beam.segment_id), f, path, beam.granule)
            out[f] = values[seg]
        else:
            _check_length(values, len(beam.bckgrd_delta_time), f, path, beam.granule)
            out[f] = values[background_index(beam.bckgrd_delta_time, beam.segment_delta_time)][seg]
    return out


def background_index(bckgrd_delta_time: np.ndarray, segment_delta_time: np.ndarray) -> np.ndarray:
    """Per segment: the last background sample at or before its time (0 before the first), never going back."""
    index = np.searchsorted(bckgrd_delta_time, segment_delta_time, side="right") - 1
    index = np.clip(index, 0, max(len(bckgrd_delta_time) - 1, 0))
    return np.maximum.accumulate(index) if index.size else index


def invalid_value(dtype: np.dtype) -> np.generic:
    """All-0xFF bytes of ``dtype``: SlideRule's value for a photon without an ATL08 land segment."""
    return np.frombuffer(b"\xff" * np.dtype(dtype).itemsize, dtype=dtype)[0]


def _land_values(beam: Beam, seg: np.ndarray, f: AncField, land: dict) -> np.ndarray:
    n = len(beam.h_ph)
    values = land["values"][f]
    index = land_segment_index(beam.segment_id[seg], land["beg"], land["end"], beam.atl08_class)
    out = np.full(n, invalid_value(values.dtype), dtype=values.dtype)
    ok = index >= 0
    out[ok] = values[index[ok]]
    return out


def land_segment_index(photon_segment_id: np.ndarray, beg: np.ndarray, end: np.ndarray,
                       atl08_class: np.ndarray | None) -> np.ndarray:
    """Index of each photon's ATL08 land segment, -1 when it has none.

    A photon has one when ATL08 classified it (class 0-3) and its ATL03 segment id lies in
    ``[segment_id_beg, segment_id_end]`` of a land segment (the last one starting at or before it).
    """
    j = np.searchsorted(beg, photon_segment_id, side="right") - 1
    jj = np.maximum(j, 0)
    ok = (j >= 0) & (photon_segment_id <= end[jj]) if len(beg) else np.zeros(len(j), bool)
    if atl08_class is not None:
        ok &= atl08_class[: len(j)] < 4
    return np.where(ok, j, -1)


def _required(values: np.ndarray | None, f: AncField, path: str, granule: str) -> np.ndarray:
    if values is None:
        raise ResourceError(granule, f"{f.key}: '{f.name}' is not in the granule (no dataset {path})")
    return values


def _check_length(values: np.ndarray, n: int, f: AncField, path: str, granule: str) -> None:
    if len(values) != n:
        raise ResourceError(granule, f"{f.key}: '{f.name}' ({path}) has {len(values)} values where "
                                     f"{n} are expected; it is not a per-{_unit(f.key)} dataset")


def _unit(key: str) -> str:
    return {"atl03_ph_fields": "photon", "atl03_bckgrd_fields": "background sample"}.get(key, "segment")


def _column(values: np.ndarray) -> np.ndarray:
    """The first column of a 2-D dataset (SlideRule reads column 0); 1-D as is."""
    values = np.asarray(values)
    if values.ndim > 1:
        values = values.reshape(len(values), -1)[:, 0]
    return np.ascontiguousarray(values)
