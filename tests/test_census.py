"""The MNIST-1D census: its arithmetic, and a quick run's record of the claim with its intervals."""

import json
import math

import pytest

from experiments import mnist1d_census as census


@pytest.mark.parametrize("fraction, seeds", [(0.5, 1), (0.9, 1), (0.1, 7), (0.01, 69), (0.0, math.inf)])
def test_best_of_k_seeds_reaches_the_target_with_probability_one_half(fraction, seeds):
    assert census.best_of(fraction) == seeds
    if 0 < fraction < 0.5:  # k is the smallest such count
        assert 1 - (1 - fraction) ** seeds >= 0.5 > 1 - (1 - fraction) ** (seeds - 1)


def test_a_quick_census_records_the_distribution_and_both_intervals(tmp_path):
    out = tmp_path / "census"
    assert census.EXPERIMENT.main(["--quick", "--seeds", "12", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    (claim,) = summary["claims"]
    assert claim["id"] == "T13" and claim["verdict"] == "inconclusive"  # quick: never a verdict
    assert [e["seeds"] for e in claim["effects"]] == [12, 12]
    assert all(e["low"] <= e["estimate"] <= e["high"] for e in claim["effects"])
    metrics = summary["metrics"]
    assert metrics["test_accuracy"]["n"] == 12
    assert set(metrics["quantiles"]) == set(map(str, census.QUANTILES))
    assert (out / "test_accuracy_census.png").is_file()
