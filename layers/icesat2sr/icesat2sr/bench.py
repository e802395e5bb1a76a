"""``icesat2sr bench``: speed, peak memory and the ratios of issues 3 and 11, measured in one run.

Granule files are read once first (so every stage reads from the page cache, as the raw read
does). Every stage runs in a fresh Python process (``python -m icesat2sr.bench STAGE ...``), which reports
its wall and CPU seconds and its peak RSS (imports included), so each stage's memory is its own.
Stages, on a synthetic granule in the real layout (written once, then reused):

* ``h5py``: a raw h5py read of the datasets SlideRule reads (the reference for the CLI ratio);
* ``read``: our reader, every photon of every beam a window at a time (no science);
* ``atl06``, ``atl06_rec``: in-process ATL06-SR of the granule (``process_granule``) with the default
  and with the seed's recommended parameters;
* ``atl03s``: in-process photon subsetting, its partial results consumed as they stream;
* ``atl03x``, ``atl03x_fit``: in-process x-series photon frame (every photon, ``cnf`` 0), and its
  surface fit, partial results consumed as they stream;
* ``atl08``: in-process PhoREAL (with waveforms) on a granule of the same size with a synthetic
  forest over a quarter of its track and its ATL08;
* ``fit``: the fit alone, single-threaded, on every extent of every beam, against the fit before
  issue 11 (loaded from git history when run from a checkout) on the same extents;
* ``cli``: a whole ``icesat2sr atl06 ... -o FILE.parquet`` (a new process: start-up, imports, reading,
  science in its worker processes, GeoParquet written a chunk at a time), its peak RSS and CPU
  seconds over its whole process tree;
* ``sliderule``: SlideRule's own C++ ATL06-SR on the same granule (when built: ``SR_ROOT``), whose
  processing seconds exclude its start-up, as ``atl06_rec`` does; the two run in turn
  :data:`PAIRS` times and the ratio is the median of the pairs' ratios.

With ``full_segments`` the atl06, atl03s and atl03x stages also run on a full-size granule (140,000
segments per beam is a real granule's length), cached under :func:`cache_dir`, for its peak RSS
and the seconds per photon against the bench granule (linear scaling gives 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RECOMMENDED = {"srt": 3, "cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6}  # seed §2.5
XPHOTONS = {"cnf": 0, "podppd": 0}                 # atl03x: every photon of the granule a frame row
XFIT = {**XPHOTONS, "cnf": 1, "fit": {}}
PREVIOUS_FIT = "9de5008"          # the fit before issue 11 (commit on main), for the fit speed-up
PAIRS = 3                         # in-process / SlideRule C++ runs, in turn (the machine's load drifts)
SLIDERULE_TOOLS = Path(os.environ.get("SR_TOOLS", "/work/shared/tools/sliderule-cpp"))  # run_atl06.sh
_RAW = ("heights/delta_time", "heights/lat_ph", "heights/lon_ph", "heights/h_ph", "heights/dist_ph_along",
        "heights/dist_ph_across", "heights/quality_ph", "geolocation/segment_id", "geolocation/segment_dist_x",
        "geolocation/delta_time", "geolocation/velocity_sc", "geolocation/solar_elevation",
        "geolocation/segment_ph_cnt", "bckgrd_atlas/delta_time", "bckgrd_atlas/bckgrd_rate")


def cache_dir() -> Path:
    """Where synthetic benchmark granules are kept: ``$ICESAT2SR_CACHE``, else ``~/.cache/icesat2sr``."""
    env = os.environ.get("ICESAT2SR_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "icesat2sr"


def granule(directory: Path, segments: int, forest: bool = False) -> Path:
    """The benchmark granule of ``segments`` segments per beam, with its ATL08 (written once).

    The truth surface's slope is kept small enough for heights to stay realistic over a whole
    granule's length (the reader rejects |h_ph| > 20 km).
    """
    from .synth import GranuleSpec, granule_name, write_granule

    spec = GranuleSpec(segments=segments, seed=7, atl08=True, forest=forest,
                       slope=min(0.02, 5000.0 / (20.0 * segments)))
    path = directory / granule_name(spec)
    if not path.exists() or not path.with_name(path.name.replace("ATL03", "ATL08")).exists():
        directory.mkdir(parents=True, exist_ok=True)
        write_granule(directory, spec)
    return path


# ---------------------------------------------------------------------- stages (child processes)
def _stage(name: str, path: str, parms: dict) -> dict:
    """Run one stage in this process; returns its figures."""
    return globals()[f"_stage_{name}"](Path(path), parms)


def _stage_h5py(path: Path, parms: dict) -> dict:
    import h5py

    from .request.names import BEAMS

    srt = parms.get("srt", 3)
    with h5py.File(path) as f:
        for beam in BEAMS:
            for name in _RAW:
                f[f"{beam}/{name}"][()]
            f[f"{beam}/heights/signal_conf_ph"][:, srt]
    return {}


def _stage_read(path: Path, parms: dict) -> dict:
    from .engine import CHUNK_PHOTONS
    from .granules.assets import resolve_asset
    from .granules.reader import GranuleReader
    from .request.params import Parms

    photons = 0
    with GranuleReader(resolve_asset("atlas-local", str(path.parent)), path.name, Parms.from_dict(parms)) as r:
        for plan in r.beams:
            for a in range(0, plan.n_photons, CHUNK_PHOTONS):
                photons += len(r.photons(plan, a, min(a + CHUNK_PHOTONS, plan.n_photons))["h_ph"])
    return {"photons": photons}


def _stage_atl06(path: Path, parms: dict) -> dict:
    from .engine import process_granule
    from .granules.assets import resolve_asset
    from .request.params import Parms

    result = process_granule(resolve_asset("atlas-local", str(path.parent)), path.name, Parms.from_dict(parms))
    if result.error:
        raise RuntimeError(result.error[1])
    return {"rows": result.rows, "photons": result.stats["photons"], "stats": result.stats}


_stage_atl06_rec = _stage_atl06


def _stage_atl08(path: Path, parms: dict) -> dict:
    from .engine import process_granule
    from .granules.assets import resolve_asset
    from .request.params import Parms

    result = process_granule(resolve_asset("atlas-local", str(path.parent)), path.name, Parms.from_dict(parms),
                             "atl08")
    if result.error:
        raise RuntimeError(result.error[1])
    return {"rows": result.rows, "photons": result.stats["photons"], "stats": result.stats}


def _stage_atl03s(path: Path, parms: dict) -> dict:
    return _streamed(path, parms, "atl03s")


def _stage_atl03x(path: Path, parms: dict) -> dict:
    return _streamed(path, parms, "atl03x")


def _streamed(path: Path, parms: dict, kind: str) -> dict:
    """A kind whose partial results are consumed as they stream (photon rows, x-series frames)."""
    from .engine import iter_granule
    from .granules.assets import resolve_asset
    from .request.params import Parms

    stats: dict = {}
    rows = 0
    for part in iter_granule(resolve_asset("atlas-local", str(path.parent)), path.name, Parms.from_dict(parms),
                             kind, stats=stats):
        if part.result.error:
            raise RuntimeError(part.result.error[1])
        rows += part.result.rows
    return {"rows": rows, "photons": stats["photons"], "stats": stats}


def _stage_cli(path: Path, parms: dict) -> dict:
    """A whole ``icesat2sr atl06 ... -o FILE.parquet`` (a new process: start-up, imports, reading, science in
    worker processes, the file written a chunk at a time); peak RSS over its process tree."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.parquet"
        run = process_tree([sys.executable, "-m", "icesat2sr.cli", "atl06", path.name, "--path", str(path.parent),
                            "--parms", json.dumps(parms), "-o", str(out), "-q"])
        if run["returncode"]:
            raise RuntimeError(run["stderr"][-2000:])
        rows = pq.ParquetFile(out).metadata.num_rows
    return {"rows": rows, "tree_peak_rss_mb": run["peak_rss_mb"], "tree_cpu_s": run["cpu_s"]}


