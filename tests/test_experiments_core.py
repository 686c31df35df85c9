"""The main sweep and the seeds' MNIST recipe run end to end in --quick mode; clear data errors."""

import json

import pytest

from dlfound.data import sources
from experiments import depth_activation, mnist_mlp


def _summary(path):
    return json.loads((path / "summary.json").read_text())


def test_depth_activation_quick_writes_summary_report_and_plots(tmp_path):
    argv = ["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]
    assert depth_activation.EXPERIMENT.main(argv) == 0
    summary = _summary(tmp_path)
    assert summary["experiment"] == "depth_activation" and summary["quick"] is True
    assert {c["id"] for c in summary["claims"]} == {"T1", "T2"}
    assert all(c["verdict"] == "inconclusive" for c in summary["claims"])  # quick verdicts mean nothing
    inits = {"identity": "glorot", "sigmoid": "glorot", "relu": "he"}
    assert summary["metrics"]["init_by_activation"] == inits
    assert [[e["name"] for e in c["effects"]] for c in summary["claims"]] == [
        ["mean sigmoid / min(1, mean ReLU) grad ratio, depth 2",
         "median sigmoid grad ratio, depth 2 / depth 1"],
        ["relu - sigmoid test accuracy, depth 2"],
        ["|identity - logistic| test accuracy, depth 1", "|identity - logistic| test accuracy, depth 2"],
        ["median steps sigmoid / ReLU, depth 2"]]
    picked = summary["metrics"]["picked_learning_rate"]
    assert set(picked) == {"logistic"} | {f"{a}/depth={d}" for a in inits for d in (1, 2)}
    assert set(picked.values()) <= set(depth_activation.RATES) and len(depth_activation.RATES) >= 5
    for name in ("REPORT.md", "test_accuracy_heatmap.png", "learning_rate_heatmap.png",
                 "gradient_ratio_vs_depth.png", "results.jsonl"):
        assert (tmp_path / name).is_file()
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {r["init"] for r in rows if r.get("activation") == "relu"} == {"he"}


def test_mnist_mlp_quick_on_mnist1d(tmp_path):
    assert mnist_mlp.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    summary = _summary(tmp_path)
    assert [c["id"] for c in summary["claims"]] == ["T12"]
    metrics = summary["metrics"]
    assert len(metrics["test_accuracy_by_seed"]) == 2
    assert metrics["test_accuracy"] == pytest.approx(sum(metrics["test_accuracy_by_seed"]) / 2)
    assert (tmp_path / "first_layer_weights.png").is_file()
    assert [e["name"] for e in summary["claims"][0]["effects"]] == ["MLP - logistic regression test accuracy"]


def test_missing_mnist_names_the_files_and_the_directory(tmp_path, monkeypatch, capsys):
    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr(sources, "fetch", offline)
    monkeypatch.setenv("DLFOUND_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DLFOUND_DATA_DIR", str(tmp_path / "manual"))
    status = mnist_mlp.EXPERIMENT.main(["--dataset", "mnist", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" not in err
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in err
    assert str(tmp_path / "manual" / "mnist") in err


@pytest.mark.parametrize("argv, needle", [
    (["--set", "activation=rleu"], "rleu"),
    (["--set", "depth=-1"], "depth"),
    (["--set", "learning_rate=0"], "learning_rate"),
    (["--set", "batch_size=100000"], "batch_size"),
    (["--set", "colour=blue"], "colour"),
    (["--seeds", "0"], "--seeds"),
])
def test_bad_values_exit_2_with_one_line(tmp_path, capsys, argv, needle):
    status = depth_activation.EXPERIMENT.main([*argv, "--quick", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0]
    assert not (tmp_path / "results.jsonl").exists()


def test_benchmark_quick_reports_every_measure(tmp_path):
    from experiments import benchmark

    assert benchmark.EXPERIMENT.main(["--quick", "--out", str(tmp_path), "--quiet"]) == 0
    metrics = _summary(tmp_path)["metrics"]
    for speed in (metrics["one_core"], metrics["all_devices"]):
        assert speed["epoch_s"]["dlfound"] > 0 and 0 < speed["fraction_of_matmul_peak"] < 2
        assert speed["us_per_step"] == pytest.approx(speed["epoch_s"]["dlfound"] / (2048 // 64) * 1e6)
    assert metrics["measured_peaks"]["flops"] > 0 and metrics["measured_peaks"]["bytes_per_s"] > 0
    curve = metrics["saturation"]
    assert set(curve) == {"1", "8", "32"} and all(v["models_per_s"] > 0 for v in curve.values())
    assert 0 < curve["32"]["fraction_of_flops_peak"] < 1 and 0 < curve["32"]["fraction_of_bytes_peak"] < 1
    policies = metrics["main_sweep_compile"]
    assert policies["none"]["programs"] == 3  # the baseline and two cells
    assert policies["all"]["programs"] == 2  # the baseline, then both cells in one
    assert policies["none"]["compile_s"] > policies["all"]["compile_s"] > 0
    assert metrics["peak_memory_mb"] > 0
    assert benchmark.epoch_flops(64 * 10) == 10 * 64 * (6 * (784 * 128 + 128 * 64 + 64 * 10) - 2 * 784 * 128)


def test_accelerator_check_quick_measures_everything_it_reports(tmp_path):
    """The one-command GPU check runs on a CPU too: cold runs in fresh processes, then the curve."""
    from experiments import accelerator_check

    assert accelerator_check.EXPERIMENT.main(["--quick", "--out", str(tmp_path), "--quiet"]) == 0
    metrics = _summary(tmp_path)["metrics"]
    for run in ("main_sweep", "seeds100"):
        assert "error" not in metrics[run] and metrics[run]["seconds"] > 0
        assert metrics[run]["programs"] == 3  # on a CPU: the baseline, then one program per depth
    assert set(metrics["benchmark"]["saturation"]) == {"1", "8"}
    assert metrics["benchmark"]["seed_mlp"]["us_per_step"] > 0
    report = (tmp_path / "CHECK.md").read_text()
    assert "| main sweep, cold |" in report and "| MNIST-1D models/s at 4096 models | n/a |" in report
