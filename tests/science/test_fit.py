"""Tests of the vectorised ATL06-SR fit (icesat2sr.science.fit) against SPEC §6 / §10.2.

Golden values come from hand computation or from ``reference_fit`` (a per-extent loop written
independently from the spec).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.science.fit import FitSettings, fit_extents

from .reference_fit import fit_reference

HALF_C = 299792458.0 / 2.0
PER_EXTENT = ("h_mean", "dh_fit_dx", "n_fit_photons", "pflags", "w_surface_window_final",
              "rms_misfit", "h_sigma", "fitted")
DISCRETE = ("n_fit_photons", "pflags", "fitted", "in_fit")


def rate_for_density(density: float, length: float = 40.0, speed: float = 7000.0) -> float:
    """Background rate (photons/s) giving ``density`` background photons per metre of height."""
    pulses = length * 10000.0 / float(np.float32(speed))
    return density * HALF_C / pulses


def one(x, h, s: FitSettings | None = None, rate: float = 0.0, **fields) -> dict:
    """Fit a single extent; returns scalars (``in_fit`` stays per photon)."""
    x = np.asarray(x, np.float32)
    out = fit_extents(np.array([0, x.size]), x, np.asarray(h, np.float32), 40.0, 7000.0, rate, s,
                      **fields)
    return {k: (v if k == "in_fit" else v[0]) for k, v in out.items()}


# --- random batches ------------------------------------------------------------------------------

@st.composite
def batches(draw, max_extents: int = 60, max_photons: int = 200):
    """A random beam: line signal + noise + uniform background per extent, plus settings."""
    seed = draw(st.integers(0, 2**32 - 1))
    tied_x = draw(st.booleans())
    s = FitSettings(maxi=draw(st.integers(1, 6)), H_min_win=draw(st.floats(0.2, 5.0)),
                    sigma_r_max=draw(st.floats(0.05, 6.0)), cnt=draw(st.integers(0, 15)),
                    ats=draw(st.floats(0.0, 30.0)))
    rng = np.random.default_rng(seed)
    n_ext = int(rng.integers(1, max_extents + 1))         # sizes from the seed: hypothesis would
    top = int(rng.integers(0, max_photons + 1))           # mostly shrink them to tiny batches
    counts = rng.integers(0, top + 1, n_ext)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    e = np.repeat(np.arange(n_ext), counts)
    n = int(offsets[-1])
    x = rng.uniform(-20.0, 20.0, n)
    if tied_x:
        x = np.round(x / 5.0) * 5.0                      # many photons at the same x
    a = rng.uniform(-50.0, 3000.0, n_ext)
    b = rng.normal(0.0, 0.1, n_ext)
    signal = rng.random(n) < rng.uniform(0.0, 1.0, n_ext)[e]
    noise = rng.choice([0.0, 0.05, 0.3, 2.0], n_ext)[e]
    h = np.where(signal, a[e] + b[e] * x + rng.normal(0.0, 1.0, n) * noise,
                 a[e] + rng.uniform(-15.0, 15.0, n))
    fields = {"latitude": rng.uniform(-89.0, 89.0, n_ext)[e] + rng.normal(0, 1e-4, n),
              "longitude": rng.uniform(-180.0, 180.0, n_ext)[e] + rng.normal(0, 1e-4, n),
              "time_ns": rng.integers(1_500_000_000, 1_900_000_000, n_ext)[e] * 10**9
              + rng.integers(0, 10**7, n),
              "y_atc": rng.normal(0.0, 3000.0, n).astype(np.float32),
              "delta_time": rng.uniform(0.0, 3e8, n)}
    extent = {"offsets": offsets, "x": x.astype(np.float32), "h": h.astype(np.float32),
              "extent_length": 40.0, "velocity": rng.uniform(6900, 7100, n_ext).astype(np.float32),
              "background_rate": rng.uniform(0.0, 1e7, n_ext) * rng.integers(0, 2, n_ext)}
    return extent, fields, s


def run_both(extent: dict, fields: dict, s: FitSettings) -> tuple[dict, dict]:
    got = fit_extents(**extent, settings=s, **fields)
    ref = fit_reference(**extent, **dataclasses.asdict(s), **fields)
    return got, ref


def assert_same(got: dict, ref: dict) -> None:
    """Bit for bit: the dense tiles add in SlideRule's (the reference's) order."""
    assert set(got) == set(ref)
    for k, v in got.items():
        assert v.dtype == ref[k].dtype, k
        np.testing.assert_array_equal(v, ref[k], err_msg=k, strict=True)


@settings(max_examples=40, deadline=None)
@given(batches())
def test_matches_reference(case):
    assert_same(*run_both(*case))


def test_matches_reference_out_of_bounds_branch():
    """A negative background rate (invalid data) reaches SlideRule's 0x8 fallback; still identical."""
    rng = np.random.default_rng(7)
    counts = rng.integers(1, 12, 400)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n = int(offsets[-1])
    extent = {"offsets": offsets, "x": rng.uniform(-20, 20, n).astype(np.float32),
              "h": rng.normal(0, 1, n).astype(np.float32), "extent_length": 40.0, "velocity": 7000.0,
              "background_rate": -rng.uniform(0, 5e7, counts.size)}
    s = FitSettings(maxi=3, cnt=0, ats=0.0)
    got, ref = run_both(extent, {}, s)
    assert_same(got, ref)
    assert np.any(got["pflags"] & 0x8)


