"""The worker's result streams to S3 part by part (never held whole) and merges back exactly."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from moto import mock_aws

from icesat2sr.engine import iter_granule, process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.science.records import GranuleResult, pack, unpack
from icesat2sr.service.jobs import upload_stream

from ..engine.test_chunks import assert_same_result

BUCKET = "results"


@pytest.fixture
def s3(aws_env):
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws_env["AWS_REGION"]})
        yield client


def _chunks(total: int, size: int):
    data = np.random.default_rng(0).integers(0, 256, total, dtype=np.uint8).tobytes()
    return data, [data[i:i + size] for i in range(0, total, size)]


def test_large_stream_is_a_multipart_upload(s3):
    data, chunks = _chunks(12 * 2**20 + 5, 3 * 2**20)
    consumed = []

    def watched():
        for c in chunks:
            consumed.append(len(c))
            yield c

    assert upload_stream(s3, BUCKET, "k", watched(), part_size=5 * 2**20)
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == data
    head = s3.head_object(Bucket=BUCKET, Key="k")
    assert head["ETag"].strip('"').endswith("-3")            # three parts: 6, 6 and 0.x MiB


def test_small_stream_is_one_put(s3):
    assert upload_stream(s3, BUCKET, "small", iter([b"ab", b"cd"]))
    assert s3.get_object(Bucket=BUCKET, Key="small")["Body"].read() == b"abcd"
    assert "-" not in s3.head_object(Bucket=BUCKET, Key="small")["ETag"]


@pytest.mark.parametrize("size", [100, 12 * 2**20])
def test_a_dropped_stream_leaves_nothing(s3, size):
    _, chunks = _chunks(size, 2**20)
    assert not upload_stream(s3, BUCKET, "gone", iter(chunks), keep=lambda: False, part_size=5 * 2**20)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_a_failing_stream_aborts_its_upload(s3):
    def broken():
        yield b"x" * (6 * 2**20)
        raise RuntimeError("reader died")

    with pytest.raises(RuntimeError):
        upload_stream(s3, BUCKET, "broken", broken(), part_size=5 * 2**20)
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


@pytest.mark.parametrize("kind", ["atl06", "atl03s"])
def test_packed_parts_unpack_to_the_whole_result(synth_dir, synth_names, kind):
    asset = resolve_asset("atlas-local", str(synth_dir))
    parms = Parms.from_dict({"cnf": 2, "atl03_ph_fields": ["ph_id_count"]})
    whole = process_granule(asset, synth_names[0], parms, kind)
    parts = [p for p in iter_granule(asset, synth_names[0], parms, kind, chunk_photons=6000) if p.result.rows]
    assert len(parts) > 6
    stream = b"".join(pack(p.result, (p.beam, p.seq)) for p in reversed(parts))   # any order
    stream += pack(GranuleResult(synth_names[0], kind, stats={"rows": 1.0}))
    got = unpack(stream)
    assert_same_result(got, whole)
    assert got.granule == synth_names[0] and got.stats == {"rows": 1.0}
