"""End to end under moto with ancillary fields: an atl06p, an atl08p and an atl03sp job asking for
``atl03_geo_fields``, ``atl03_ph_fields`` and ``atl08_fields`` give the same GeoParquet as the CLI
for the same request (rows, columns, values), like test_e2e.py without fields."""

from __future__ import annotations

import io
import json

import geopandas
import pytest

from .conftest import load_event
from .test_e2e import assert_same_frame, cli_frame, submit_and_wait

FIELDS = {"atl03_geo_fields": ["solar_elevation", "dem_h", "surf_type"],
          "atl03_ph_fields": ["ph_id_channel", "ph_id_count"],
          "atl08_fields": ["canopy/h_canopy", "segment_landcover", "h_dif_ref%"]}
COLUMNS = {"solar_elevation", "dem_h", "surf_type", "ph_id_channel", "ph_id_count", "canopy/h_canopy",
           "segment_landcover", "h_dif_ref%"}


@pytest.mark.parametrize("kind", ["atl06", "atl08", "atl03s"])
def test_a_job_with_ancillary_fields_equals_the_cli(stack, synth_dir, tmp_path, kind):
    event = load_event(f"api-{kind}p.json")
    request = json.loads(event["body"])
    request["parms"].update(FIELDS)
    event["body"] = json.dumps(request)
    job, _ = submit_and_wait(stack, event)
    ours = geopandas.read_parquet(io.BytesIO(stack.read(f"results/{job}/output.parquet")))
    theirs = cli_frame(tmp_path, synth_dir, kind, request["resources"], request["parms"])
    clash = {"solar_elevation"} if kind == "atl08" else set()   # a PhoREAL column too: <name>_x, <name>_y
    assert COLUMNS - clash | {f"{c}_{s}" for c in clash for s in "xy"} <= set(ours.columns)
    assert ours["dem_h"].notna().all() and ours["canopy/h_canopy"].notna().any()   # values, not empty columns
    assert_same_frame(ours, theirs)