# --- SPEC §10.2 deterministic cases ------------------------------------------------------------

X40 = np.linspace(-19.5, 19.5, 40).astype(np.float32)   # exact in float32


def test_noise_free_plane_one_pass():
    a, b = 100.0, 0.0625                                  # h exact in float32
    r = one(X40, a + b * X40, FitSettings(maxi=1))        # maxi=1: 0x4 unless converged at once
    assert r["pflags"] == 0
    assert r["h_mean"] == pytest.approx(a, abs=1e-9)
    assert r["dh_fit_dx"] == np.float32(b)
    assert r["rms_misfit"] < 1e-6
    assert r["n_fit_photons"] == 40
    assert r["in_fit"].all()
    # 6·sigma_exp = 6·sqrt(0.10193² + 4.25²·0.0625²) = 1.707 < 3
    assert r["w_surface_window_final"] == np.float32(3.0)


def test_sigma_expected_floor():
    floor = 6.0 * math.sqrt((HALF_C * 0.68e-9) ** 2)      # 0.61158 m
    assert floor == pytest.approx(0.6116, abs=1e-4)
    flat = np.full(40, 250.0)
    assert one(X40, flat)["w_surface_window_final"] == np.float32(3.0)     # H_min_win wins
    low = one(X40, flat, FitSettings(H_min_win=0.5))
    assert low["w_surface_window_final"] == pytest.approx(floor, rel=1e-7)
    assert low["pflags"] == 0


def test_too_few_photons_after_window():
    # 8 photons on h=0 plus 4 outliers (±50 at x=±5) that cancel in the fit: h_mean=0, slope=0;
    # sorted residuals -50,-50,0×8,50,50, i0=2, i1=9 -> sigma_r=0 -> W=3 keeps 8 < cnt=10.
    x = np.concatenate([np.linspace(-19, 19, 8), [-5, 5, -5, 5]])
    h = np.concatenate([np.zeros(8), [50, 50, -50, -50]])
    r = one(x, h)
    assert r["fitted"]
    assert r["pflags"] == 0x2
    assert r["rms_misfit"] == 0 and r["h_sigma"] == 0
    assert r["n_fit_photons"] == 12                        # S before the cut
    assert r["h_mean"] == pytest.approx(0.0, abs=1e-9)
    assert r["w_surface_window_final"] == np.float32(3.0)


def test_spread_too_short():
    x = np.linspace(-5, 5, 12)
    r = one(x, 10.0 + 0.01 * x)
    assert r["pflags"] == 0x1
    assert r["rms_misfit"] == 0 and r["h_sigma"] == 0
    assert r["n_fit_photons"] == 12


