"""A picture of a result: along-track elevation per beam, and a map of the points; for PhoREAL
results (``atl08p``), canopy and terrain heights along track (:func:`plot_vegetation`).

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global backend
change), so it works the same in scripts, servers and notebooks.

Examples
--------
>>> from icesat2sr.client.plot import plot
>>> plot(gdf, "atl06.png")          # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..request.names import BEAMS

MAX_GRANULE_PANELS = 4
MAX_MAP_POINTS = 200_000
_BEAM_COLORS = dict(zip(BEAMS, ("#1f77b4", "#9ecae1", "#d62728", "#fc9272", "#2ca02c", "#a1d99b"), strict=True))


def _columns(gdf) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Along-track distance (m), height (m), beam name per row, and the height's label."""
    if "h_mean" in gdf.columns:
        height, label = gdf["h_mean"].to_numpy(np.float64), "h_mean (m)"
        dist = gdf["distance"] if "distance" in gdf.columns else gdf.get("x_atc")
        dist = np.asarray(dist if dist is not None else np.arange(len(gdf)), dtype=np.float64)
    else:
        height, label = gdf["height"].to_numpy(np.float64), "photon height (m)"
        dist = gdf["segment_dist"].to_numpy(np.float64) + gdf["x_atc"].to_numpy(np.float64)
    return dist, height, _beams(gdf), label


