"""``icesat2sr bench``: throughput of each stage and the two ratios of issue 3, measured in one run.

Stages are timed on one ~5 M-photon synthetic granule. Throughput is photons per CPU-second
(``time.process_time``: all threads of this process), i.e. per core; wall times are given too.
Ratios compare wall times measured in the same run, so a busy machine slows both sides:

* whole ``icesat2sr atl06`` (a fresh process: start-up, imports, reading, science, GeoParquet)
  divided by a raw h5py read of the same datasets (target <= 1.5);
* per-extent loops divided by the vectorised fit of all extents (target >= 10): ``fit_extents``
  called once per extent, and (from a checkout) the tests' straightforward per-extent
  implementation of SPEC §6; both timed on a sample of extents and scaled.

The PhoREAL step (:func:`vegetation`) is timed on a second granule of the same size with a
synthetic forest and its ATL08.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .granules.assets import resolve_asset
from .granules.reader import read_beams
from .request.names import BEAMS
from .request.params import Parms
from .request.timeutil import delta_time_to_ns
from .science.extents import make_extents
from .science.fit import FitSettings, fit_extents
from .science.select import photon_confidence, photon_mask

_RAW = ("heights/delta_time", "heights/lat_ph", "heights/lon_ph", "heights/h_ph", "heights/dist_ph_along",
        "heights/dist_ph_across", "heights/quality_ph", "geolocation/segment_id", "geolocation/segment_dist_x",
        "geolocation/delta_time", "geolocation/velocity_sc", "geolocation/solar_elevation",
        "geolocation/segment_ph_cnt", "bckgrd_atlas/delta_time", "bckgrd_atlas/bckgrd_rate")


class _Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def granule(directory: Path, segments: int) -> Path:
    """The benchmark granule (written once, then reused)."""
    from .synth import GranuleSpec, granule_name, write_granule

    spec = GranuleSpec(segments=segments, seed=7, atl08=False)
    path = directory / granule_name(spec)
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        write_granule(directory, spec)
    return path


def raw_h5py_read(path: Path, srt: int) -> float:
    """Wall seconds to read the datasets SlideRule needs with h5py (libhdf5, one thread)."""
    import h5py

    with _Clock() as clock, h5py.File(path) as f:
        for beam in BEAMS:
            for name in _RAW:
                f[f"{beam}/{name}"][()]
            f[f"{beam}/heights/signal_conf_ph"][:, srt]
    return clock.wall


def _per_extent_loop(ext, x, h, settings, sample: int) -> float:
    """Seconds per extent when fitting extents one call at a time (on the first ``sample`` extents)."""
    n = min(sample, len(ext.counter))
    with _Clock() as clock:
        for e in range(n):
            a, b = ext.offsets[e], ext.offsets[e + 1]
            fit_extents(np.array([0, b - a]), x[a:b], h[a:b], ext.length, ext.velocity[e:e + 1],
                        ext.background_rate[e:e + 1], settings)
    return clock.wall / max(n, 1)


def _reference_loop():
    """The tests' straightforward per-extent implementation of SPEC §6, when run from a checkout."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "tests" / "reference_fit.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("icesat2sr_reference_fit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.fit_reference


def _reference_seconds(reference, ext, x, h, settings, sample: int) -> float:
    """Seconds per extent of the straightforward implementation (first ``sample`` extents)."""
    n = min(sample, len(ext.counter))
    stop = ext.offsets[n]
    with _Clock() as clock:
        reference(ext.offsets[: n + 1], x[:stop], h[:stop], ext.length, ext.velocity[:n],
                  ext.background_rate[:n], maxi=settings.maxi, H_min_win=settings.H_min_win,
                  sigma_r_max=settings.sigma_r_max, cnt=settings.cnt, ats=settings.ats)
    return clock.wall / max(n, 1)


