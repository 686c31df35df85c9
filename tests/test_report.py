"""Markdown reports, the combined index, headless plots and the `dlfound` command."""

from __future__ import annotations

import types
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dlfound import __main__ as dlfound_main
from dlfound import catalog, plots, report
from dlfound.claims import judge
from dlfound.errors import ConfigError
from dlfound.results import RunDir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(path, experiment, claim_ids, quick=False, metrics=None):
    run_dir = RunDir(path)
    run_dir.write_config(
        {
            "experiment": experiment,
            "config": {"depth": 2},
            "seeds": [0, 1],
            "quick": quick,
            "environment": {"jax": "0.0", "backend": "cpu", "git_revision": None},
        }
    )
    claims = [
        judge(
            cid,
            f"claim {cid} of {experiment}",
            f"criterion {cid}",
            i % 2 == 0,
            f"evidence {cid}",
            quick=quick,
        )
        for i, cid in enumerate(claim_ids)
    ]
    run_dir.write_summary(
        {
            "experiment": experiment,
            "description": f"About {experiment}.",
            "config": {"depth": 2, "width": [4, 8]},
            "seeds": [0, 1],
            "quick": quick,
            "metrics": metrics or {},
            "claims": claims,
        }
    )
    return run_dir.path


def test_report_has_every_claim_config_metrics_figures_and_environment(tmp_path):
    metrics = {
        "acc": {"mean": 0.91234, "std": 0.01, "n": 5},
        "per_depth": {"2": 0.5, "4": float("nan")},
        "never": math.inf,
        "name": "relu",
    }
    path = make_run(tmp_path / "run", "exp", ["T10", "T2", "T1"], metrics=metrics)
    (path / "curve.png").write_bytes(PNG_MAGIC)
    text = report.render_report(path)
    assert (path / "REPORT.md").read_text() == text
    assert text.startswith(f"{report.SIGNATURE}\n# exp\n\nAbout exp.")
    table = [line for line in text.splitlines() if line.startswith("| T")]
    assert [line.split("|")[1].strip() for line in table] == ["T1", "T2", "T10"]
    assert "**reproduced**" in table[0] and "**not reproduced**" in table[1]
    assert "2 reproduced, 1 not reproduced, 0 inconclusive" in text
    assert "criterion T10" in text
    assert "`acc`: 0.912 ± 0.01 (n=5)" in text and "`per_depth.4`: nan" in text and "`never`: inf" in text
    assert "| width | [4, 8] |" in text and "![curve](curve.png)" in text and "| backend | cpu |" in text


def test_quick_report_says_its_verdicts_mean_nothing(tmp_path):
    text = report.render_report(make_run(tmp_path, "exp", ["F1"], quick=True))
    assert "verdicts not meaningful" in text and "**inconclusive**" in text


def test_report_of_a_directory_without_summary_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no summary.json"):
        report.render_report(tmp_path)
    with pytest.raises(ConfigError, match="no dlfound runs"):
        report.render_index(tmp_path)


def test_index_lists_every_claim_of_every_run_sorted_by_id(tmp_path):
    make_run(tmp_path / "b", "beta", ["T10", "F2"])
    make_run(tmp_path / "a", "alpha", ["T2", "T1"], quick=True)
    make_run(tmp_path / "nested" / "c", "gamma", ["F1"])
    out, skipped = report.render_index(tmp_path)
    assert out == tmp_path / "REPORT.md" and skipped == []
    text = out.read_text()
    ids = [
        line.split("|")[1].strip()
        for line in text.splitlines()
        if line.startswith("| F") or line.startswith("| T")
    ]
    assert ids == ["F1", "F2", "T1", "T2", "T10"]
    assert "alpha (quick)" in text and "[gamma](nested/c/REPORT.md)" in text and "3 runs" in text
    assert all((tmp_path / d / "REPORT.md").is_file() for d in ("a", "b", "nested/c"))


def test_claim_ids_sort_naturally():
    assert sorted(["T10", "T2", "F1", "T10a", "T1"], key=report.claim_sort_key) == [
        "F1",
        "T1",
        "T2",
        "T10",
        "T10a",
    ]


