"""Output files on the serverless deployment, under moto: atl03x jobs and ``output`` (s3:// or not).

The aggregator writes the request's file through the same writers as the CLI, so the file equals
the CLI's for the same granules and parameters; for an ``s3://`` path it also leaves the record
SlideRule streams for a remote file (``arrowrec.remote``) in ``output.records``.
"""

from __future__ import annotations

import io
import json

import geopandas
import pandas as pd
import pytest

from icesat2sr import cli
from icesat2sr.formats import wire

from .conftest import RESULTS_BUCKET, load_event
from .test_e2e import api_call, job_event, submit_and_wait


def cli_file(tmp_path, synth_dir, kind: str, names: list[str], parms: dict, suffix: str) -> str:
    out = tmp_path / f"cli-{kind}{suffix}"
    parms = {k: v for k, v in parms.items() if k not in ("asset", "output")}
    assert cli.main([kind, *names, "--path", str(synth_dir), "-o", str(out), "--parms", json.dumps(parms), "-q",
                     "--workers", "1"]) == 0
    return str(out)


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(frame).reset_index()
    if "geometry" in frame:
        points = geopandas.GeoSeries(frame["geometry"])
        frame["x"], frame["y"] = points.x, points.y
        frame = frame.drop(columns="geometry")
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def test_atl03x_fit_job_writes_its_s3_output(stack, synth_dir, tmp_path):
    event = load_event("api-atl03x.json")
    request = json.loads(event["body"])
    url = request["parms"]["output"]["path"]
    job, _ = submit_and_wait(stack, event)

    status, report = api_call(job_event(job))
    assert status == 200 and report["state"] == "SUCCEEDED" and report["kind"] == "atl03x"
    key = url.split("/", 3)[3]
    data = stack.s3.get_object(Bucket=RESULTS_BUCKET, Key=key)["Body"].read()
    assert report["output"] == {"url": url, "size": len(data), "format": "geoparquet", "rows": report["rows"]}
    ours = geopandas.read_parquet(io.BytesIO(data))
    theirs = geopandas.read_parquet(cli_file(tmp_path, synth_dir, "atl03x", request["resources"], request["parms"],
                                             ".parquet"))
    assert len(ours) == report["rows"] > 100 and ours.index.name == "time_ns" and "h_mean" in ours
    pd.testing.assert_frame_equal(canonical(ours), canonical(theirs), check_exact=True)

    tables = wire.decode(stack.read(f"results/{job}/output.records"))
    assert tables.files == [{"rectype": "arrowrec.remote", "url": url, "size": len(data)}]
    assert {"parquet", "output", "records"} <= set(report["urls"]) and "msgpack" not in report["urls"]


def test_atl06p_job_writes_the_requested_format(stack, synth_dir, tmp_path):
    event = load_event("api-atl06p.json")
    request = json.loads(event["body"])
    request["parms"]["output"] = {"path": "/home/me/atl06p.csv", "format": "csv", "open_on_complete": True}
    event["body"] = json.dumps(request)
    job, _ = submit_and_wait(stack, event)
    ours = pd.read_csv(io.BytesIO(stack.read(f"results/{job}/output.csv")))
    theirs = pd.read_csv(cli_file(tmp_path, synth_dir, "atl06", request["resources"], request["parms"], ".csv"))
    pd.testing.assert_frame_equal(canonical(ours), canonical(theirs), check_exact=True)
    report = api_call(job_event(job))[1]
    assert report["output"]["format"] == "csv" and report["output"]["url"].endswith(f"results/{job}/output.csv")
    assert wire.decode(stack.read(f"results/{job}/output.records")).files == []   # not remote: nothing to announce


@pytest.mark.parametrize("route, parms, needle", [
    ("api-atl03x.json", {"cnf": 1}, "output"),                                     # atl03x returns a file
    ("api-atl03x.json", {"output": {"path": "s3://someone-else/x.parquet"}}, "results/outputs/"),
    ("api-atl03sp.json", {"output": {"path": f"s3://{RESULTS_BUCKET}/results/x.parquet"}}, "results/outputs/"),
    ("api-atl06.json", {"output": {"path": "x.parquet"}}, "atl06p, atl03sp or atl03x"),   # sync: no files here
])
def test_output_requests_that_cannot_be_served_are_400(stack, route, parms, needle):
    event = load_event(route)
    body = json.loads(event["body"])
    body["parms"] = parms
    event["body"] = json.dumps(body)
    status, answer = api_call(event)
    assert status == 400 and needle in answer["error"]
    assert stack.attempts("orchestrator") == 0


def test_atl03x_phoreal_job_gives_our_atl08_rows(stack, synth_dir, tmp_path):
    """``phoreal`` on atl03x through the async job path: the CLI's atl03x file, and our atl08 rows in
    SlideRule's x-series PhoREAL columns."""
    event = load_event("api-atl03x.json")
    request = json.loads(event["body"])
    url = "s3://icesat2sr-results/results/outputs/atl03x-phoreal.parquet"
    request["parms"] = {"cnf": 0, "srt": 0, "phoreal": {"binsize": 1.0},
                        "output": {"path": url, "format": "geoparquet"}}
    event["body"] = json.dumps(request)
    job, _ = submit_and_wait(stack, event)
    report = api_call(job_event(job))[1]
    assert report["state"] == "SUCCEEDED"
    data = stack.s3.get_object(Bucket=RESULTS_BUCKET, Key=url.split("/", 3)[3])["Body"].read()
    ours = geopandas.read_parquet(io.BytesIO(data))
    cli_x = geopandas.read_parquet(cli_file(tmp_path, synth_dir, "atl03x", request["resources"], request["parms"],
                                            ".parquet"))
    assert len(ours) == report["rows"] > 100 and "canopy_h_metrics" in ours and "h_mean" not in ours
    pd.testing.assert_frame_equal(canonical(_tuples(ours)), canonical(_tuples(cli_x)), check_exact=True)
    veg = geopandas.read_parquet(cli_file(tmp_path, synth_dir, "atl08", request["resources"],
                                          {**request["parms"], "podppd": 1}, ".parquet"))
    renamed = {"ph_count": "photon_count", "gnd_ph_count": "ground_photon_count",
               "veg_ph_count": "vegetation_photon_count"}
    veg = veg.rename(columns=renamed).rename_axis("time_ns")
    shared = [c for c in ("photon_count", "ground_photon_count", "vegetation_photon_count", "h_te_median",
                          "h_canopy", "h_max_canopy", "h_min_canopy", "h_mean_canopy", "canopy_openness",
                          "canopy_h_metrics", "landcover", "snowcover", "solar_elevation", "geometry")]
    pd.testing.assert_frame_equal(canonical(_tuples(ours[shared])), canonical(_tuples(veg[shared])), check_exact=True)


def _tuples(frame: pd.DataFrame) -> pd.DataFrame:
    """Array cells (canopy_h_metrics) as tuples, so rows sort and compare."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object and len(frame) and not isinstance(frame[column].iloc[0], str) \
                and hasattr(frame[column].iloc[0], "__len__"):
            frame[column] = frame[column].map(tuple)
    return frame