def process_tree(argv: list[str], every_s: float = 0.1) -> dict:
    """Run a command to its end, sampling its processes and all below them (worker processes, a
    fork server's children) from ``/proc``.

    Returns
    -------
    dict
        ``returncode``, ``stderr``, ``wall_s``; ``peak_rss_mb``: the largest peak RSS (VmHWM) of any
        one process of the tree (a high-water mark: a process seen once is measured whole);
        ``cpu_s``: their CPU seconds as last sampled (up to ``every_s`` of each process's last
        moments are missed).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    with _drained(proc.stderr) as err:
        while proc.poll() is None:
            for pid in _tree(proc.pid):
                try:
                    with open(f"/proc/{pid}/status") as f:
                        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except (OSError, StopIteration, IndexError):
                    continue
                peak[pid] = max(peak.get(pid, 0), hwm)
                cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
            time.sleep(every_s)
    return {"returncode": proc.returncode, "stderr": b"".join(err).decode(errors="replace"),
            "wall_s": time.perf_counter() - started, "peak_rss_mb": max(peak.values(), default=0) / 1024,
            "cpu_s": sum(cpu.values())}


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


@contextlib.contextmanager
def _drained(stream):
    """Read a pipe in a thread (a chatty process never blocks on it); yields the list of its chunks."""
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: stream.read(65536), b"")), daemon=True)
    reader.start()
    try:
        yield chunks
    finally:
        reader.join()
        stream.close()


def _stage_fit(path: Path, parms: dict) -> dict:
    """Our fit and the previous one, one thread, on the same extents of every beam (CPU seconds)."""
    from .granules.assets import resolve_asset
    from .granules.reader import read_beams
    from .request.params import Parms
    from .request.timeutil import delta_time_to_ns
    from .science.extents import make_extents
    from .science.fit import FitSettings, fit_extents
    from .science.select import photon_confidence, photon_mask

    p = Parms.from_dict(parms)
    settings = dict(maxi=p.maxi, H_min_win=p.H_min_win, sigma_r_max=p.sigma_r_max, cnt=p.cnt, ats=p.ats)
    previous, missing = _previous_fit()
    ours = prev = 0.0
    entries = extents = 0
    identical = True
    for beam in read_beams(resolve_asset("atlas-local", str(path.parent)), path.name, p):
        ext = make_extents(beam, photon_mask(photon_confidence(beam.signal_conf_ph, p.srt), beam.quality_ph, p), p)
        i = ext.photon
        args = (ext.offsets, ext.x_rel, beam.h_ph[i], ext.length, ext.velocity, ext.background_rate)
        t = time.process_time()
        got = fit_extents(*args, FitSettings(**settings), photon=i, latitude=beam.lat_ph, longitude=beam.lon_ph,
                          time_ns=delta_time_to_ns(beam.delta_time), y_atc=beam.dist_ph_across,
                          delta_time=beam.delta_time)
        ours += time.process_time() - t
        if previous is not None:
            t = time.process_time()
            want = previous.fit_extents(*args, previous.FitSettings(**settings), latitude=beam.lat_ph[i],
                                        longitude=beam.lon_ph[i], time_ns=delta_time_to_ns(beam.delta_time[i]),
                                        y_atc=beam.dist_ph_across[i], delta_time=beam.delta_time[i])
            prev += time.process_time() - t
            identical &= all(_same(got[k], want[k]) for k in want)
        entries += len(i)
        extents += len(ext)
    out = {"fit_cpu_s": ours, "entries": entries, "extents": extents}
    if previous is not None:
        out.update(previous_fit_cpu_s=prev, identical_to_previous=bool(identical))
    else:
        out["previous_fit_missing"] = missing
    return out


def _same(a, b) -> bool:
    import numpy as np

    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def _previous_fit():
    """The fit module as it was before issue 11, from the repository's history.

    The history is looked for in ``$ICESAT2SR_REPO``, in the checkout this module is in (a clone,
    an editable install) and in the current folder (an installed package run from a clone).

    Returns
    -------
    (module, None) or (None, str)
        The module, or why it was not found.
    """
    import importlib.util

    where = f"{PREVIOUS_FIT}:layers/icesat2sr/icesat2sr/science/fit.py"
    places = [os.environ.get("ICESAT2SR_REPO"), Path(__file__).resolve().parents[3], Path.cwd()]
    places = list(dict.fromkeys(str(p) for p in places if p))
    source = None
    for place in places:
        try:
            source = subprocess.run(["git", "-C", place, "show", where], capture_output=True, check=True,
                                    text=True).stdout
            break
        except (OSError, subprocess.CalledProcessError):
            continue
    if source is None:
        return None, (f"commit {PREVIOUS_FIT} not found in {', '.join(places)}: "
                      "run from a clone with its history, or set ICESAT2SR_REPO to one")
    spec = importlib.util.spec_from_loader("icesat2sr_previous_fit", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    exec(compile(source, "previous_fit.py", "exec"), module.__dict__)
    return module, None


def _child_main(argv: list[str]) -> int:
    stages = sorted(n.removeprefix("_stage_") for n in globals() if n.startswith("_stage_"))
    try:
        name, path, parms = argv[0], argv[1], json.loads(argv[2])
        if name not in stages or len(argv) != 3 or not isinstance(parms, dict):
            raise ValueError
    except (IndexError, ValueError):
        print(f"usage: python -m icesat2sr.bench {{{','.join(stages)}}} GRANULE PARMS_JSON (one stage of "
              "`icesat2sr bench`)", file=sys.stderr)
        return 2
    wall, cpu = time.perf_counter(), time.process_time()
    figures = _stage(name, path, parms)
    figures.update(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu + figures.pop("tree_cpu_s", 0.0),
                   peak_rss_mb=max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                   figures.pop("tree_peak_rss_mb", 0.0)))
    print(json.dumps(figures))
    return 0


# ---------------------------------------------------------------------- the run
def warm(*paths: Path) -> None:
    """Read files once, so that every stage reads them from the page cache (as a raw read would)."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def _child(name: str, path: Path, parms: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-m", "icesat2sr.bench", name, str(path), json.dumps(parms or {})],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"bench stage {name} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def sliderule_seconds(path: Path, parms: dict, root: str | None = None) -> float | None:
    """SlideRule's C++ ATL06-SR processing seconds on a granule (None when it is not built here)."""
    root = root or os.environ.get("SR_ROOT", "/work/sliderule-build")
    script = SLIDERULE_TOOLS / "run_atl06.sh"
    if not script.exists() or not (Path(root) / "install" / "bin" / "sliderule").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        timing = Path(tmp) / "timing.json"
        subprocess.run(["bash", str(script), str(path), json.dumps(parms), str(Path(tmp) / "out.csv"), str(timing)],
                       check=True, capture_output=True, env={**os.environ, "SR_ROOT": root})
        return float(json.loads(timing.read_text())["seconds_processing"])