def run(directory: Path, segments: int = 8300, sample: int = 3000) -> dict:
    """Measure every stage; returns the figures (also written to ``directory/bench.json``)."""
    path = granule(directory, segments)
    parms = Parms()
    asset = resolve_asset("atlas-local", str(directory))
    figures: dict[str, float] = {}
    figures["h5py_read_s"] = raw_h5py_read(path, parms.srt)
    with _Clock() as read:
        beams = read_beams(asset, path.name, parms)
    photons = sum(len(b.h_ph) for b in beams)
    settings = FitSettings(maxi=parms.maxi, H_min_win=parms.H_min_win, sigma_r_max=parms.sigma_r_max,
                           cnt=parms.cnt, ats=parms.ats)
    select_cpu = select_wall = fit_cpu = fit_wall = loop = straightforward = 0.0
    reference = _reference_loop()
    fitted_photons = extents = 0
    for beam in beams:
        with _Clock() as sel:
            conf = photon_confidence(beam.signal_conf_ph, parms.srt, beam.granule)
            ext = make_extents(beam, photon_mask(conf, beam.quality_ph, parms, None, None, beam.granule), parms)
        p = ext.photon
        x, h = ext.x_rel, beam.h_ph[p]
        with _Clock() as fit:
            fit_extents(ext.offsets, x, h, ext.length, ext.velocity, ext.background_rate, settings,
                        latitude=beam.lat_ph[p], longitude=beam.lon_ph[p], time_ns=delta_time_to_ns(beam.delta_time[p]),
                        y_atc=beam.dist_ph_across[p], delta_time=beam.delta_time[p])
        with _Clock() as bare:
            fit_extents(ext.offsets, x, h, ext.length, ext.velocity, ext.background_rate, settings)
        loop += _per_extent_loop(ext, x, h, settings, sample // len(beams)) * len(ext.counter)
        if reference is not None:
            straightforward += _reference_seconds(reference, ext, x, h, settings, 60) * len(ext.counter)
        select_cpu, select_wall = select_cpu + sel.cpu, select_wall + sel.wall
        fit_cpu, fit_wall = fit_cpu + fit.cpu, fit_wall + fit.wall
        fitted_photons += len(p)
        extents += len(ext.counter)
        figures["fit_bare_s"] = figures.get("fit_bare_s", 0.0) + bare.wall
    out = directory / "bench.parquet"
    with _Clock() as cli:
        subprocess.run([sys.executable, "-m", "icesat2sr.cli", "atl06", path.name, "--path", str(directory),
                        "-o", str(out), "-q"], check=True)
    figures.update({
        "photons": photons, "extents": extents, "photons_in_extents": fitted_photons,
        "h5coro_read_s": read.wall, "h5coro_read_cpu_s": read.cpu,
        "read_photons_per_cpu_s": photons / read.cpu,
        "select_extents_s": select_wall, "select_extents_photons_per_cpu_s": photons / select_cpu,
        "fit_s": fit_wall, "fit_photons_per_cpu_s": fitted_photons / fit_cpu,
        "per_extent_loop_s": loop, "cli_atl06_s": cli.wall,
    })
    figures["ratio_cli_over_h5py_read"] = cli.wall / figures["h5py_read_s"]
    figures["ratio_h5coro_over_h5py_read"] = read.wall / figures["h5py_read_s"]
    figures["ratio_loop_over_vectorised_fit"] = loop / figures["fit_bare_s"]
    if reference is not None:
        figures["straightforward_loop_s"] = straightforward
        figures["ratio_straightforward_over_vectorised_fit"] = straightforward / figures["fit_bare_s"]
    figures.update(vegetation(directory / "forest", segments))
    (directory / "bench.json").write_text(json.dumps(figures, indent=2))
    return figures


def vegetation(directory: Path, segments: int) -> dict[str, float]:
    """Throughput of the PhoREAL step (canopy metrics and geolocation of every extent of a beam),
    on a granule of ``segments`` segments per beam with a forest over 23 % of its track (written
    once), SlideRule's default 40 m extents every 20 m (each photon in two)."""
    from .science.phoreal import vegetation_rows
    from .synth import GranuleSpec, granule_name, write_granule

    spec = GranuleSpec(segments=segments, seed=7, forest=True, atl08=True)
    if not (directory / granule_name(spec)).exists():
        write_granule(directory, spec)
    parms = Parms.from_dict({"phoreal": {"send_waveform": True}})
    beams = read_beams(resolve_asset("atlas-local", str(directory)), granule_name(spec), parms)
    entries, cpu, wall = 0, 0.0, 0.0
    for beam in beams:
        conf = photon_confidence(beam.signal_conf_ph, parms.srt, beam.granule)
        ext = make_extents(beam, photon_mask(conf, beam.quality_ph, parms, beam.atl08_class, None, beam.granule),
                           parms)
        with _Clock() as step:
            vegetation_rows(beam, ext, beam.atl08_class, parms.phoreal)
        entries, cpu, wall = entries + len(ext.photon), cpu + step.cpu, wall + step.wall
    return {"phoreal_photons_in_extents": entries, "phoreal_s": wall, "phoreal_photons_per_cpu_s": entries / cpu}


def report(figures: dict) -> str:
    """A human-readable summary of :func:`run`'s figures."""
    f = figures
    mph = 1e-6
    lines = [
        f"granule: {f['photons']:,} photons, {f['extents']:,} extents ({f['photons_in_extents']:,} photon entries)",
        f"read (h5coro, threads)      {f['h5coro_read_s']:7.2f} s wall  "
        f"{f['read_photons_per_cpu_s'] * mph:6.2f} M photons/s/core",
        f"read (h5py, reference)      {f['h5py_read_s']:7.2f} s wall",
        f"selection + extents         {f['select_extents_s']:7.2f} s wall  "
        f"{f['select_extents_photons_per_cpu_s'] * mph:6.2f} M photons/s/core",
        f"ATL06-SR fit (+positions)   {f['fit_s']:7.2f} s wall  "
        f"{f['fit_photons_per_cpu_s'] * mph:6.2f} M photon entries/s/core",
        f"PhoREAL (+ waveforms)       {f['phoreal_s']:7.2f} s wall  "
        f"{f['phoreal_photons_per_cpu_s'] * mph:6.2f} M photon entries/s/core "
        f"({f['phoreal_photons_in_extents']:,} entries, forest granule)",
        f"whole `icesat2sr atl06`     {f['cli_atl06_s']:7.2f} s wall "
        "(new process: start-up, read, science, GeoParquet)",
        "ratios (same run):",
        f"  icesat2sr atl06 / raw h5py read            {f['ratio_cli_over_h5py_read']:6.2f}   (target <= 1.5)",
        f"  h5coro read / raw h5py read                {f['ratio_h5coro_over_h5py_read']:6.2f}",
        f"  numpy per-extent loop / vectorised fit     {f['ratio_loop_over_vectorised_fit']:6.1f}x  (target >= 10)",
    ]
    if "ratio_straightforward_over_vectorised_fit" in f:
        lines.append(f"  straightforward per-extent (tests) / fit   "
                     f"{f['ratio_straightforward_over_vectorised_fit']:6.1f}x  (target >= 10)")
    return "\n".join(lines)
