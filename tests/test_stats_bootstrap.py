"""The paired bootstrap's intervals cover a known effect about as often as they claim, and a verdict
from too few seeds is inconclusive."""

import numpy as np
import pytest

from dlfound.stats import interval_verdict, paired_bootstrap


def _difference(values):
    return values["a"].mean(-1) - values["b"].mean(-1)


def test_the_interval_covers_a_known_paired_effect_about_95_percent_of_the_time():
    """Cells a and b share each seed's luck (a large common term) and differ by 0.3 on average."""
    rng = np.random.default_rng(0)
    trials, covered, widths = 400, 0, []
    for trial in range(trials):
        luck = rng.normal(0, 5.0, size=20)  # shared by both cells: pairing must remove it
        a, b = luck + 0.3 + rng.normal(0, 1, 20), luck + rng.normal(0, 1, 20)
        interval = paired_bootstrap(_difference, {"a": a, "b": b}, resamples=2000, seed=trial)
        covered += interval["low"] <= 0.3 <= interval["high"]
        widths.append(interval["high"] - interval["low"])
    assert 0.92 <= covered / trials <= 0.98
    assert np.median(widths) < 2.0  # unpaired, the shared luck (sd 5) would make it about 9


def test_a_verdict_needs_enough_seeds():
    """A real gain of half a noise sd: 3 seeds never decide it (however clear they look), 200 do."""
    rng = np.random.default_rng(1)
    gain = lambda n: {"a": 0.5 + rng.normal(0, 1, n), "b": rng.normal(0, 1, n)}  # noqa: E731
    clear = {"a": [3.0, 3.1, 2.9], "b": [0.0, 0.1, -0.1]}
    assert interval_verdict(paired_bootstrap(_difference, clear), 0.0) == "inconclusive"
    nine = {name: values * 3 for name, values in clear.items()}  # the same values from 9 seeds
    assert interval_verdict(paired_bootstrap(_difference, nine), 0.0) == "reproduced"
    assert interval_verdict(paired_bootstrap(_difference, gain(200)), 0.0) == "reproduced"
    assert interval_verdict(paired_bootstrap(_difference, gain(200)), 1.0) == "not reproduced"
    lower = paired_bootstrap(_difference, gain(200))
    assert interval_verdict(lower, 1.0, higher_passes=False) == "reproduced"
    assert interval_verdict(paired_bootstrap(_difference, gain(1)), 0.0) == "inconclusive"


def test_unpaired_or_empty_samples_are_refused():
    with pytest.raises(ValueError, match="same, non-zero number of seeds"):
        paired_bootstrap(_difference, {"a": [1, 2, 3], "b": [1, 2]})


def test_a_statistic_undefined_in_every_resample_gives_no_interval_and_no_warning():
    import warnings

    samples = {"a": np.full(8, np.nan), "b": np.ones(8)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interval = paired_bootstrap(lambda v: v["a"].mean(-1) - v["b"].mean(-1), samples)
    assert np.isnan(interval["low"]) and np.isnan(interval["high"])
    assert interval_verdict(interval, 0.0) == "inconclusive"