def test_dlfound_report_command(tmp_path, capsys):
    run = make_run(tmp_path / "runs" / "one", "exp", ["T1"])
    make_run(tmp_path / "runs" / "two", "exp2", ["T2"])
    assert dlfound_main.main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / "REPORT.md")
    assert dlfound_main.main(["report", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "runs" / "REPORT.md")


@pytest.mark.parametrize(
    "argv, needle",
    [
        ([], "required"),
        (["frob"], "invalid choice"),
        (["report"], "RUN_DIR"),
        (["report", "/no/such/dir"], "not a directory"),
        (["list", "--x"], "unrecognized arguments"),
    ],
)
def test_dlfound_bad_arguments_are_one_line_status_2(capsys, argv, needle):
    assert dlfound_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err


def test_dlfound_list_reads_docstrings_without_importing(tmp_path, capsys, monkeypatch):
    package = tmp_path / "experiments"
    package.mkdir()
    (package / "__init__.py").write_text('"""Experiments."""\n')
    (package / "alpha2000_thing.py").write_text(
        '"""Alpha (2000): a claim.\n\nMore."""\nraise RuntimeError("imported")\n'
    )
    (package / "_helper.py").write_text('"""Private."""\n')
    fake = types.ModuleType(catalog.PACKAGE)
    fake.__path__ = [str(package)]
    monkeypatch.setattr(catalog, "package", lambda: fake)
    assert dlfound_main.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "alpha2000_thing  Alpha (2000): a claim." and "dlfound run NAME" in lines[-1]
    assert len(lines) == 3


def test_plots_write_pngs_and_leave_no_open_figures(tmp_path):
    rng = np.random.default_rng(0)
    before = plt.get_fignums()
    mean = rng.random((2, 3))
    mean[0, 0] = np.nan
    paths = [
        plots.heatmap(
            tmp_path / "h.png", mean, rng.random((2, 3)), ["a", "b"], [1, 2, 3], "heat", fmt="{:.2f}"
        ),
        plots.curves_with_bands(
            tmp_path / "c.png",
            np.arange(5),
            {"relu": rng.random((3, 5)) + 0.1, "dead": np.full((3, 5), np.nan)},
            "step",
            "loss",
            "curves",
            logy=True,
        ),
        plots.lines(
            tmp_path / "l.png",
            [1, 2, 4],
            {"a": rng.random((3, 3)), "b": rng.random(3)},
            "width",
            "error",
            "lines",
            logx=True,
        ),
        plots.image_grid(tmp_path / "i.png", rng.normal(size=(5, 4, 4)), "weights"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert plt.get_fignums() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "h.png", "i.png", "l.png"]
    with pytest.raises(ValueError, match="N x H x W"):
        plots.image_grid(tmp_path / "bad.png", np.zeros((4, 4)), "bad")


def _captured(monkeypatch):
    """Replaces the PNG writer with one that keeps the figure, to inspect what was drawn."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    return figures


def test_one_colour_per_activation_log2_depths_targets_and_labelled_colour_bars(monkeypatch, tmp_path):
    figures = _captured(monkeypatch)
    depths = np.array([1, 2, 4, 8, 16])
    runs = {"tanh": np.ones((3, 5)), "relu": np.full((3, 5), 2.0)}
    plots.lines(tmp_path / "a.png", depths, runs, "hidden layers", "y", "t", logx=True, highlight=(4, 8))
    plots.curves_with_bands(tmp_path / "b.png", np.arange(5), {"relu": np.ones((3, 5)), "tanh": np.ones((3, 5))},
                            "step", "acc", "t", hlines={"target 60%": 0.6})
    plots.heatmap(tmp_path / "c.png", np.eye(2), None, ["a", "b"], ["c", "d"], "t", cbar_label="accuracy")
    lines_ax, curves_ax, heat = (f.axes[0] for f in figures)
    drawn = {c.get_label(): c.get_children()[0].get_color() for c in lines_ax.containers}
    curves = {l.get_label().split()[0]: l.get_color() for l in curves_ax.get_lines() if "(n=" in l.get_label()}
    assert drawn == curves == {"tanh": plots.ACTIVATION_COLOURS["tanh"], "relu": plots.ACTIVATION_COLOURS["relu"]}
    assert lines_ax.get_xscale() == "log" and lines_ax.xaxis.get_transform().base == 2
    assert [t.get_text() for t in lines_ax.get_xticklabels()] == ["1", "2", "4", "8", "16"]
    assert "error bars ±1 std" in lines_ax.get_title() and "shaded" in lines_ax.get_title()
    assert any(l.get_label() == "target 60%" and l.get_ydata()[0] == 0.6 for l in curves_ax.get_lines())
    assert figures[2].axes[1].get_ylabel() == "accuracy"


def test_every_activation_has_its_own_colour():
    from dlfound import activations

    assert set(plots.ACTIVATION_COLOURS) == set(activations.names())
    assert len(set(plots.ACTIVATION_COLOURS.values())) == len(plots.ACTIVATION_COLOURS)
    assert plots.colour("relu (n=5)") == plots.colour("relu") and plots.colour("logistic regression") is None


def test_histogram_bins_of_grid_values_hold_the_same_number_of_grid_points():
    rng = np.random.default_rng(0)
    accuracy = rng.integers(600, 700, size=500) / 1000  # accuracies on 1000 test examples
    edges = plots.grid_bins(accuracy, 1 / 1000, bins=40)
    points = np.arange(600, 700) / 1000
    counts = np.histogram(points, edges)[0]
    assert len(set(counts[:-1].tolist())) == 1 and counts[-1] <= counts[0]  # the last bin may be cut short
    assert np.histogram(accuracy, edges)[0].sum() == accuracy.size
    assert np.all(np.abs((edges[:, None] - points[None, :]) * 1000) > 0.4)  # no edge on a grid point
