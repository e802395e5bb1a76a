"""SlideRule's ``read_timeout`` applied: a local read that does not return and an S3 endpoint that
stalls end with a per-granule TIMEOUT (-2) error within the limit, and never hold the process."""

import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from icesat2sr.granules import h5read
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.granules.h5read import Granule, Read
from icesat2sr.granules.s3driver import RetryingS3Driver, TransientReadError
from icesat2sr.request.errors import ResourceError
from icesat2sr.request.params import Parms

PATH = "/gt1l/heights/h_ph"


def _stuck_reads(granule: Granule, release: threading.Event) -> None:
    """From now on the file's reads do not return (until ``release``), as on a hung mount."""
    def read(*args):
        release.wait(60)
        raise OSError("released")
    granule._h5.cache.clear()   # what was cached while opening would otherwise answer
    granule._h5.driver.read = read


def test_a_dataset_read_that_does_not_return_times_out(synth_dir, synth_names):
    release = threading.Event()
    try:
        with Granule(str(synth_dir / synth_names[0]), read_timeout=0.5) as g:
            _stuck_reads(g, release)
            start = time.monotonic()
            with pytest.raises(ResourceError) as info:
                g.read([Read(PATH, [(0, 10)]), Read("/gt1l/heights/delta_time", [(0, 10)])])
            took = time.monotonic() - start
    finally:
        release.set()
    assert 0.4 < took < 3.0
    assert info.value.code == ResourceError.TIMEOUT == -2
    assert str(info.value) == (f"{synth_names[0]}: cannot read {PATH}: no answer within 0.5 s (read_timeout)")


def test_opening_a_file_that_does_not_answer_times_out(synth_dir, synth_names, monkeypatch):
    release = threading.Event()

    def read(self, *args):
        release.wait(60)
        raise OSError("released")
    monkeypatch.setattr(h5read._SizedFileDriver, "read", read)
    start = time.monotonic()
    try:
        with pytest.raises(ResourceError, match=r"cannot open the file: no answer within 0.3 s \(read_timeout\)"):
            Granule(str(synth_dir / synth_names[0]), read_timeout=0.3)
    finally:
        release.set()
    assert time.monotonic() - start < 3.0


def test_reads_within_the_limit_are_unchanged(synth_dir, synth_names):
    with Granule(str(synth_dir / synth_names[0])) as g:
        want = g.read([Read(PATH, [(5, 500)])])[PATH]
    with Granule(str(synth_dir / synth_names[0]), read_timeout=30) as g:
        got = g.read([Read(PATH, [(5, 500)])])[PATH]
    assert len(want) == 495 and (got == want).all()


def test_the_request_sets_the_assets_read_timeout(synth_dir):
    asset = resolve_asset("atlas-local", str(synth_dir))
    assert asset.for_request(Parms.from_dict({"read_timeout": 7})).read_timeout == 7
    assert asset.for_request(Parms.from_dict({"timeout": 9})).read_timeout == 9     # SlideRule's fallback
    assert asset.for_request(Parms.from_dict({})) is asset and asset.read_timeout is None


def test_an_abandoned_read_does_not_hold_the_process_at_exit(synth_dir, synth_names):
    script = textwrap.dedent(f"""
        import threading
        from icesat2sr.granules.h5read import Granule, Read
        from icesat2sr.request.errors import ResourceError
        with Granule({str(synth_dir / synth_names[0])!r}, read_timeout=0.3) as g:
            g._h5.cache.clear()
            g._h5.driver.read = lambda *a: threading.Event().wait()   # never returns
            try:
                g.read([Read({PATH!r}, [(0, 10)])])
            except ResourceError as exc:
                print(exc.code)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "-2", proc.stderr


@pytest.fixture
def stalled_endpoint(monkeypatch):
    """An "S3" endpoint that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
    threading.Thread(target=accept, daemon=True).start()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-west-2",
                       "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{server.getsockname()[1]}"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(RetryingS3Driver, "attempts", 2)
    monkeypatch.setattr(RetryingS3Driver, "base_s", 0.0)
    yield
    server.close()
    for conn in held:
        conn.close()


def test_s3_reads_use_the_read_timeout_as_their_socket_timeouts(stalled_endpoint):
    driver = RetryingS3Driver("bucket/ATL03_x.h5", {}, read_timeout=0.4)
    config = driver.client.meta.config
    assert config.read_timeout == 0.4 and config.connect_timeout == 0.4
    start = time.monotonic()
    with pytest.raises(TransientReadError):
        driver.read(0, 100)
    assert time.monotonic() - start < 3.0         # two stalled attempts of 0.4 s, not two of 20 s
    default = RetryingS3Driver("bucket/ATL03_x.h5", {}).client.meta.config
    assert (default.read_timeout, default.connect_timeout) == (20.0, 5.0)   # longer limits never lengthen
    assert RetryingS3Driver("bucket/ATL03_x.h5", {}, read_timeout=600).client.meta.config.read_timeout == 20.0


def test_an_s3_granule_that_stalls_fails_with_a_timeout(stalled_endpoint):
    start = time.monotonic()
    with pytest.raises(ResourceError) as info:
        Granule("bucket/ATL03_20210601120000_12340512_006_01.h5", "s3", read_timeout=0.3)
    assert time.monotonic() - start < 3.0
    assert info.value.code == -2 and "read_timeout" in str(info.value)