def _beams(gdf) -> np.ndarray:
    """Beam name (gt1l..gt3r) of every row."""
    if "gt" in gdf.columns:
        return np.array(BEAMS)[np.clip(gdf["gt"].to_numpy(np.int64) // 10 - 1, 0, 5)]
    if "track" in gdf.columns and "pair" in gdf.columns:
        return np.char.add(np.char.add("gt", gdf["track"].to_numpy().astype(str)),
                           np.where(gdf["pair"].to_numpy() == 0, "l", "r"))
    return np.full(len(gdf), "all")


def _granule_keys(gdf) -> np.ndarray:
    parts = [gdf[c].to_numpy().astype(np.int64) for c in ("rgt", "cycle", "region") if c in gdf.columns]
    if not parts:
        return np.zeros(len(gdf), dtype=np.int64)
    key = np.zeros(len(gdf), dtype=np.int64)
    for p in parts:
        key = key * 10000 + p
    return key


def _projected(gdf) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Map coordinates: polar stereographic (km) near the poles, else lon/lat degrees."""
    lat = gdf.geometry.y.to_numpy()
    if len(lat) and (np.nanmax(lat) < -50 or np.nanmin(lat) > 50):
        south = np.nanmax(lat) < -50
        epsg, name = (3031, "Antarctic polar stereographic") if south else (3413, "NSIDC north polar stereographic")
        pts = gdf.geometry.set_crs(gdf.crs or "EPSG:4326", allow_override=True).to_crs(epsg)
        return pts.x.to_numpy() / 1000.0, pts.y.to_numpy() / 1000.0, f"x (km, EPSG:{epsg} {name})", "y (km)"
    return gdf.geometry.x.to_numpy(), lat, "longitude (deg)", "latitude (deg)"


def plot(gdf, path: str | os.PathLike | None = None, title: str | None = None, dpi: int = 120):
    """Plot elevations (or photons): along-track height per beam, one panel per granule, and a map.

    Parameters
    ----------
    gdf : GeoDataFrame
        An ``atl06p`` result (``h_mean``, ``distance``/``x_atc``, ``gt``) or an ``atl03sp`` one
        (``height``, ``segment_dist`` + ``x_atc``, ``track``/``pair``).
    path : path-like, optional
        Write a PNG there.
    title : str, optional
        Figure title (default: "ICESat-2 ATL06-SR"), followed by the time span.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if "h_canopy" in gdf.columns:
        return plot_vegetation(gdf, path, title, dpi=dpi)
    fig = _figure()
    if len(gdf) == 0:
        return _empty(fig, path, title, dpi)
    dist, height, beam, label = _columns(gdf)
    keys = _granule_keys(gdf)
    granules = list(dict.fromkeys(keys[np.argsort(gdf.index.to_numpy(), kind="stable")]))
    shown = granules[:MAX_GRANULE_PANELS]
    grid = fig.add_gridspec(len(shown), 2, width_ratios=(1.6, 1.0))
    for row, key in enumerate(shown):
        ax = fig.add_subplot(grid[row, 0])
        sel = keys == key
        x0 = np.nanmin(dist[sel])
        for b in sorted(set(beam[sel])):
            m = sel & (beam == b)
            ax.plot((dist[m] - x0) / 1000.0, height[m], ".", ms=1.5 if m.sum() > 5000 else 3,
                    color=_BEAM_COLORS.get(b, "k"), label=f"{b} ({m.sum()})")
        ax.set_ylabel(label)
        ax.set_title(_granule_title(gdf, sel), fontsize=9, loc="left")
        ax.legend(fontsize=7, markerscale=4, ncols=3, loc="best")
        ax.grid(alpha=0.3)
        if row == len(shown) - 1:
            ax.set_xlabel("along-track distance from the granule's first point (km)")
    mp = fig.add_subplot(grid[:, 1])
    x, y = _map(fig, mp, gdf, height, label)
    if "rgt" in gdf.columns and len(granules) > 1:  # name the tracks: far apart, each is a short line
        rgt = gdf["rgt"].to_numpy()
        for key in granules:
            sel = keys == key
            mp.annotate(f"rgt {int(rgt[sel][0])}", (np.nanmean(x[sel]), np.nanmean(y[sel])), fontsize=8,
                        xytext=(6, 6), textcoords="offset points")
    more = f" - first {len(shown)} of {len(granules)} granules" if len(granules) > len(shown) else ""
    return _finish(fig, path, (title or "ICESat-2 ATL06-SR") + f"  ({_span(gdf)}){more}", dpi)


def plot_vegetation(gdf, path: str | os.PathLike | None = None, title: str | None = None,
                    truth: np.ndarray | None = None, dpi: int = 120):
    """Plot PhoREAL metrics: canopy height along track per beam, the terrain under it, and a map.

    Parameters
    ----------
    gdf : GeoDataFrame
        An ``atl08p`` result (``h_canopy``, ``canopy_h_metrics``, ``h_te_median``, ``x_atc``, ``gt``).
        Along-track panels show its first granule; the map shows every row.
    path : path-like, optional
        Write a PNG there.
    title : str, optional
        Figure title (default: "ICESat-2 PhoREAL canopy metrics"), followed by the time span.
    truth : ndarray, optional
        A known canopy height per row (e.g. a synthetic forest's 98th percentile), drawn as a line.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure()
    if len(gdf) == 0:
        return _empty(fig, path, title, dpi)
    keys = _granule_keys(gdf)
    first = keys == keys[np.argmin(gdf.index.to_numpy())]
    dist = gdf["x_atc"].to_numpy(np.float64)
    km = (dist - np.nanmin(dist[first])) / 1000.0
    beam = _beams(gdf)
    canopy = gdf["h_canopy"].to_numpy(np.float64)
    median = np.array([m[9] for m in gdf["canopy_h_metrics"]], dtype=np.float64)
    has = gdf["veg_ph_count"].to_numpy() > 0
    grid = fig.add_gridspec(2, 2, width_ratios=(1.6, 1.0), height_ratios=(1.6, 1.0))
    top, bottom = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
    strong = gdf["spot"].isin((1, 3, 5)).to_numpy() if "spot" in gdf.columns else np.ones(len(gdf), bool)
    for b in sorted(set(beam[first])):
        m = first & (beam == b)
        c = _BEAM_COLORS.get(b, "k")
        bottom.plot(km[m], gdf["h_te_median"].to_numpy(np.float64)[m], ".", ms=2, color=c, label=b)
        m &= strong
        if not m.any():
            continue
        order = np.flatnonzero(m)[np.argsort(km[m])]
        top.plot(km[order][has[order]], canopy[order][has[order]], "o", ms=3, color=c, label=f"{b} h_canopy")
        top.plot(km[order][has[order]], median[order][has[order]], "+", ms=4, color=c, alpha=0.6)
        if truth is not None:
            top.step(km[order], np.asarray(truth, dtype=np.float64)[order], where="mid", color=c, lw=0.8,
                     alpha=0.8, label=f"{b} truth (98th percentile)")
    if has[first].any():
        lo, hi = np.nanmin(km[first & has]), np.nanmax(km[first & has])
        top.set_xlim(lo - 0.05 * (hi - lo + 1), hi + 0.05 * (hi - lo + 1))
    top.set_ylabel("canopy height above ground (m)\n(strong beams; o: h_canopy, +: 50th percentile)")
    top.legend(fontsize=7, markerscale=2, ncols=3, loc="lower left")
    bottom.set_ylabel("h_te_median (m)")
    bottom.set_xlabel("along-track distance from the granule's first extent (km)")
    top.set_title(_granule_title(gdf, first), fontsize=9, loc="left")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    _map(fig, fig.add_subplot(grid[:, 1]), gdf, canopy, "h_canopy (m)")
    return _finish(fig, path, (title or "ICESat-2 PhoREAL canopy metrics") + f"  ({_span(gdf)})", dpi)


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _empty(fig, path, title: str | None, dpi: int):
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=20)
    ax.set_axis_off()
    return _finish(fig, path, title or "empty result", dpi)


def _map(fig, mp, gdf, value: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Points coloured by ``value`` (at most MAX_MAP_POINTS of them)."""
    from matplotlib.ticker import MaxNLocator

    x, y, xlabel, ylabel = _projected(gdf)
    step = max(1, len(x) // MAX_MAP_POINTS)
    order = np.argsort(value[::step])
    sc = mp.scatter(x[::step][order], y[::step][order], c=value[::step][order], s=2, cmap="viridis")
    fig.colorbar(sc, ax=mp, label=label, shrink=0.8)
    mp.set_aspect("equal", adjustable="datalim")
    mp.xaxis.set_major_locator(MaxNLocator(4))
    mp.set_xlabel(xlabel, fontsize=8)
    mp.set_ylabel(ylabel, fontsize=8)
    mp.set_title(f"{len(gdf)} points" + (f" (every {step}th shown)" if step > 1 else ""), fontsize=9)
    mp.grid(alpha=0.3)
    return x, y


def _span(gdf) -> str:
    return f"{gdf.index.min():%Y-%m-%d %H:%M:%S} .. {gdf.index.max():%Y-%m-%d %H:%M:%S} UTC"


def _granule_title(gdf, sel: np.ndarray) -> str:
    parts = []
    for col in ("rgt", "cycle", "region"):
        if col in gdf.columns:
            parts.append(f"{col} {int(gdf[col].to_numpy()[sel][0])}")
    start = gdf.index[sel].min()
    return ", ".join(parts) + f"  start {start:%Y-%m-%d %H:%M:%S}"


def _finish(fig, path, title: str, dpi: int):
    fig.suptitle(title, fontsize=11)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return fig


def plot_file(result: str | os.PathLike, output: str | os.PathLike, title: str | None = None):
    """Read a GeoParquet result (``icesat2sr atl06 ... -o X.parquet``) and plot it to ``output``."""
    import geopandas

    gdf = geopandas.read_parquet(result)
    return plot(gdf, output, title=title or Path(result).name)
