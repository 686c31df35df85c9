"""Results a researcher can analyse: one tidy table per run, exports, and files the group can read."""

from __future__ import annotations

import stat

import pytest

from dlfound import __main__ as dlfound_main
from dlfound import files, results
from dlfound.config import Config
from dlfound.data import load
from dlfound.errors import ConfigError
from dlfound.results import RunDir
from dlfound.sweep import Sweep, run_sweep

pandas = pytest.importorskip("pandas")
BASE = Config(dataset="moons", depth=2, width=4, batch_size=32, num_epochs=2, eval_every_epochs=1,
              optimizer="sgd", learning_rate=0.1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("analysis") / "run"
    run_dir = RunDir(path)
    run_dir.write_config({"experiment": "api", "config": BASE.to_dict(), "seeds": [0, 1], "quick": False})
    table = run_sweep(Sweep(BASE, {"activation": ("relu", "tanh")}, {"learning_rate": (0.05, 0.2)}),
                      load("moons"), [0, 1], run_dir, quiet=True)
    return path, table


def test_one_row_per_model_and_evaluation_with_config_and_axis_columns(run):
    path, table = run
    frame = results.load(path)
    assert len(frame) == len(table.rows) == 2 * 4 * 3  # cells x (seeds x rates) x evaluations
    assert "_done" not in frame and "rows" not in frame  # the cells' done markers are not data
    assert set(frame.activation) == {"relu", "tanh"} and set(frame.dataset) == {"moons"}
    assert set(frame.optimizer) == {"sgd"} and set(frame.depth) == {2}
    assert sorted(set(frame.learning_rate)) == [0.05, 0.2]  # the member's value, not the base config's
    for column in ("model", "seed", "eval", "step", "diverged_step"):
        assert frame[column].dtype == "int64", column
    assert {"grad_norm_0", "grad_norm_1", "grad_norm_2", "activation_std_1"} <= set(frame.columns)
    relu = frame[(frame.activation == "relu") & (frame["eval"] == 2)].sort_values("model")
    assert relu.test_accuracy.tolist() == table.final("test_accuracy", cell="activation=relu").tolist()


def test_export_to_csv_and_parquet(run, tmp_path, capsys):
    path, _ = run
    assert dlfound_main.main(["export", str(path)]) == 0
    written = path / "results.csv"
    assert capsys.readouterr().out.strip() == str(written)
    back = pandas.read_csv(written)
    assert back.shape == results.load(path).shape and back["step"].dtype == "int64"
    assert "results.csv" in RunDir(path).marker()["files"]
    pytest.importorskip("pyarrow")
    assert dlfound_main.main(["export", str(path), "--format", "parquet", "--output", str(tmp_path / "r.pq")]) == 0
    assert pandas.read_parquet(tmp_path / "r.pq").shape == back.shape


def test_bad_export_requests_are_one_line(run, tmp_path, capsys):
    path, _ = run
    for argv, needle, status in [(["export", str(path), "--format", "xlsx"], "valid choices: csv, parquet", 2),
                                 (["export", str(tmp_path / "none")], "holds no results.jsonl", 2)]:
        assert dlfound_main.main(argv) == status
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "none").exists()  # reading creates nothing
    with pytest.raises(ConfigError, match="holds no results.jsonl"):
        results.load(tmp_path)


def test_run_files_are_readable_as_the_umask_allows(run):
    path, _ = run
    expected = 0o666 & ~files.UMASK
    for name in (".dlfound-run", "config.json", "results.jsonl"):
        assert stat.S_IMODE((path / name).stat().st_mode) == expected, name
