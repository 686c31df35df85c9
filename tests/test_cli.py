"""The shared experiment command line, driven with a fake experiment whose run() trains nothing."""

from __future__ import annotations

import dataclasses

import os
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlfound import cli, files, results
from dlfound.claims import judge
from dlfound.config import Config, field_names
from dlfound.errors import ConfigError

SUMMARY_KEYS = {"experiment", "description", "config", "seeds", "quick", "axes", "metrics", "claims"}


class Recorder:
    """A fake `Experiment.run`: remembers its contexts and returns claims computed from them."""

    def __init__(self, fail: Exception | None = None):
        self.contexts = []
        self.fail = fail

    def __call__(self, ctx: cli.Context) -> dict:
        self.contexts.append(ctx)
        if self.fail is not None:
            raise self.fail
        metrics = {"depth": ctx.cfg.depth, "acc": {"mean": 0.5, "std": 0.1, "n": len(ctx.seeds)}}
        verdicts = [
            judge(
                "T2",
                "second claim",
                "depth >= 2",
                ctx.cfg.depth >= 2,
                f"depth {ctx.cfg.depth}",
                {"depth": ctx.cfg.depth},
                quick=ctx.quick,
            ),
            judge("T1", "first | claim", "always", True, "fixed", quick=ctx.quick),
        ]
        return {"metrics": metrics, "claims": verdicts}


def make_experiment(run=None, name="fake") -> cli.Experiment:
    return cli.Experiment(
        name=name,
        description="A fake experiment.\n\nMore text.",
        base=Config(depth=3, width=16, num_epochs=4),
        quick=cli.Overrides(config={"num_epochs": 1, "width": 4}),
        default_seeds=3,
        run=run or Recorder(),
    )


def run_main(capsys, argv, run=None, name="fake"):
    experiment = make_experiment(run, name)
    status = cli.main(experiment, argv)
    out, err = capsys.readouterr()
    return status, out, err, experiment.run


def assert_one_line_error(status, err, *needles):
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_run_writes_config_summary_and_report(tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, _, run = run_main(capsys, ["--out", str(out), "--quiet"])
    assert status == 0
    ctx = run.contexts[0]
    assert ctx.cfg == Config(depth=3, width=16, num_epochs=4) and ctx.seeds == [0, 1, 2]
    assert ctx.quick is False and ctx.quiet is True and ctx.run_dir.path == out.absolute()
    summary = files.read_json(out / "summary.json")
    assert set(summary) == SUMMARY_KEYS
    assert summary["experiment"] == "fake" and summary["description"] == "A fake experiment."
    assert (
        summary["config"] == ctx.cfg.to_dict() and summary["seeds"] == [0, 1, 2] and summary["quick"] is False
    )
    assert summary["metrics"]["depth"] == 3 and [c["id"] for c in summary["claims"]] == ["T2", "T1"]
    stored = files.read_json(out / "config.json")
    assert (
        stored["experiment"] == "fake"
        and stored["config"] == summary["config"]
        and stored["seeds"] == [0, 1, 2]
    )
    assert {"jax", "backend", "device_count", "git_revision"} <= set(stored["environment"])
    assert stdout.splitlines() == [
        "[T2] reproduced: second claim -- depth 3",
        "[T1] reproduced: first | claim -- fixed",
    ]
    report = (out / "REPORT.md").read_text()
    assert "| T1 |" in report and "| T2 |" in report and "first \\| claim" in report


def test_quick_dataset_set_and_seeds_build_the_config(tmp_path, capsys):
    status, stdout, _, run = run_main(
        capsys,
        [
            "--out",
            str(tmp_path),
            "--quick",
            "--seeds",
            "2",
            "--dataset",
            "xor",
            "--set",
            "depth=1",
            "--set",
            "activation=tanh",
        ],
    )
    assert status == 0
    ctx = run.contexts[0]
    assert ctx.cfg == Config(depth=1, width=4, num_epochs=1, dataset="xor", activation="tanh")
    assert ctx.seeds == [0, 1] and ctx.quick is True
    assert all(c["verdict"] == "inconclusive" for c in files.read_json(tmp_path / "summary.json")["claims"])
    assert "quick run (tiny budget; verdict not meaningful)" in stdout


@pytest.mark.parametrize("text, seeds", [("3", [0, 1, 2]), ("5-9", [5, 6, 7, 8, 9]), ("2:4", [2, 3]),
                                         ("7-7", [7]), ("4294967295-4294967295", [2**32 - 1])])
def test_seed_ranges(tmp_path, capsys, text, seeds):
    status, _, _, run = run_main(capsys, ["--out", str(tmp_path), "--quick", "--seeds", text])
    assert status == 0 and run.contexts[0].seeds == seeds
    assert files.read_json(tmp_path / "config.json")["seeds"] == seeds


@pytest.mark.parametrize("text", ["9-5", "3:3", "5-", "-5-9", "1:2:3", "0-4294967296", "a-b"])
def test_bad_seed_ranges(tmp_path, capsys, text):
    status, _, err, _ = run_main(capsys, ["--out", str(tmp_path), "--quick", f"--seeds={text}"])
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert f"invalid --seeds {text!r}" in err and "A-B (A to B inclusive)" in err


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--seeds", "0"], ["--seeds '0'", "N from 1"]),
        (["--seeds", "abc"], ["--seeds 'abc'", "A-B (A to B inclusive)"]),
        (["--seeds", "-2"], ["--seeds '-2'"]),
        (["--set", "colour=red"], ["'colour'", "valid fields: dataset, depth"]),
        (["--set", "depth=abc"], ["depth='abc'", "an integer"]),
        (["--set", "learning_rate=fast"], ["learning_rate='fast'", "a number"]),
        (["--set", "residual=maybe"], ["residual='maybe'", "true or false"]),
        (["--set", "depth=-1"], ["depth=-1", "from 0 to 1024"]),
        (["--set", "depth"], ["'depth'", "key=value"]),
        (["--dataset", "no_such_data"], ["'no_such_data'", "mnist1d"]),
        (["--frobnicate"], ["--frobnicate"]),
        (["--seeds"], ["--seeds", "expected one argument"]),
    ],
)
def test_bad_input_is_one_line_and_status_2_before_run(tmp_path, capsys, argv, needles):
    status, _, err, run = run_main(capsys, ["--out", str(tmp_path / "run"), *argv])
    assert_one_line_error(status, err, *needles)
    assert run.contexts == [] and not (tmp_path / "run").exists()