def test_max_iterations():
    # 20 photons on h=0 plus ±50 at x=0: fit stays h=0, W=3 drops the 2 outliers.
    x = np.concatenate([np.linspace(-19, 19, 20), [0, 0]])
    h = np.concatenate([np.zeros(20), [50, -50]])
    r = one(x, h, FitSettings(maxi=1))
    assert r["pflags"] == 0x4
    assert r["n_fit_photons"] == 22
    rms = math.sqrt(2 * 50.0**2 / 22)                     # residuals 0×20, ±50
    assert r["rms_misfit"] == pytest.approx(rms, rel=1e-6)
    assert r["h_sigma"] == pytest.approx(rms / math.sqrt(22), rel=1e-6)   # sqrt(i11) = 1/sqrt(n)
    assert r["in_fit"].all()                               # S still holds the outliers
    r2 = one(x, h, FitSettings(maxi=2))
    assert r2["pflags"] == 0 and r2["n_fit_photons"] == 20 and r2["rms_misfit"] < 1e-6
    assert not r2["in_fit"][-2:].any()


def test_sigma_r_max_caps_window():
    # pairs ±d at each x: h_mean=0, slope=0; 20×(-d), 20×(+d); i0=9, i1=30 -> sigma_r = 2d/RDE
    d = 4.0
    x = np.repeat(np.linspace(-19, 19, 20), 2)
    h = np.tile([d, -d], 20)
    capped = one(x, h, FitSettings(sigma_r_max=1.0))
    assert capped["w_surface_window_final"] == np.float32(6.0)
    assert capped["pflags"] == 0x2                         # |±4| >= 3: nothing kept
    free = one(x, h, FitSettings(sigma_r_max=10.0))
    assert free["w_surface_window_final"] == np.float32(6.0 * 2 * d / 1.3490)
    assert free["pflags"] == 0 and free["n_fit_photons"] == 40
    assert free["rms_misfit"] == pytest.approx(d, rel=1e-6)


def test_out_of_bounds_by_hand():
    # r = -1/3, -1/3, 2/3; bg_density = -8: N_bg = -8, N_sig = 11, bckgrd = -8
    # i0 = 2 (1.5<2.75, 2.5<2.75, 3.5>=-5.25), i1 = 1 (1.5>0.25, 0.5<=8.25) -> i1<i0 ->
    # i0 = int(1.5 - 2.75 + 0.5) - 1 = -1 -> out of bounds: 0x8, sigma_r = 0, W = 3, converged.
    x = [-10.0, 0.0, 10.0]
    h = [0.0, 1.0, 0.0]
    out = fit_extents(np.array([0, 3]), np.float32(x), np.float32(h), 40.0, 8000.0,
                      -8.0 * HALF_C / 50.0, FitSettings(cnt=3, ats=0.0))
    assert out["pflags"][0] == 0x8
    assert out["rms_misfit"][0] == 0 and out["h_sigma"][0] == 0
    assert out["w_surface_window_final"][0] == np.float32(3.0)
    assert out["h_mean"][0] == pytest.approx(1 / 3, rel=1e-12)


# --- recovery ----------------------------------------------------------------------------------

def test_recovers_line_under_noise_and_background():
    rng = np.random.default_rng(3)
    n_ext, n_sig, n_bg, sigma, a, b = 40, 200, 60, 0.1, 1500.0, 0.03
    xs, hs = [], []
    for _ in range(n_ext):
        x = rng.uniform(-20, 20, n_sig + n_bg)
        h = a + b * x + np.concatenate([rng.normal(0, sigma, n_sig), rng.uniform(-15, 15, n_bg)])
        xs.append(x)
        hs.append(h)
    offsets = np.arange(n_ext + 1) * (n_sig + n_bg)
    out = fit_extents(offsets, np.concatenate(xs), np.concatenate(hs), 40.0, 7000.0,
                      rate_for_density(n_bg / 30.0), FitSettings())
    assert np.all(out["pflags"] == 0)
    err = np.abs(out["h_mean"] - a)
    assert np.all(err < 0.05) and np.all(err < 4 * out["h_sigma"])
    assert np.all(np.abs(out["dh_fit_dx"] - b) < 0.005)
    assert np.all(out["n_fit_photons"] < n_sig + n_bg)
    assert np.all(out["n_fit_photons"] >= 0.9 * n_sig)
    expected = sigma / np.sqrt(out["n_fit_photons"])
    assert np.all((out["h_sigma"] > 0.5 * expected) & (out["h_sigma"] < 4 * expected))


