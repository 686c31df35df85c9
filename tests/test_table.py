"""Results addressed by axes: a Table selects one cell by its axis and member values."""

from __future__ import annotations

import numpy as np
import pytest

from dlfound.sweep import cell_id
from dlfound.table import Table


def _rows() -> list[dict]:
    """Two depths x two activations, 2 seeds x 2 learning rates, 3 evaluations."""
    rows = []
    for depth in (4, 8):
        for activation in ("relu", "tanh"):
            axes = {"depth": depth, "activation": activation}
            for model, (seed, lr) in enumerate((s, lr) for s in (0, 1) for lr in (0.01, 0.1)):
                for t in range(3):
                    acc = depth / 10 + (activation == "relu") * 0.1 + seed * 0.01 + lr + 0.1 * t
                    rows.append({"cell": cell_id(axes), **axes, "model": model, "seed": seed, "learning_rate": lr,
                                 "status": "ok", "eval": t, "step": 100 * t, "train_accuracy": acc,
                                 "grad_norm": [acc, 2 * acc]})
    return rows


def test_final_and_history_by_axes():
    table = Table(_rows())
    np.testing.assert_allclose(table.final("train_accuracy", depth=4, activation="relu"),
                               [0.71, 0.8, 0.72, 0.81])
    np.testing.assert_allclose(table.history("train_accuracy", depth=8, activation="tanh", learning_rate=0.1),
                               [[0.9, 1.0, 1.1], [0.91, 1.01, 1.11]])
    np.testing.assert_allclose(table.final("grad_norm", layer=-1, depth=4, activation="relu", seed=1),
                               [1.44, 1.62])
    assert table.steps(depth=4, activation="tanh").tolist() == [0, 100, 200]
    assert table.member_values("seed", depth=8, activation="relu").tolist() == [0, 0, 1, 1]
    # the old address, a cell id, still works as `cell=`
    np.testing.assert_array_equal(table.final("train_accuracy", cell="depth=4,activation=relu"),
                                  table.final("train_accuracy", depth=4, activation="relu"))
    assert table.axes == {"depth": [4, 8], "activation": ["relu", "tanh"]}


def test_steps_to_a_target_per_model():
    table = Table(_rows())
    steps = table.steps_to("train_accuracy", 0.65, depth=4, activation="relu")
    assert steps.tolist() == [200, 100, 200, 100]
    assert np.isinf(table.steps_to("train_accuracy", 5.0, depth=4, activation="relu")).all()


def test_wrong_or_ambiguous_selections_are_errors_that_name_the_fields():
    table = Table(_rows())
    with pytest.raises(ValueError, match="unknown field 'dpeth' to select by; valid: activation, cell, depth"):
        table.final("train_accuracy", dpeth=4)
    with pytest.raises(ValueError, match=r"selects 2 cells .*name one cell by its axes \(activation, depth\)"):
        table.final("train_accuracy", depth=4)
    with pytest.raises(ValueError, match="selects 0 cells"):
        table.final("train_accuracy", depth=16, activation="relu")
    with pytest.raises(ValueError, match="no results for cell 'x'"):
        table.final("train_accuracy", cell="x")


def test_diverged_models_counts_each_model_once():
    rows = _rows()
    for r in rows:
        if r["depth"] == 8 and r["model"] in (0, 3):
            r["status"] = "diverged"  # a diverged model's rows all carry its status
    assert Table(_rows()).diverged_models() == 0
    assert Table(rows).diverged_models() == 4  # two models in each of the two depth-8 cells
