"""h5coro access: the fast 2-D path equals h5py, attributes of subsetter files, clear errors."""

import h5py
import numpy as np
import pytest

from icesat2sr.granules.h5read import Granule, Read
from icesat2sr.request.errors import ResourceError

from ..conftest import REAL


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("h5") / "sample.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:  # h5py's default libver ("earliest"), as ATL03
        f.create_dataset("g/conf", data=rng.integers(-2, 5, (25_003, 5)).astype("i1"), chunks=(10000, 5),
                         compression="gzip", shuffle=True)
        f.create_dataset("g/vel", data=rng.normal(7000, 10, (25_003, 3)).astype("f4"), chunks=(10000, 3),
                         compression="gzip", fillvalue=np.float32(3.4028235e38))
        f.create_dataset("g/h", data=rng.normal(0, 1, 25_003).astype("f4"), chunks=(10000,), compression="gzip")
        f.create_dataset("g/small", data=np.arange(12, dtype="i4").reshape(4, 3))  # contiguous
    return path


@pytest.mark.parametrize("path, hyperslice", [
    ("/g/conf", [(9_990, 20_010), (3, 4)]), ("/g/conf", []), ("/g/conf", [(0, 7), (0, 5)]),
    ("/g/vel", [(5, 25_003), (1, 3)]), ("/g/h", [(9_999, 10_001)]), ("/g/small", [(1, 3), (1, 2)]),
])
def test_reads_equal_h5py(sample, path, hyperslice):
    with Granule(str(sample)) as g:
        got = g.read([Read(path, hyperslice)])[path]
    with h5py.File(sample) as f:
        want = f[path][tuple(slice(a, b) for a, b in hyperslice)] if hyperslice else f[path][()]
    assert got.dtype == want.dtype
    assert np.array_equal(got.reshape(want.shape), want)


def test_missing_and_optional(sample):
    with Granule(str(sample)) as g:
        assert g.read([Read("/g/nope", optional=True)]) == {"/g/nope": None}
        with pytest.raises(ResourceError, match="nope: dataset is missing"):
            g.read([Read("/g/nope")])
        assert g.groups("/") == {"g"} and g.exists("/g/h") and not g.exists("/g")


def test_bad_files(tmp_path, sample):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 100)
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(sample.read_bytes()[:4000])
    with pytest.raises(ResourceError, match="not an HDF5 file"):
        Granule(str(junk))
    with pytest.raises(ResourceError, match="not found"):
        Granule(str(tmp_path / "absent.h5"))
    with pytest.raises(ResourceError):
        with Granule(str(truncated)) as g:
            g.read([Read("/g/h")])


def test_dense_attributes_of_subsetter_output():
    # h5coro 1.0.7 pads v2/v3 attribute messages like v1 ones and fails on this real file
    path = REAL / "harmony-trajectory-subsetter" / "ATL03_gt1l.h5"
    with Granule(str(path)) as g:
        assert g.attribute("/gt1l/sc_orientation") == "Forward"
        assert g.attribute("/gt1l/atlas_spot_number") == "6"
        assert g.attribute("/gt1l/nothing") is None
    with h5py.File(path) as f:
        assert f["gt1l"].attrs["atlas_beam_type"] == b"weak"
        with Granule(str(path)) as g:
            assert g.attribute("/gt1l/atlas_beam_type") == "weak"


def test_real_clip_datasets_equal_h5py():
    path = REAL / "ICESat2VegR" / "repacked_single_deflate" / "atl03_clip.h5"
    reads = [Read("/gt1r/heights/signal_conf_ph", [(100, 6000), (0, 1)]), Read("/gt1r/geolocation/velocity_sc"),
             Read("/gt1r/heights/h_ph"), Read("/gt1r/bckgrd_atlas/bckgrd_rate", [(50_000, 70_001)])]
    with Granule(str(path)) as g, h5py.File(path) as f:
        data = g.read(reads)
        for r in reads:
            want = f[r.path][tuple(slice(a, b) for a, b in r.hyperslice)] if r.hyperslice else f[r.path][()]
            assert np.array_equal(data[r.path].reshape(want.shape), want)