# --- edge cases --------------------------------------------------------------------------------

def test_one_photon():
    r = one([3.0], [10.0])
    assert r["fitted"] and r["pflags"] == 0x2 and r["n_fit_photons"] == 1
    assert np.isnan(r["h_mean"]) and r["rms_misfit"] == 0 and r["h_sigma"] == 0
    # MAX(NaN, 0.75·0) is 0 in C's MAX, so a degenerate first pass leaves W = 0
    assert r["w_surface_window_final"] == 0
    assert one([3.0], [10.0], FitSettings(cnt=0))["pflags"] == 0x1      # empty keep: spread -inf


def test_two_photons_same_x():
    r = one([2.0, 2.0], [10.0, 11.0], FitSettings(cnt=0, ats=0.0))
    assert r["fitted"] and r["pflags"] == 0x1 and r["n_fit_photons"] == 2
    assert np.isnan(r["h_mean"])


def test_empty_extents_mixed_with_full():
    rng = np.random.default_rng(11)
    counts = np.array([0, 30, 0, 0, 25, 40, 0])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n = int(offsets[-1])
    x = rng.uniform(-20, 20, n).astype(np.float32)
    h = (5.0 + 0.02 * x + rng.normal(0, 0.1, n)).astype(np.float32)
    t = rng.integers(10**18, 2 * 10**18, n)
    out = fit_extents(offsets, x, h, 40.0, 7000.0, 1e5, time_ns=t)
    assert out["fitted"].tolist() == (counts > 0).tolist()
    empty = counts == 0
    assert np.all(out["n_fit_photons"][empty] == 0) and np.all(out["pflags"][empty] == 0)
    assert np.all(np.isnan(out["h_mean"][empty])) and np.all(out["time_ns"][empty] == 0)
    full = np.flatnonzero(~empty)
    alone = fit_extents(np.concatenate([[0], np.cumsum(counts[full])]), x, h, 40.0, 7000.0, 1e5,
                        time_ns=t)
    for k in (*PER_EXTENT, "time_ns"):
        np.testing.assert_array_equal(out[k][full], alone[k], err_msg=k)


def test_all_noise_extent():
    rng = np.random.default_rng(5)
    x = rng.uniform(-20, 20, 150)
    h = rng.uniform(-15, 15, 150)
    offsets = np.array([0, 150])
    ext = {"offsets": offsets, "x": x.astype(np.float32), "h": h.astype(np.float32),
           "extent_length": 40.0, "velocity": 7000.0, "background_rate": rate_for_density(5.0)}
    got, ref = run_both(ext, {}, FitSettings())
    assert_same(got, ref)
    assert got["fitted"][0] and got["n_fit_photons"][0] <= 150


def test_large_batch_shapes():
    rng = np.random.default_rng(2)
    n_ext = 20000
    counts = rng.integers(0, 60, n_ext)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n = int(offsets[-1])
    x = rng.uniform(-20, 20, n).astype(np.float32)
    h = (rng.normal(0, 0.2, n) + np.repeat(rng.uniform(0, 100, n_ext), counts)).astype(np.float32)
    out = fit_extents(offsets, x, h, 40.0, np.full(n_ext, 7000.0, np.float32),
                      np.full(n_ext, 1e6), latitude=np.zeros(n), longitude=np.zeros(n),
                      time_ns=np.zeros(n, np.int64), y_atc=np.zeros(n, np.float32),
                      delta_time=np.zeros(n))
    dtypes = {"h_mean": "f8", "dh_fit_dx": "f4", "n_fit_photons": "i4", "pflags": "u2",
              "w_surface_window_final": "f4", "rms_misfit": "f4", "h_sigma": "f4", "fitted": "?",
              "latitude": "f8", "longitude": "f8", "time_ns": "i8", "y_atc": "f4", "delta_time": "f8"}
    assert set(out) == set(dtypes) | {"in_fit"}
    for k, dt in dtypes.items():
        assert out[k].shape == (n_ext,) and out[k].dtype == np.dtype(dt), k
    assert out["in_fit"].shape == (n,) and out["in_fit"].sum() == out["n_fit_photons"].sum()