def against_sliderule(path: Path, pairs: int = PAIRS) -> dict:
    """In-process ATL06-SR (recommended parameters) and SlideRule's C++ on the same granule, run in
    turn ``pairs`` times, so that both meet the same load; a single run when SlideRule is not built.

    Returns ``atl06_rec`` (the run of median processing time), ``atl06_rec_runs_s`` and, with
    SlideRule, ``sliderule_runs_s``, ``sliderule_s`` (median) and ``sliderule_pair_ratios``.
    """
    ours, theirs, runs = [], [], []
    for _ in range(pairs):
        runs.append(_child("atl06_rec", path, RECOMMENDED))
        ours.append(runs[-1]["stats"]["total_s"])
        seconds = sliderule_seconds(path, RECOMMENDED)
        if seconds is None:
            break
        theirs.append(seconds)
    out = {"atl06_rec": runs[ours.index(statistics.median_low(ours))], "atl06_rec_runs_s": ours}
    if theirs:
        out.update(sliderule_runs_s=theirs, sliderule_s=statistics.median(theirs),
                   sliderule_pair_ratios=[a / b for a, b in zip(ours, theirs, strict=True)])
    return out


def run(directory: Path, segments: int = 8300, full_segments: int | None = None) -> dict:
    """Measure every stage; granules are kept in :func:`cache_dir`, outputs go to ``directory``.

    Returns the figures (also written to ``directory/bench.json``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = granule(cache_dir() / f"segments-{segments}", segments)
    f: dict = {"granule": path.name, "segments": segments, "cpus": os.cpu_count(),
               "load_average_1min": os.getloadavg()[0]}
    warm(*path.parent.glob("ATL0*.h5"))
    stages = {"h5py": {}, "read": {}, "atl06": {}, "atl03s": {}, "fit": {}}
    for name, parms in stages.items():
        f[name] = _child(name, path, parms)
    f.update(against_sliderule(path))
    f["atl03x"] = _child("atl03x", path, XPHOTONS)
    f["atl03x_fit"] = _child("atl03x", path, XFIT)
    forest = granule(cache_dir() / f"forest-{segments}", segments, forest=True)
    warm(*forest.parent.glob("ATL0*.h5"))
    f["atl08"] = _child("atl08", forest, {"phoreal": {"send_waveform": True}})
    f["cli"] = _child("cli", path)
    f["cli_atl06_s"] = f["cli"]["wall_s"]
    if full_segments:
        full = granule(cache_dir() / f"segments-{full_segments}", full_segments)
        warm(full)
        f["full"] = {"granule": full.name, "segments": full_segments,
                     "atl06": _child("atl06", full), "atl03s": _child("atl03s", full),
                     "atl03x": _child("atl03x", full, XPHOTONS)}
    f["ratios"] = ratios(f)
    f["load_average_1min_after"] = os.getloadavg()[0]
    (directory / "bench.json").write_text(json.dumps(f, indent=2))
    return f


def ratios(f: dict) -> dict:
    """The ratios of issues 3 and 11 from one run's figures."""
    r = {"cli_over_h5py_read": f["cli_atl06_s"] / f["h5py"]["wall_s"],
         "read_over_h5py_read": f["read"]["wall_s"] / f["h5py"]["wall_s"]}
    if "previous_fit_cpu_s" in f["fit"]:
        r["fit_speedup"] = f["fit"]["previous_fit_cpu_s"] / f["fit"]["fit_cpu_s"]
    if f.get("sliderule_pair_ratios"):
        r["atl06_over_sliderule"] = statistics.median(f["sliderule_pair_ratios"])
    if "full" in f:
        for kind in ("atl06", "atl03s", "atl03x"):
            small, big = f[kind], f["full"][kind]
            r[f"{kind}_full_per_photon_cpu"] = (big["cpu_s"] / big["photons"]) / (small["cpu_s"] / small["photons"])
            r[f"{kind}_full_per_photon_wall"] = (big["wall_s"] / big["photons"]) / (small["wall_s"] / small["photons"])
    return r


