"""Record layouts (SPEC §7.3/§7.4), extent ids (§10.2) and the lossless msgpack round trip."""

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from icesat2sr.science.records import (
    COMPACT,
    ELEVATION,
    EXTENT,
    PHOTON,
    GranuleResult,
    concat,
    extent_ids,
    pack,
    unpack,
)


def test_layouts_match_spec_struct_formats():
    # SPEC §7.3 "Python struct formats (verified with the clients)"
    assert ELEVATION.itemsize == struct.calcsize("<QIiHHBBBBqddd" + "ffffff" + "ddf") + 4 == 104
    assert EXTENT.itemsize == struct.calcsize("<BBBBHBxIIffdddQ") == 56
    assert PHOTON.itemsize == struct.calcsize("<qddffffBBBbbB") + 2 + struct.calcsize("<dd") == 64
    offsets = {name: ELEVATION.fields[name][1] for name in ELEVATION.names}
    assert (offsets["time"], offsets["h_mean"], offsets["h_sigma"], offsets["distance"], offsets["dh_fit_dy"]) == \
        (24, 48, 76, 80, 96)
    assert PHOTON.fields["yapc_score"][1] == 45 and EXTENT.fields["extent_id"][1] == 48


def test_elevation_bytes_decode_with_struct():
    row = np.zeros(1, dtype=ELEVATION)
    row["extent_id"], row["segment_id"], row["h_mean"], row["dh_fit_dy"] = 2**63 + 5, 405449, 1501.84, 0.25
    fields = struct.unpack("<QIiHHBBBBqddd" + "ffffff" + "ddf" + "4x", row.tobytes())
    assert fields[0] == 2**63 + 5 and fields[1] == 405449 and fields[12] == 1501.84 and fields[-1] == 0.25


def test_extent_id_spec_example():
    # SPEC §10.2: rgt 315, cycle 1, region 11, track 2, pair 1, counter 7, elevation bit
    got = int(extent_ids(315, 1, 11, 2, 1, np.array([7]))[0]) | 0x2
    assert got == (315 << 52) | (1 << 36) | (11 << 32) | (2 << 30) | (7 << 2) | 0x2 | 1
    # the counter keeps 28 bits
    assert int(extent_ids(1, 1, 1, 1, 0, np.array([2**28 + 3]))[0]) & 0x3FFFFFFC == 3 << 2


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(ELEVATION, st.integers(0, 50)), hnp.arrays(EXTENT, st.integers(0, 10)),
       hnp.arrays(PHOTON, st.integers(0, 30)))
def test_pack_round_trip_is_lossless(elevations, extents, photons):
    for result in (GranuleResult("g", "atl06", elevations=elevations, stats={"read_s": 1.5}),
                   GranuleResult("g", "atl03s", extents=extents, photons=photons,
                                 offsets=np.arange(len(extents) + 1, dtype=np.int64)),
                   GranuleResult("g", "atl06", error=(-3, "missing"))):
        back = unpack(pack(result))
        assert (back.granule, back.kind, back.error, back.stats) == (result.granule, result.kind, result.error,
                                                                    result.stats)
        for name in ("elevations", "extents", "photons", "offsets"):
            a, b = getattr(result, name), getattr(back, name)
            assert (a is None) == (b is None)
            if a is not None:
                assert a.dtype == b.dtype
                for field in a.dtype.names or [None]:  # bit-exact per field, NaNs included (not padding)
                    assert (a[field] if field else a).tobytes() == (b[field] if field else b).tobytes()


def test_compact_round_trip_and_concat():
    rows = np.zeros(3, dtype=COMPACT)
    rows["h_mean"] = [1.0, 2.0, np.nan]
    back = unpack(pack(GranuleResult("g", "atl06", elevations=rows))).elevations
    assert back.dtype == COMPACT and back.tobytes() == rows.tobytes()
    merged = concat([GranuleResult("a", "atl06", elevations=rows), GranuleResult("b", "atl06", error=(-1, "x")),
                     GranuleResult("c", "atl06", elevations=rows[:1])], "atl06")
    assert len(merged.elevations) == 4
    assert concat([], "atl06", compact=True).elevations.dtype == COMPACT


def test_merged_tables_keep_the_wire_layout():
    # plain np.concatenate of structured arrays drops the padding (ELEVATION 104 -> 100 bytes)
    rows = np.zeros(2, dtype=ELEVATION)
    parts = [GranuleResult(g, "atl06", elevations=rows) for g in "ab"]
    assert concat(parts, "atl06").elevations.dtype == ELEVATION
    ph = GranuleResult("a", "atl03s", extents=np.zeros(1, EXTENT), photons=np.zeros(3, PHOTON),
                       offsets=np.array([0, 3]))
    merged = concat([ph, ph], "atl03s")
    assert merged.extents.dtype == EXTENT and merged.photons.dtype == PHOTON


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.none(), hnp.arrays(ELEVATION, st.integers(0, 20))), max_size=5),
       st.lists(hnp.arrays(EXTENT, st.integers(0, 5)), max_size=4))
def test_consuming_concat_gives_the_same_bytes_and_releases_the_parts(tables, heads):
    # process_granule merges its chunks with consume=True: the output's memory once, not twice
    def atl06():
        return [GranuleResult(str(i), "atl06", elevations=None if t is None else t.copy())
                for i, t in enumerate(tables)] + [GranuleResult("x", "atl06", error=(-1, "failed"))]

    def atl03s():
        return [GranuleResult(str(i), "atl03s", extents=h.copy(), photons=np.zeros(len(h), PHOTON))
                for i, h in enumerate(heads)]

    for kind, make, names in (("atl06", atl06, ("elevations",)), ("atl03s", atl03s, ("extents", "photons"))):
        parts = make()
        whole, drained = concat(make(), kind), concat(parts, kind, consume=True)
        for name in names:
            assert getattr(drained, name).dtype == getattr(whole, name).dtype
            for field in getattr(whole, name).dtype.names:   # bit-exact per field (padding: zeros here)
                assert getattr(drained, name)[field].tobytes() == getattr(whole, name)[field].tobytes()
            assert all(getattr(p, name) is None for p in parts)
        if kind == "atl03s":
            assert np.array_equal(drained.offsets, whole.offsets)