def test_zero_extents():
    out = fit_extents(np.array([0]), np.zeros(0, np.float32), np.zeros(0, np.float32), 40.0,
                      np.zeros(0, np.float32), np.zeros(0))
    assert out["h_mean"].shape == (0,) and out["in_fit"].shape == (0,)


def test_longitude_across_antimeridian():
    x = np.linspace(-19, 19, 20)
    lon = np.where(np.arange(20) % 2 == 0, 179.99, -179.99)
    r = one(x, 100.0 + 0 * x, latitude=np.full(20, -70.0), longitude=lon)
    assert abs(abs(r["longitude"]) - 180.0) < 0.011
    assert r["latitude"] == pytest.approx(-70.0, abs=1e-9)
    direct = one(x, 100.0 + 0 * x, longitude=np.full(20, 10.0))
    assert direct["longitude"] == pytest.approx(10.0, abs=1e-9)


def test_position_fields_are_centre_values():
    x = np.linspace(-19, 19, 30)
    r = one(x, 10.0 + 0 * x, latitude=50.0 + 1e-5 * x, delta_time=1000.0 + 0.001 * x,
            time_ns=(2 * 10**18 + np.round(x * 1e6)).astype(np.int64),
            y_atc=(3.0 + 0.5 * x).astype(np.float32))
    assert r["latitude"] == pytest.approx(50.0, abs=1e-9)
    assert r["delta_time"] == pytest.approx(1000.0, abs=1e-9)
    assert abs(int(r["time_ns"]) - 2 * 10**18) <= 512
    assert r["y_atc"] == pytest.approx(3.0, abs=1e-5)


def test_rejects_bad_layout():
    with pytest.raises(ValueError):
        fit_extents(np.array([0, 5, 3]), np.zeros(5, np.float32), np.zeros(5, np.float32), 40.0,
                    7000.0, 0.0)
    with pytest.raises(ValueError):
        FitSettings(ats=math.nan)


# --- invariants --------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(batches(max_extents=40, max_photons=120))
def test_invariants(case):
    extent, fields, s = case
    out = fit_extents(**extent, settings=s, **fields)
    counts = np.diff(extent["offsets"])
    assert np.all((out["n_fit_photons"] >= 0) & (out["n_fit_photons"] <= counts))
    assert np.all(out["pflags"] & ~np.uint16(0xF) == 0)
    assert np.array_equal(out["fitted"], counts > 0)
    finite = out["fitted"] & np.isfinite(out["h_mean"]) & np.isfinite(out["dh_fit_dx"])
    assert np.all(out["w_surface_window_final"][finite] >= np.float32(s.H_min_win))
    invalid = (out["pflags"] & 0xB) != 0
    assert np.all(out["rms_misfit"][invalid] == 0) and np.all(out["h_sigma"][invalid] == 0)
    ext_of = np.repeat(np.arange(counts.size), counts)
    assert np.array_equal(np.bincount(ext_of, out["in_fit"], counts.size), out["n_fit_photons"])


