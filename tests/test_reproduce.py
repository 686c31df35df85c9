"""`dlfound reproduce`: one table of every claim, resumable, with the datasets side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dlfound import cli, reproduce
from dlfound.claims import judge
from dlfound.config import Config
from dlfound.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _dlfound(*args):
    return subprocess.run([sys.executable, "-m", "dlfound", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=600)


def test_reproduce_runs_the_claims_experiment_writes_the_table_and_resumes(tmp_path):
    out = tmp_path / "repro"
    first = _dlfound("reproduce", "--only", "F2", "--quick", "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    state = json.loads((out / "reproduce.json").read_text())
    (run,) = state["runs"]
    assert run["experiment"] == "mcculloch1943_threshold_logic" and run["quick"] and run["exit"] == 0
    assert run["claims"] and all(c["id"] == "F2" for c in run["claims"])
    table = (out / "REPRODUCE.md").read_text()
    assert table.count("| F2: ") == len(run["claims"]) and "Quick runs" in table
    times = out / "wall_times" / "mcculloch1943_threshold_logic.json"
    recorded = dict(json.loads(times.read_text()), wall_seconds=123.0)
    times.write_text(json.dumps(recorded))
    again = _dlfound("reproduce", "--only", "F2", "--quick", "--out", str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(times.read_text())["wall_seconds"] == 123.0  # the time of the run that trained it
    assert "2.0 min" in (out / "REPRODUCE.md").read_text()


def test_an_unknown_claim_or_column_is_one_line_naming_the_valid_ones(tmp_path):
    bad = _dlfound("reproduce", "--only", "T99", "--out", str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "'T99'" in bad.stderr and "T1, T2" in bad.stderr
    column = _dlfound("reproduce", "--dataset", "cifar10", "--out", str(tmp_path))
    assert column.returncode == 2 and "fashion_mnist" in column.stderr and "'cifar10'" in column.stderr
    assert not list(tmp_path.iterdir())  # refused before anything ran


def _experiment(name, ids, datasets=()):
    return cli.Experiment(name=name, description="", base=Config(), run=lambda ctx: {}, default_seeds=1,
                          claim_ids=ids, paper=f"{name} (2000)",
                          datasets={d: cli.Overrides() for d in datasets})


def test_only_selects_every_experiment_judging_a_claim():
    found = [_experiment("a", ("T1", "T2")), _experiment("b", ("T1", "T4")), _experiment("c", ("F1",))]
    assert [e.name for e in reproduce.select(found, "T1")] == ["a", "b"]
    assert [e.name for e in reproduce.select(found, "F1, T4")] == ["b", "c"]
    assert reproduce.select(found, None) == found
    with pytest.raises(ConfigError, match="valid claim ids: F1, T1, T2, T4"):
        reproduce.select(found, "T3")


def _record(column, verdicts, exit=0, seconds=90.0):
    claims = [judge("T1", f"claim {i}", "c", {"r": True, "n": False, "i": None}[v], "e")
              for i, v in enumerate(verdicts)]
    return {"experiment": "a", "paper": "A (2000)", "column": column, "dataset": column, "seeds": 16,
            "quick": False, "wall_seconds": seconds, "exit": exit, "claims": claims}


def test_the_table_puts_the_datasets_side_by_side():
    lines = reproduce.table([_record("base", "rn"), _record("fashion_mnist", "ri", seconds=30.0)])
    assert "MNIST-1D / synthetic: verdict" in lines[0] and "fashion_mnist: verdict" in lines[0]
    first, second = lines[2:]
    assert first.count("**reproduced**") == 2 and "1.5 min" in first and "0.5 min" in first
    assert "**not reproduced**" in second and "**inconclusive**" in second
    failed = reproduce.table([_record("base", "r"), _record("fashion_mnist", "", exit=1)])
    assert "failed (exit 1)" in failed[2]


def test_the_header_sums_each_columns_times_and_names_the_revisions_runs_were_made_at(tmp_path):
    records = [dict(_record("base", "r", seconds=90.0), cpu_seconds=150.0, revision="aaa"),
               dict(_record("base", "r", seconds=30.0), experiment="b", cpu_seconds=30.0, revision="bbb+"),
               dict(_record("fashion_mnist", "r", seconds=600.0), cpu_seconds=900.0, revision="aaa")]
    assert reproduce.column_times(records) == ("MNIST-1D / synthetic 2.0 min (3.0 CPU min, 2 runs), "
                                               "fashion_mnist 10.0 min (15.0 CPU min, 1 runs)")
    text = reproduce.write(tmp_path, records)
    assert "Runs made at revision (runs): aaa (2), bbb+ (1)" in text


def test_the_readme_table_is_replaced_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{reproduce.README_BEGIN}\nold table\n{reproduce.README_END}\nafter\n")
    markdown = "# t\n\n2 verdicts from 1 runs: x.\n\nA verdict is ...\n\n| a | b |\n|---|---|\n"
    reproduce.update_readme(readme, markdown)
    text = readme.read_text()
    assert "old table" not in text and "| a | b |" in text and "2 verdicts from 1 runs" in text
    assert text.startswith("intro\n") and text.endswith(f"{reproduce.README_END}\nafter\n")
    readme.write_text("no markers\n")
    with pytest.raises(ConfigError, match="claims-table markers"):
        reproduce.update_readme(readme, markdown)


@pytest.mark.parametrize("quick", [False, True])
def test_every_declared_dataset_column_resolves_to_a_valid_run(quick):
    """Each experiment's declared budgets for other datasets are valid configs, grids and settings."""
    columns = [(e, d) for e in reproduce.declared() for d in e.datasets]
    assert {d for _, d in columns} >= {"fashion_mnist"}
    for experiment, dataset in columns:
        argv = ["--dataset", dataset] + (["--quick"] if quick else [])
        args = cli.build_parser(experiment).parse_args(argv)
        cfg, seeds, _, axes = cli.resolve(experiment, args)
        assert cfg.dataset == dataset and len(seeds) == experiment.default_seeds
        overrides = experiment.datasets[dataset]
        for name, value in overrides.config.items():
            if not (quick and name in experiment.quick.config):
                assert getattr(cfg, name) == value, (experiment.name, name)
        assert set(overrides.settings) <= set(experiment.settings), experiment.name
        assert set(overrides.axes) <= set(axes), experiment.name
