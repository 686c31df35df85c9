"""A run in segments (make_segments) equals the run at once, bitwise."""

import jax
import numpy as np
import pytest

from dlfound.config import Config
from dlfound.data import load
from dlfound.hyperparams import Hyperparams
from dlfound.train import make_segments, make_train


@pytest.mark.parametrize("cfg", [
    Config(dataset="moons", depth=3, width=16, batch_size=32, num_epochs=6, eval_every_epochs=1,
           optimizer="adam", learning_rate=3e-3, dropout_rate=0.2, label_noise=0.1),
    Config(dataset="moons", depth=2, width=8, batch_size=64, num_epochs=12, eval_every_epochs=2,
           optimizer="sgd", momentum=0.9, learning_rate=0.1, norm="batch"),
])
def test_segmented_equals_unsegmented(cfg):
    data = load("moons")
    key, hparams = jax.random.key(7), Hyperparams.from_config(cfg)
    whole = jax.jit(make_train(cfg))(key, data, hparams)
    start, advance, finish = make_segments(cfg)
    num_evals = cfg.num_epochs // cfg.eval_every_epochs + 1
    advance = jax.jit(advance, static_argnums=5)
    state, pieces = jax.jit(start)(key, data, hparams), []
    for first, count in ((0, 2), (2, 2), (4, num_evals - 4)):
        state, history = advance(state, key, data, hparams, first, count)
        pieces.append(history)
    history = jax.tree.map(lambda *h: np.concatenate(h), *pieces)
    parts = finish(state, history)
    jax.tree.map(np.testing.assert_array_equal, parts.params, whole.params)
    jax.tree.map(np.testing.assert_array_equal, parts.batch_stats, whole.batch_stats)
    for name, values in whole.history.items():
        np.testing.assert_array_equal(parts.history[name], values, err_msg=name)
    assert int(parts.diverged_step) == int(whole.diverged_step)