@settings(max_examples=25, deadline=None)
@given(batches(max_extents=30, max_photons=120), st.integers(0, 2**32 - 1))
def test_permutation_within_extents(case, seed):
    extent, fields, s = case
    if np.unique(extent["x"]).size < 0.99 * extent["x"].size:
        return                                   # tied x make near-singular fits order-sensitive
    rng = np.random.default_rng(seed)
    counts = np.diff(extent["offsets"])
    ext_of = np.repeat(np.arange(counts.size), counts)
    perm = np.lexsort((rng.random(ext_of.size), ext_of))
    shuffled = dict(extent, x=extent["x"][perm], h=extent["h"][perm])
    a = fit_extents(**extent, settings=s, **fields)
    b = fit_extents(**shuffled, settings=s, **{k: v[perm] for k, v in fields.items()})
    for k in ("n_fit_photons", "pflags", "fitted"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(a["in_fit"][perm], b["in_fit"])
    ok = a["n_fit_photons"] >= 3
    for k, rtol in (("h_mean", 1e-9), ("latitude", 1e-9), ("delta_time", 1e-9),
                    ("dh_fit_dx", 1e-5), ("w_surface_window_final", 1e-6), ("rms_misfit", 1e-5),
                    ("h_sigma", 1e-5), ("y_atc", 1e-5)):
        np.testing.assert_allclose(a[k][ok], b[k][ok], rtol=rtol, atol=1e-6, err_msg=k)


# --- dense tiles at scale ---------------------------------------------------------------------------

def test_large_batch_equals_each_extent_alone_and_the_reference():
    """Thousands of extents in full tiles (sums over many rows, column subsets) give exactly what
    each extent gives alone, and the straightforward reference, photon fields read through ``photon``."""
    rng = np.random.default_rng(21)
    n_ext = 3000
    counts = rng.integers(1, 320, n_ext)
    counts[rng.random(n_ext) < 0.05] = 0
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n = int(offsets[-1])
    np.repeat(np.arange(n_ext), counts)
    x = rng.uniform(-20, 20, n).astype(np.float32)
    signal = rng.random(n) < 0.4
    h = np.where(signal, 900.0 + 0.05 * x + rng.normal(0, 0.2, n), 900.0 + rng.uniform(-50, 50, n)).astype(np.float32)
    h[rng.random(n) < 0.002] = np.nan
    dup = rng.random(n) < 0.01                          # exact duplicates: residual ties
    x[1:][dup[1:]] = x[:-1][dup[1:]]
    h[1:][dup[1:]] = h[:-1][dup[1:]]
    photon = rng.permutation(n + 50)[:n]               # entries map to photons of a bigger beam
    lat = rng.uniform(-80, 80, n + 50)
    lon = rng.uniform(-180, 180, n + 50)
    t = rng.integers(10**18, 2 * 10**18, n + 50)
    rate = rng.uniform(0, 5e6, n_ext)
    s = FitSettings(maxi=6)
    got = fit_extents(offsets, x, h, 40.0, 7000.0, rate, s, latitude=lat, longitude=lon, time_ns=t, photon=photon)
    for k in rng.choice(np.flatnonzero(counts > 0), 40, replace=False):
        a, b = offsets[k], offsets[k + 1]
        p = photon[a:b]
        alone = fit_extents(np.array([0, b - a]), x[a:b], h[a:b], 40.0, 7000.0, rate[k:k + 1], s,
                            latitude=lat[p], longitude=lon[p], time_ns=t[p])
        ref = fit_reference(np.array([0, b - a]), x[a:b], h[a:b], 40.0, 7000.0, rate[k:k + 1],
                            **dataclasses.asdict(s), latitude=lat[p], longitude=lon[p], time_ns=t[p])
        for name in (*PER_EXTENT, "latitude", "longitude", "time_ns"):
            np.testing.assert_array_equal(got[name][k], alone[name][0], err_msg=name, strict=True)
            np.testing.assert_array_equal(got[name][k], ref[name][0], err_msg=name, strict=True)
        np.testing.assert_array_equal(got["in_fit"][a:b], ref["in_fit"])


@pytest.mark.parametrize("case", ["nan_height", "nan_x", "ties", "one", "all_noise", "inf_height"])
def test_edge_cases_equal_the_reference(case):
    rng = np.random.default_rng(5)
    x = rng.uniform(-20, 20, 60).astype(np.float32)
    h = (100 + 0.02 * x + rng.normal(0, 0.1, 60)).astype(np.float32)
    if case == "nan_height":
        h[[3, 17]] = np.nan
    elif case == "nan_x":
        x[9] = np.nan
    elif case == "ties":
        x[10:20], h[10:20] = x[0], h[0]
    elif case == "one":
        x, h = x[:1], h[:1]
    elif case == "all_noise":
        h = rng.uniform(-50, 50, 60).astype(np.float32)
    elif case == "inf_height":
        h[5] = np.inf
    for s in (FitSettings(), FitSettings(cnt=0, ats=0.0, maxi=3)):
        extent = {"offsets": np.array([0, len(x)]), "x": x, "h": h, "extent_length": 40.0, "velocity": 7000.0,
                  "background_rate": 2e6}
        fields = {"latitude": np.linspace(10, 11, len(x)), "time_ns": np.arange(len(x), dtype=np.int64) * 10**6}
        assert_same(*run_both(extent, fields, s))


def test_reserved_extra_names_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        fit_extents(np.array([0, 3]), np.zeros(3, np.float32), np.zeros(3, np.float32), 40.0, 7000.0, 0.0,
                    extras={"h_mean": np.zeros(3)})


@st.composite
def residual_rows(draw):
    """Tiles of residual rows as the fit sorts them: members first, +inf padding after; values close
    enough to share their leading bits, exact ties, signed zeros, infinities and NaNs of both signs."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows, width = int(rng.integers(1, 12)), int(rng.choice([1, 2, 7, 64, 300, 1500, 5000]))
    base = rng.normal(0.0, 3.0, (rows, width))
    ulps = rng.integers(-40, 40, (rows, width)).astype(np.float64)
    near = np.nextafter(base[:, :1], np.inf) + ulps * np.spacing(base[:, :1])  # differ in the last bits
    r = np.where(rng.random((rows, width)) < draw(st.floats(0.0, 1.0)), near, base)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, r.flat[0]])
    pick = rng.random((rows, width)) < draw(st.floats(0.0, 0.2))
    r[pick] = rng.choice(specials, int(pick.sum()))
    n = rng.integers(0, width, rows)                     # the last column is always padding
    pad = np.arange(width)[None, :] >= n[:, None]
    r[pad] = np.inf
    return r, pad, n


@settings(max_examples=150, deadline=None)
@given(residual_rows())
def test_residual_order_is_a_stable_sort(case):
    """The packed-key sort gives each row's members in the order of a stable sort (NaN last), the
    one SlideRule's order is compared with, whatever the residuals (an independent numpy lexsort)."""
    from icesat2sr.science.fit import _sort_residuals

    r, pad, n = case
    with np.errstate(invalid="ignore"):        # as in fit_extents: padding is +inf - +inf apart
        order, ranked = _sort_residuals(r.copy(), pad, n)
    for i in range(len(n)):
        members = r[i, :n[i]]
        nan = np.isnan(members)
        want = np.lexsort((np.where(nan, 0.0, members), nan))
        np.testing.assert_array_equal(order[i, :n[i]], want)
        np.testing.assert_array_equal(ranked[i, :n[i]], members[want])
        assert sorted(order[i, n[i]:]) == list(range(n[i], r.shape[1]))


@settings(max_examples=25, deadline=None)
@given(batches())
def test_misfit_sums_the_final_residuals_in_sorted_order(case):
    """SlideRule adds ``r²`` over the final photons in their sorted order (delta_sum). Stored as
    float32, rms_misfit rarely shows the order of a float64 sum, so the rows handed to the sum are
    checked: the residuals of the final set, ascending, padding after."""
    from icesat2sr.science import fit as fit_module

    extent, fields, s = case
    seen = []
    real = fit_module._rms

    def spy(ranked, n):
        seen.append((ranked.copy(), n.copy()))
        return real(ranked, n)

    fit_module._rms = spy
    try:
        out = fit_extents(**extent, settings=s, **fields)
    finally:
        fit_module._rms = real
    assert sum(len(n) for _, n in seen) == int(out["fitted"].sum())
    for ranked, n in seen:
        for row, count in zip(ranked, n, strict=True):
            members = row[:count]
            assert np.all(members[1:] >= members[:-1]) or np.isnan(members).any()
