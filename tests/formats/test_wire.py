"""The record stream (SPEC §7): framing, definitions, batching, messages, decoding.

Definitions are checked by an independent decoder written here the way the official clients
decode (``struct.unpack_from`` per field from the JSON definition, SPEC §7.2), not with numpy.
"""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.formats import wire
from icesat2sr.science.records import COMPACT, ELEVATION, EXTENT, PHOTON, GranuleResult

_FMT = {"INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q", "UINT8": "B", "UINT16": "H", "UINT32": "I",
        "UINT64": "Q", "FLOAT": "f", "DOUBLE": "d", "TIME8": "q"}


def client_decode(rectype: str, data: bytes) -> dict:
    """Decode like sliderule's Session.__decode_native (SPEC §7.2), from our JSON definitions."""
    rec = {}
    for name, f in wire.definition(rectype).items():
        if name.startswith("__"):
            continue
        offset, elements = f["offset"] // 8, f["elements"]
        endian = "<" if "LE" in f["flags"] else ">"
        if f["type"] == "STRING":
            n = elements if elements > 0 else len(data) - offset
            rec[name] = struct.unpack_from(f"{endian}{n}s", data, offset)[0].split(b"\0")[0].decode("ascii")
        elif f["type"] in _FMT:
            rec[name] = struct.unpack_from(endian + _FMT[f["type"]], data, offset)[0]
        else:
            size = wire.definition(f["type"])["__datasize"]
            count = (len(data) - offset) // size if elements <= 0 else elements
            rec[name] = [client_decode(f["type"], data[offset + i * size:offset + (i + 1) * size])
                         for i in range(count)]
    return rec


def split_frames(stream: bytes) -> list[tuple[str, bytes]]:
    """Parse framing with struct only (SPEC §7.1)."""
    out, i = [], 0
    while i < len(stream):
        version, type_size, data_size = struct.unpack_from(">hhi", stream, i)
        assert version == 2
        name = stream[i + 8:i + 8 + type_size]
        assert name.endswith(b"\0")
        out.append((name[:-1].decode(), stream[i + 8 + type_size:i + 8 + type_size + data_size]))
        i += 8 + type_size + data_size
    return out


def _elevations(n: int) -> np.ndarray:
    rows = np.zeros(n, dtype=ELEVATION)
    rows["extent_id"] = np.arange(n, dtype=np.uint64) + np.uint64(2**62)
    rows["segment_id"] = 1000000 + np.arange(n)
    rows["time"] = 1_600_000_000_000_000_000 + np.arange(n) * 2_800_000
    rows["h_mean"] = 1000.0 + np.arange(n) * 0.5
    rows["latitude"], rows["longitude"] = -70.0 - np.arange(n) * 1e-4, 100.0
    rows["dh_fit_dy"], rows["distance"] = 0.0, 1e7 + 20.0 * np.arange(n)
    rows["gt"], rows["spot"], rows["cycle"], rows["rgt"] = 30, 3, 5, 1234
    return rows


def test_definition_sizes_and_offsets_follow_spec():
    d = wire.DEFINITIONS
    assert d["atl06rec"] == {"__datasize": 0, "elevation": {"type": "atl06rec.elevation", "offset": 0,
                                                            "elements": 0, "flags": "LE|BATCH"}}
    el = d["atl06rec.elevation"]
    assert el["__datasize"] == 104
    assert (el["time"]["type"], el["time"]["offset"], el["time"]["flags"]) == ("TIME8", 24 * 8, "LE|T")
    assert (el["latitude"]["flags"], el["longitude"]["flags"], el["extent_id"]["flags"]) == ("LE|Y", "LE|X", "LE|I")
    assert el["n_fit_photons"]["flags"] == "LE|AUX" and el["h_mean"]["flags"] == "LE"
    assert (el["distance"]["offset"], el["delta_time"]["offset"], el["dh_fit_dy"]["offset"]) == (640, 704, 768)
    ex = d["atl03rec"]
    assert ex["__datasize"] == 56 and ex["photons"] == {"type": "atl03rec.photons", "offset": 56 * 8,
                                                       "elements": 0, "flags": "LE|BATCH"}
    assert "spacecraft_velocity" not in ex and "extent_length" not in ex and ex["count"]["offset"] == 96
    assert d["atl03rec.photons"]["__datasize"] == 64 and d["atl03rec.photons"]["yapc_score"]["offset"] == 45 * 8
    assert d["exceptrec"]["__datasize"] == 264 and d["exceptrec"]["text"]["elements"] == 256
    assert d["eventrec"]["__datasize"] == 1088 and d["eventrec"]["message"]["elements"] == 0
    assert d["atl03rec.index"]["__datasize"] == 208 and d["atl03rec.index"]["rgt"]["offset"] == 204 * 8
    # every sub-record type a definition names is itself defined (the clients would crash otherwise)
    for definition in d.values():
        for name, f in definition.items():
            if not name.startswith("__") and f["type"] not in _FMT and f["type"] != "STRING":
                assert f["type"] in d


