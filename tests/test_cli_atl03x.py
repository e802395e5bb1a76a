"""The CLI's atl03x file is written a chunk at a time, in bounded memory, and holds the rows of the
whole granules' frames (photons or their surface fit; with YAPC, ATL08 classes, ancillary fields)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from icesat2sr import engine
from icesat2sr.cli import main
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms

REQUESTS = [
    {"cnf": 1, "beams": ["gt1l", "gt3r"], "yapc": {"version": 3, "score": 0},
     "atl08_class": ["atl08_ground", "atl08_canopy", "atl08_unclassified"], "atl03_geo_fields": ["solar_azimuth"]},
    {"cnf": 1, "beams": ["gt2l", "gt2r"], "fit": {}, "atl03_ph_fields": ["ph_id_channel"]},
]


@pytest.mark.parametrize("parms", REQUESTS)
def test_file_is_written_chunk_by_chunk_and_equals_the_whole(synth_dir, synth_names, tmp_path, monkeypatch, parms):
    out = tmp_path / "x.parquet"
    monkeypatch.setattr(engine, "CHUNK_PHOTONS", 2000)
    assert main(["atl03x", *synth_names, "--path", str(synth_dir), "-o", str(out), "--parms", json.dumps(parms),
                 "-q", "--format", "parquet"]) == 0
    written = pq.ParquetFile(out)
    table = written.read()
    asset = resolve_asset("atlas-local", str(synth_dir))
    wholes = [engine.process_granule(asset, name, Parms.from_dict(parms), "atl03x", chunk_photons=10**9).frame
              for name in synth_names]
    assert written.metadata.num_row_groups > 2 * len(synth_names)             # streamed: a row group per chunk
    assert table.num_rows == sum(len(w["x_atc"]) for w in wholes) > 0
    for column in wholes[0]:
        got = table.column(column).to_numpy()
        if column == "time_ns":
            got = got.astype("datetime64[ns]").astype(np.int64)
        np.testing.assert_array_equal(got, np.concatenate([w[column] for w in wholes]), err_msg=column)
    np.testing.assert_array_equal(table.column("srcid").to_numpy(),
                                  np.repeat(np.arange(len(wholes)), [len(w["x_atc"]) for w in wholes]))