def test_contiguous_hyperslices(tmp_path):
    # h5coro 1.0.7 alone returns [0, 0, 2] for v[2:5] of a contiguous dataset
    path = tmp_path / "contiguous.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=np.arange(10, dtype="f8"))
    with Granule(str(path)) as g:
        assert g.read([Read("/v", [(2, 5)])])["/v"].tolist() == [2.0, 3.0, 4.0]


@pytest.mark.parametrize("cut", [4096, 65_536, 300_000, 3_000_000])
def test_truncated_granule_fails_at_once(synth_dir, tmp_path, cut):
    # h5coro 1.0.7 reads past the end as empty bytes and looks for a link name's NUL forever
    source = sorted(synth_dir.glob("ATL03_*.h5"))[0].read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(source[:cut])
    with pytest.raises(ResourceError, match=r"truncated or corrupt .*outside the file"):
        with Granule(str(path)) as g:
            g.groups("/")
            g.read([Read(f"/{b}/heights/h_ph") for b in ("gt1l", "gt3r")])


def test_corrupt_dimensions_refused_before_allocating(sample, tmp_path):
    with Granule(str(sample)) as g:
        with pytest.raises(ResourceError, match=r"/g/h: 25003 rows, more than a granule holds \(1000\)"):
            g.read([Read("/g/h", max_rows=1000)])
        assert len(g.read([Read("/g/h", max_rows=25_003)])["/g/h"]) == 25_003
    wide = tmp_path / "wide.h5"
    with h5py.File(wide, "w") as f:
        f.create_dataset("w", data=np.zeros((2, 100), "f4"), chunks=(2, 100), compression="gzip")
    with Granule(str(wide)) as g, pytest.raises(ResourceError, match=r"shape \(2, 100\) is not a table"):
        g.read([Read("/w")])


def test_s3_object_size_bounds_reads(synth_dir, monkeypatch):
    from moto import mock_aws

    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-west-2"}.items():
        monkeypatch.setenv(key, value)
    source = sorted(synth_dir.glob("ATL03_*.h5"))[0].read_bytes()
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-west-2")
        s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        s3.put_object(Bucket="data", Key="whole.h5", Body=source)
        s3.put_object(Bucket="data", Key="cut.h5", Body=source[:300_000])
        with Granule("data/whole.h5", driver="s3") as g:
            assert len(g.read([Read("/gt1l/heights/h_ph")])["/gt1l/heights/h_ph"]) > 1000
            assert g._h5.driver.size == len(source)
        with pytest.raises(ResourceError, match="outside the file \\(300000 bytes\\)"):
            with Granule("data/cut.h5", driver="s3") as g:
                g.groups("/")


def test_the_line_cache_is_bounded_and_reads_again_what_it_dropped(synth_dir, monkeypatch):
    """Reading a whole granule keeps at most CACHE_LINES of h5coro's 4 MiB lines, and a line
    dropped under a reader is read again: every value is still right."""

    from icesat2sr.granules import h5read

    monkeypatch.setattr(h5read, "CACHE_LINES", 2)
    name = sorted(p.name for p in synth_dir.glob("ATL03_*.h5"))[0]
    g = h5read.Granule(str(synth_dir / name))
    try:
        with h5py.File(synth_dir / name) as f:
            for beam in ("gt1l", "gt2r", "gt3l"):
                for field in ("h_ph", "lat_ph", "delta_time"):
                    path = f"/{beam}/heights/{field}"
                    n = f[path].shape[0]
                    got = g.read([h5read.Read(path, [(n // 3, n)])])[path]
                    assert np.array_equal(got, f[path][n // 3:])
                    assert len(g._h5.cache) <= 2
    finally:
        g.close()
    assert len(g._h5.cache) == 0
