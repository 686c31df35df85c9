"""Learning-rate tuning picks by the validation split and reports the test split at the pick."""

import numpy as np

from dlfound.table import Table
from dlfound.tuning import at_grid_edge, log_spaced, pick, tuned_final


def _rows(values: dict) -> list[dict]:
    """Final-evaluation rows: {(rate, seed): (val, test)} for one cell."""
    rows = []
    for model, ((rate, seed), (val, test)) in enumerate(values.items()):
        rows.append({"cell": "depth=2", "depth": 2, "model": model, "seed": seed, "learning_rate": rate,
                     "status": "ok", "eval": 0, "step": 100, "val_accuracy": val, "test_accuracy": test})
    return rows


def test_log_spaced_rates_are_geometric_and_include_the_ends():
    rates = log_spaced(1e-4, 1e-2, 5)
    assert rates == (1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2)


def test_validation_picks_and_test_reports():
    # rate 0.1 is best on validation, 0.01 would be best on test: the test split must not decide
    table = Table(_rows({(0.01, 0): (0.5, 0.9), (0.01, 1): (0.5, 0.9),
                         (0.1, 0): (0.8, 0.6), (0.1, 1): (0.7, 0.7)}))
    rate, test = tuned_final(table, "test_accuracy", (0.01, 0.1), depth=2)
    assert rate == 0.1 and np.allclose(np.sort(test), [0.6, 0.7])


def test_a_diverged_seed_makes_its_rate_the_worst():
    table = Table(_rows({(0.01, 0): (0.6, 0.6), (0.01, 1): (0.6, 0.6),
                         (1.0, 0): (0.99, 0.9), (1.0, 1): (float("nan"), float("nan"))}))
    assert pick(table, (0.01, 1.0), depth=2) == 0.01
    assert pick(table, (0.01, 1.0), select_by="val_accuracy", higher_is_better=False, depth=2) == 0.01


def test_a_pick_at_either_end_of_the_grid_is_at_its_edge():
    rates = log_spaced(1e-4, 1e-2, 5)
    assert at_grid_edge(1e-4, rates) and at_grid_edge(1e-2, rates)
    assert not at_grid_edge(1e-3, rates)
    assert not at_grid_edge(1e-3, (1e-3,))  # a single rate is not a grid
