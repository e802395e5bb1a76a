"""bench's fit stage finds the fit before issue 11 in the repository's history, wherever the
package is installed, or says why it cannot."""

from __future__ import annotations

from pathlib import Path

from icesat2sr import bench

REPO = Path(__file__).resolve().parents[1]


def installed_elsewhere(monkeypatch, tmp_path) -> None:
    """bench as a non-editable install sees it: its file in a site-packages folder, no checkout."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "icesat2sr"
    site.mkdir(parents=True)
    monkeypatch.setattr(bench, "__file__", str(site / "bench.py"))
    monkeypatch.delenv("ICESAT2SR_REPO", raising=False)


def test_found_from_the_checkout():
    module, missing = bench._previous_fit()
    assert missing is None and callable(module.fit_extents) and module.FitSettings


def test_found_by_an_installed_package_run_from_a_clone(monkeypatch, tmp_path):
    installed_elsewhere(monkeypatch, tmp_path)
    monkeypatch.chdir(REPO / "docs")
    module, missing = bench._previous_fit()
    assert missing is None and callable(module.fit_extents)


def test_found_through_icesat2sr_repo(monkeypatch, tmp_path):
    installed_elsewhere(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ICESAT2SR_REPO", str(REPO))
    module, missing = bench._previous_fit()
    assert missing is None and callable(module.fit_extents)


def test_not_found_says_why(monkeypatch, tmp_path):
    installed_elsewhere(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    module, missing = bench._previous_fit()
    assert module is None and bench.PREVIOUS_FIT in missing and "ICESAT2SR_REPO" in missing
    figures = {"granule": "G", "cpus": 2, "load_average_1min": 0.0, "load_average_1min_after": 0.0,
               "cli_atl06_s": 1.0, "ratios": {"cli_over_h5py_read": 1.0, "read_over_h5py_read": 1.0},
               "fit": {"extents": 1, "entries": 1, "fit_cpu_s": 1.0, "previous_fit_missing": missing,
                       "peak_rss_mb": 1.0}}
    stage = {"wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mb": 1.0, "photons": 1.0, "rows": 1.0}
    stages = ("h5py", "read", "atl06", "atl06_rec", "atl03s", "atl03x", "atl03x_fit", "atl08", "cli")
    figures.update({k: stage for k in stages})
    [line] = [x for x in bench.report(figures).splitlines() if x.startswith("fit before issue 11")]
    assert line.endswith(f" not measured: {missing}")


def test_a_stage_run_by_hand_with_bad_arguments_is_a_usage_error(capsys):
    for argv in ([], ["fit"], ["nothing", "G.h5", "{}"], ["fit", "G.h5", "{"], ["fit", "G.h5", "[]"]):
        assert bench._child_main(argv) == 2
        assert "usage: python -m icesat2sr.bench" in capsys.readouterr().err


def test_sliderule_comparison_runs_in_turn_and_takes_the_median_pair(monkeypatch):
    calls = []
    ours = iter([2.0, 1.0, 3.0])
    theirs = iter([1.0, 2.0, 1.5])

    def child(name, path, parms):
        calls.append("ours")
        return {"stats": {"total_s": next(ours)}}

    def sliderule(path, parms):
        calls.append("sliderule")
        return next(theirs)

    monkeypatch.setattr(bench, "_child", child)
    monkeypatch.setattr(bench, "sliderule_seconds", sliderule)
    f = bench.against_sliderule(Path("G.h5"), pairs=3)
    assert calls == ["ours", "sliderule"] * 3
    assert f["atl06_rec"]["stats"]["total_s"] == 2.0 and f["sliderule_s"] == 1.5
    assert f["sliderule_pair_ratios"] == [2.0, 0.5, 2.0]
    figures = {"cli_atl06_s": 1.0, "h5py": {"wall_s": 1.0}, "read": {"wall_s": 1.0}, "fit": {}, **f}
    assert bench.ratios(figures)["atl06_over_sliderule"] == 2.0


def test_without_sliderule_one_run_and_no_ratio(monkeypatch):
    monkeypatch.setattr(bench, "_child", lambda name, path, parms: {"stats": {"total_s": 1.0}})
    monkeypatch.setattr(bench, "sliderule_seconds", lambda path, parms: None)
    f = bench.against_sliderule(Path("G.h5"))
    assert f["atl06_rec_runs_s"] == [1.0] and "sliderule_s" not in f
    figures = {"cli_atl06_s": 1.0, "h5py": {"wall_s": 1.0}, "read": {"wall_s": 1.0}, "fit": {}, **f}
    assert "atl06_over_sliderule" not in bench.ratios(figures)