@pytest.mark.parametrize("n, batches", [(0, []), (1, [1]), (256, [256]), (257, [256, 1]), (700, [256, 256, 188])])
def test_elevations_batch_at_most_256_never_zero(n, batches):
    stream = b"".join(wire.elevation_records(_elevations(n)))
    frames = split_frames(stream)
    assert [t for t, _ in frames] == ["atl06rec"] * len(batches)
    assert [len(p) // 104 for _, p in frames] == batches


def test_elevation_record_decodes_like_the_client():
    rows = _elevations(3)
    (rectype, payload), = split_frames(b"".join(wire.elevation_records(rows)))
    rec = client_decode(rectype, payload)
    assert len(rec["elevation"]) == 3
    e = rec["elevation"][2]
    assert e["extent_id"] == 2**62 + 2 and e["segment_id"] == 1000002 and e["h_mean"] == 1001.0
    assert e["time"] == 1_600_000_000_005_600_000 and e["gt"] == 30 and e["rgt"] == 1234
    assert e["latitude"] == -70.0002 and e["distance"] == 1e7 + 40.0


def test_packed_copies_are_put_back_into_the_wire_layout():
    rows = _elevations(5)
    packed = np.concatenate([rows[:2], rows[2:]])      # numpy drops the padding here
    assert packed.dtype.itemsize == 100
    assert b"".join(wire.elevation_records(packed)) == b"".join(wire.elevation_records(rows))


def test_compact_rows_use_the_compact_record():
    rows = np.zeros(2, dtype=COMPACT)
    rows["h_mean"] = [1.5, 2.5]
    (rectype, payload), = split_frames(b"".join(wire.elevation_records(rows)))
    assert rectype == "atl06rec-compact"
    assert [e["h_mean"] for e in client_decode(rectype, payload)["elevation"]] == [1.5, 2.5]


def test_one_atl03rec_per_extent_with_its_photons():
    ext = np.zeros(3, dtype=EXTENT)
    ext["segment_id"], ext["count"], ext["track"], ext["pair"] = [11, 12, 13], [2, 0, 3], 2, 1
    ph = np.zeros(5, dtype=PHOTON)
    ph["height"] = [1, 2, 3, 4, 5]
    offsets = np.array([0, 2, 2, 5])
    frames = split_frames(b"".join(wire.photon_records(ext, ph, offsets)))
    assert [t for t, _ in frames] == ["atl03rec"] * 3
    recs = [client_decode(t, p) for t, p in frames]
    assert [r["segment_id"] for r in recs] == [11, 12, 13] and [r["count"] for r in recs] == [2, 0, 3]
    assert [[p["height"] for p in r["photons"]] for r in recs] == [[1, 2], [], [3, 4, 5]]
    assert recs[0]["track"] == 2 and recs[0]["pair"] == 1


def test_exception_records_never_send_code_minus_5_and_stay_ascii():
    (t, p), = split_frames(wire.exception_record(-5, wire.ERROR_LEVEL, "simplify"))
    assert client_decode(t, p)["code"] == wire.ERROR
    (t, p), = split_frames(wire.exception_record(-3, wire.ERROR_LEVEL, "Grönland " + "x" * 400))
    rec = client_decode(t, p)
    assert rec["code"] == -3 and rec["level"] == 3 and rec["text"].startswith("Gr?nland") and len(rec["text"]) == 255


def test_event_record_fields():
    (t, p), = split_frames(wire.event_record(wire.INFO_LEVEL, "hello", "src", when_ns=123))
    assert client_decode(t, p) == {"time": 123, "level": 1, "ipv4": "127.0.0.1", "source": "src", "message": "hello"}


def test_result_records_for_failed_empty_and_good_granules():
    bad = GranuleResult("A.h5", "atl06", error=(-3, "A.h5: granule not found"))
    empty = GranuleResult("B.h5", "atl06", elevations=np.zeros(0, dtype=ELEVATION))
    good = GranuleResult("C.h5", "atl06", elevations=_elevations(300))
    types = [[t for t, _ in split_frames(b"".join(wire.result_records(r, i + 1, 3)))]
             for i, r in enumerate((bad, empty, good))]
    assert types == [["exceptrec", "eventrec"], ["exceptrec", "eventrec"], ["atl06rec", "atl06rec", "eventrec"]]
    codes = [client_decode(*split_frames(b"".join(wire.result_records(r)))[0])["code"] for r in (bad, empty)]
    assert codes == [-3, -4]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 97), min_size=1, max_size=40))
def test_decoder_handles_any_chunking(cuts):
    ext = np.zeros(2, dtype=EXTENT)
    ext["count"] = [1, 2]
    ph = np.zeros(3, dtype=PHOTON)
    ph["height"] = [7, 8, 9]
    stream = b"".join([*wire.elevation_records(_elevations(260)), wire.event_record(1, "x"),
                       *wire.photon_records(ext, ph, np.array([0, 1, 3])), wire.exception_record(-1, 3, "e")])
    chunks, i = [], 0
    for c in cuts * (len(stream) // sum(cuts) + 1):
        chunks.append(stream[i:i + c])
        i += c
        if i >= len(stream):
            break
    tables = wire.decode(iter(chunks))
    assert [len(e) for e in tables.elevations] == [256, 4]
    assert np.array_equal(np.concatenate(tables.elevations), _elevations(260))
    assert [m.code for m in tables.messages] == [None, -1]
    result = tables.result("X.h5", "atl03s")
    assert result.offsets.tolist() == [0, 1, 3] and result.photons["height"].tolist() == [7, 8, 9]


def test_decoder_rejects_truncated_and_wrong_version_streams():
    stream = b"".join(wire.elevation_records(_elevations(2)))
    with pytest.raises(wire.StreamError, match="inside a record"):
        wire.decode(stream[:-1])
    with pytest.raises(wire.StreamError, match="version"):
        wire.decode(b"\x00\x03" + stream[2:])


def test_granule_done_event_names_the_granule():
    good = GranuleResult("ATL03_X.h5", "atl06", elevations=_elevations(1))
    tables = wire.decode(b"".join(wire.result_records(good, 2, 5)))
    assert tables.messages[-1].granule_done == ("ATL03_X.h5", 2, 5)
    assert wire.Message(1, "ATL03_X.h5: 1 elevations (2/5 granules)", source="other").granule_done is None