def test_config_error_inside_run_is_one_line(tmp_path, capsys):
    failing = Recorder(
        fail=ConfigError("invalid batch_size=4096; allowed: at most\nthe 4000 training examples")
    )
    status, _, err, _ = run_main(capsys, ["--out", str(tmp_path)], run=failing)
    assert_one_line_error(status, err, "batch_size=4096", "at most the 4000 training examples")


def test_out_under_a_file_is_refused_before_run(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    status, _, err, run = run_main(capsys, ["--out", str(tmp_path / "file" / "run")])
    assert_one_line_error(status, err, "not writable", "choose another --out")
    assert run.contexts == []


def test_read_only_out_is_refused_before_run(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: chmod does not make the directory read-only")
        status, _, err, run = run_main(capsys, ["--out", str(ro)])
        assert_one_line_error(status, err, "not writable", str(ro))
        assert run.contexts == []
    finally:
        ro.chmod(0o755)


def test_locked_out_is_refused_with_the_holders_pid(tmp_path, capsys):
    holder_script = textwrap.dedent("""
        import sys, time
        from dlfound.results import RunDir
        with RunDir(sys.argv[1]).lock():
            print("locked", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        status, _, err, run = run_main(capsys, ["--out", str(tmp_path)])
        assert_one_line_error(status, err, f"in use by another dlfound process (pid {holder.pid})")
        assert run.contexts == []
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert run_main(capsys, ["--out", str(tmp_path)])[0] == 0


def test_from_reruns_the_same_config_seeds_and_quick_flag(tmp_path, capsys):
    first = tmp_path / "first"
    assert run_main(capsys, ["--out", str(first), "--quick", "--seeds", "2", "--set", "depth=5"])[0] == 0
    status, _, _, run = run_main(capsys, ["--from", str(first)])
    assert status == 0
    ctx = run.contexts[0]
    assert ctx.run_dir.path == (tmp_path / "first-rerun").absolute()
    assert ctx.cfg == Config(depth=5, width=4, num_epochs=1) and ctx.seeds == [0, 1] and ctx.quick is True
    old, new = (files.read_json(d / "config.json") for d in (first, tmp_path / "first-rerun"))
    assert {k: old[k] for k in results.IDENTITY_KEYS} == {k: new[k] for k in results.IDENTITY_KEYS}


def test_from_another_experiment_or_a_non_run_is_refused(tmp_path, capsys):
    assert run_main(capsys, ["--out", str(tmp_path / "a")])[0] == 0
    status, _, err, _ = run_main(
        capsys, ["--from", str(tmp_path / "a"), "--out", str(tmp_path / "b")], name="other"
    )
    assert_one_line_error(status, err, "'fake'", "not 'other'")
    status, _, err, _ = run_main(capsys, ["--from", str(tmp_path / "nothing")])
    assert_one_line_error(status, err, "not a run directory")


def test_a_different_run_in_the_same_out_needs_overwrite(tmp_path, capsys):
    assert run_main(capsys, ["--out", str(tmp_path)])[0] == 0
    assert run_main(capsys, ["--out", str(tmp_path)])[0] == 0  # same run: resumes
    status, _, err, _ = run_main(capsys, ["--out", str(tmp_path), "--set", "depth=4"])
    assert_one_line_error(status, err, "different run", "config.depth", "--overwrite")
    assert run_main(capsys, ["--out", str(tmp_path), "--set", "depth=4", "--overwrite"])[0] == 0
    assert files.read_json(tmp_path / "summary.json")["config"]["depth"] == 4


def test_default_out_is_under_runs_or_dlfound_runs_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLFOUND_RUNS_DIR", raising=False)
    assert run_main(capsys, [])[0] == 0
    assert (tmp_path / "runs" / "fake" / "summary.json").is_file()
    monkeypatch.setenv("DLFOUND_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert run_main(capsys, [])[0] == 0
    assert (tmp_path / "elsewhere" / "fake" / "summary.json").is_file()


@pytest.mark.parametrize(
    "env, argv, quiet", [({}, [], False), ({}, ["--quiet"], True), ({"CI": "1"}, [], True)]
)
def test_quiet_from_flag_or_ci(tmp_path, capsys, monkeypatch, env, argv, quiet):
    monkeypatch.delenv("CI", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    status, _, err, run = run_main(capsys, ["--out", str(tmp_path), *argv])
    assert status == 0 and run.contexts[0].quiet is quiet
    assert (err == "") is quiet


def test_help_returns_0(capsys):
    status, stdout, _, _ = run_main(capsys, ["--help"])
    assert status == 0 and "A fake experiment." in stdout and "--from" in stdout


def test_run_must_return_metrics_and_claims(tmp_path, capsys):
    with pytest.raises(TypeError, match="must return"):
        cli.main(make_experiment(run=lambda ctx: {"claim": []}), ["--out", str(tmp_path)])


def test_script_runs_only_as_main_and_reads_sys_argv(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prog", "--out", str(tmp_path), "--seeds", "1"])
    cli.script("experiments.fake", make_experiment())  # imported, not executed: nothing runs
    assert not (tmp_path / "summary.json").exists()
    with pytest.raises(SystemExit) as done:
        cli.script("__main__", make_experiment())
    assert done.value.code == 0
    assert files.read_json(tmp_path / "summary.json")["seeds"] == [0]


def test_quick_changes_config_axes_and_settings_in_one_place(tmp_path):
    run = Recorder()
    experiment = dataclasses.replace(
        make_experiment(run), axes={"depth": (1, 2, 4)}, settings={"steps": 1000, "widths": (8, 16)},
        quick=cli.Overrides(config={"num_epochs": 1}, axes={"depth": (1,)}, settings={"steps": 10}))
    assert experiment.main(["--out", str(tmp_path / "full")]) == 0
    assert experiment.main(["--out", str(tmp_path / "quick"), "--quick"]) == 0
    full, quick = run.contexts
    assert (full.cfg.num_epochs, full.axes, full.settings) == (4, {"depth": (1, 2, 4)},
                                                                {"steps": 1000, "widths": (8, 16)})
    assert (quick.cfg.num_epochs, quick.axes, quick.settings) == (1, {"depth": (1,)},
                                                                  {"steps": 10, "widths": (8, 16)})



def test_a_declared_dataset_adapts_the_budget_before_quick_and_set(tmp_path):
    run = Recorder()
    experiment = dataclasses.replace(
        make_experiment(run), axes={"depth": (1, 2, 4)}, settings={"steps": 1000},
        datasets={"moons": cli.Overrides(config={"num_epochs": 9, "width": 32}, axes={"depth": (2,)},
                                         settings={"steps": 500})})
    out = str(tmp_path / "run")
    assert experiment.main(["--out", out + "1", "--dataset", "moons"]) == 0
    assert experiment.main(["--out", out + "2", "--dataset", "moons", "--quick", "--set", "width=8"]) == 0
    assert experiment.main(["--out", out + "3"]) == 0
    moons, moons_quick, base = run.contexts
    assert (moons.cfg.dataset, moons.cfg.num_epochs, moons.cfg.width) == ("moons", 9, 32)
    assert (moons.axes, moons.settings) == ({"depth": (2,)}, {"steps": 500})
    assert (moons_quick.cfg.num_epochs, moons_quick.cfg.width) == (1, 8)  # --quick, then --set, win
    assert (base.cfg.dataset, base.cfg.num_epochs, base.axes["depth"]) == ("mnist1d", 4, (1, 2, 4))
    rerun = experiment.main(["--from", out + "1", "--out", out + "4"])
    assert rerun == 0 and run.contexts[-1].cfg == moons.cfg and run.contexts[-1].settings == moons.settings

settable = st.sampled_from(field_names()) | st.text(min_size=1, max_size=8)
garbage = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=settable, value=garbage)
def test_garbage_set_values_never_give_a_traceback(capsys, key, value):
    with tempfile.TemporaryDirectory() as out:
        status, _, err, run = run_main(capsys, ["--out", out, "--quiet", "--set", f"{key}={value}"])
    if status == 2:
        assert_one_line_error(status, err)
        assert run.contexts == []
    else:
        assert status == 0 and len(run.contexts) == 1


def _gridded(run) -> cli.Experiment:
    return dataclasses.replace(make_experiment(run), axes={"depth": (1, 2, 4), "activation": ("relu", "tanh")},
                               quick=cli.Overrides(config={"num_epochs": 1, "width": 4},
                                               axes={"depth": (1,), "activation": ("relu",)}))


def test_grid_replaces_an_axis_and_is_part_of_the_run(tmp_path, capsys):
    run = Recorder()
    assert cli.main(_gridded(run), ["--out", str(tmp_path / "a"), "--grid", "depth=2,8"]) == 0
    assert run.contexts[0].axes == {"depth": (2, 8), "activation": ("relu", "tanh")}
    assert files.read_json(tmp_path / "a" / "config.json")["axes"] == {"depth": [2, 8], "activation": ["relu", "tanh"]}
    assert cli.main(_gridded(run), ["--out", str(tmp_path / "b"), "--quick", "--set", "width=8"]) == 0
    assert run.contexts[1].axes == {"depth": (1,), "activation": ("relu",)} and run.contexts[1].user_set == ("width",)
    capsys.readouterr()
    assert cli.main(_gridded(run), ["--out", str(tmp_path / "a")]) == 2  # another grid is another run
    assert "axes.depth is [2, 8] there, [1, 2, 4] now" in capsys.readouterr().err
    assert cli.main(_gridded(run), ["--from", str(tmp_path / "a"), "--out", str(tmp_path / "c")]) == 0
    assert run.contexts[-1].axes["depth"] == (2, 8)


@pytest.mark.parametrize("argv, needle", [
    (["--set", "depth=4"], "depth is a grid axis of fake, which sweeps it; use --grid depth=V1,V2"),
    (["--grid", "dpeth=4"], "fake has no grid axis 'dpeth'; its axes: depth, activation"),
    (["--grid", "depth=-1"], "invalid depth=-1"),
    (["--grid", "activation=relu,swishy"], "unknown activation 'swishy'"),
    (["--grid", "depth="], "expected depth=V1,V2"),
    (["--grid", "depth=1", "--grid", "depth=2"], "--grid depth is given twice"),
])
def test_bad_grids_are_one_line(tmp_path, capsys, argv, needle):
    status = cli.main(_gridded(Recorder()), ["--out", str(tmp_path / "run"), *argv])
    assert_one_line_error(status, capsys.readouterr().err, needle)
    assert not (tmp_path / "run").exists()


def test_grid_on_an_experiment_without_axes(tmp_path, capsys):
    status = cli.main(make_experiment(), ["--out", str(tmp_path / "run"), "--grid", "depth=1"])
    assert_one_line_error(status, capsys.readouterr().err, "fake has no grid axes to --grid")