def report(f: dict) -> str:
    """A human-readable summary of :func:`run`'s figures."""
    mph = 1e-6
    a6, a3, rd, fit = f["atl06"], f["atl03s"], f["read"], f["fit"]
    photons = a6["photons"]
    lines = [
        f"granule {f['granule']}: {photons:,.0f} photons, {fit['extents']:,} extents "
        f"({fit['entries']:,} photon entries); {f['cpus']} CPUs, load {f['load_average_1min']:.1f} -> "
        f"{f['load_average_1min_after']:.1f}",
        f"{'stage':32s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS':>9s}  throughput",
        _line("raw h5py read (reference)", f["h5py"]),
        _line("read (our reader, windows)", rd, f"{rd['photons'] / rd['wall_s'] * mph:6.2f} M photons/s"),
        _line("ATL06-SR in-process", a6, f"{photons / a6['wall_s'] * mph:6.2f} M photons/s"),
        _line("ATL06-SR recommended parms", f["atl06_rec"],
              f"{photons / f['atl06_rec']['wall_s'] * mph:6.2f} M photons/s"),
        _line("atl03s in-process (streamed)", a3, f"{a3['rows'] / a3['wall_s'] * mph:6.2f} M photon rows/s"),
        _line("atl03x in-process (streamed)", f["atl03x"],
              f"{f['atl03x']['rows'] / f['atl03x']['wall_s'] * mph:6.2f} M photon rows/s"),
        _line("atl03x + fit (streamed)", f["atl03x_fit"],
              f"{f['atl03x_fit']['photons'] / f['atl03x_fit']['wall_s'] * mph:6.2f} M photons/s"),
        _line("PhoREAL in-process (forest)", f["atl08"],
              f"{f['atl08']['photons'] / f['atl08']['wall_s'] * mph:6.2f} M photons/s"),
        _line("fit alone, one thread", {**fit, "wall_s": fit["fit_cpu_s"], "cpu_s": fit["fit_cpu_s"]},
              f"{fit['entries'] / fit['fit_cpu_s'] * mph:6.2f} M entries/s/core"),
        _line("whole `icesat2sr atl06` (CLI)", f["cli"], "process tree: the CLI and its workers"),
    ]
    if "previous_fit_cpu_s" in fit:
        lines.append(f"{'fit before issue 11, one thread':32s} {fit['previous_fit_cpu_s']:8.2f} {'':8s} {'':9s}  "
                     f"results identical: {fit['identical_to_previous']}")
    else:
        lines.append(f"{'fit before issue 11':32s} not measured: {fit.get('previous_fit_missing')}")
    if f.get("sliderule_s"):
        lines.append(f"{'SlideRule C++ ATL06-SR (recomm.)':32s} {f['sliderule_s']:8.2f}  "
                     "(processing, start-up excluded; median)")
        lines.append(f"  {len(f['sliderule_runs_s'])} runs in turn, processing s: ours "
                     f"{_seconds(f['atl06_rec_runs_s'])}; SlideRule {_seconds(f['sliderule_runs_s'])}")
    if "full" in f:
        full = f["full"]
        lines.append(f"full-size granule {full['granule']} ({full['atl06']['photons']:,.0f} photons):")
        lines.append(_line("  ATL06-SR in-process", full["atl06"]))
        lines.append(_line("  atl03s in-process (streamed)", full["atl03s"]))
        lines.append(_line("  atl03x in-process (streamed)", full["atl03x"]))
    r = f["ratios"]
    lines.append("ratios (same run):")
    lines.append(f"  icesat2sr atl06 (CLI) / raw h5py read       {r['cli_over_h5py_read']:6.2f}   "
                 "(target <= 2.0, goal 1.5)")
    lines.append(f"  our read / raw h5py read                    {r['read_over_h5py_read']:6.2f}")
    if "fit_speedup" in r:
        lines.append(f"  fit speed-up (CPU, one thread)              {r['fit_speedup']:6.2f}x  (target >= 5)")
    if "atl06_over_sliderule" in r:
        pair = f["sliderule_pair_ratios"]
        lines.append(f"  in-process ATL06-SR / SlideRule C++         {r['atl06_over_sliderule']:6.2f}   (target <= 1; "
                     f"median of {len(pair)} pairs, {min(pair):.2f}-{max(pair):.2f})")
    for kind in ("atl06", "atl03s", "atl03x"):
        if f"{kind}_full_per_photon_cpu" in r:
            lines.append(f"  {kind} s/photon full-size / bench (CPU, wall) {r[f'{kind}_full_per_photon_cpu']:5.2f}, "
                         f"{r[f'{kind}_full_per_photon_wall']:5.2f}  (target <= 1.2)")
    return "\n".join(lines)


def _seconds(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _line(label: str, s: dict, extra: str = "") -> str:
    return f"{label:32s} {s['wall_s']:8.2f} {s['cpu_s']:8.2f} {s['peak_rss_mb']:7.0f} MB  {extra}"


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
