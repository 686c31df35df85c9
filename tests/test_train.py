"""Pure training: steps lower the loss, gradients match finite differences, vmapped runs equal solo runs.

Every full run is jitted once per config (see `_jitted`) and shared between tests: compiling
`make_train` costs seconds of CPU, while a run on this tiny task takes milliseconds.
"""

import collections
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dlfound import losses, train
from dlfound.config import Config
from dlfound.data.dataset import Dataset
from dlfound.errors import ConfigError
from dlfound.hyperparams import Hyperparams
from dlfound.models import make_model

# Vmapped runs against solo runs: XLA may order a batched reduction differently, so allow float32
# rounding accumulated over 16 steps. Measured max |difference| over params and history: <= 4e-7.
VMAP_ATOL = 1e-5
VMAP_RTOL = 1e-5
# float64 train_step gradient vs central differences (h = 1e-6): truncation h^2 and rounding eps/h.
# Measured per layer leaf: ||error|| <= 6e-10, relative <= 4e-8 (typically 1e-9).
FD_STEP = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-9

NUM_CLASSES = 3
# Two epochs of 8 steps, evaluated after each: T = 3 evaluations.
BASE = Config(depth=2, width=16, activation="relu", optimizer="sgd", learning_rate=0.1, batch_size=32,
              num_epochs=2, eval_every_epochs=1)


def make_data(num_train=256, num_eval=64, dim=8, num_classes=NUM_CLASSES, seed=0) -> Dataset:
    """A learnable task: labels are the argmax of a random linear teacher (regression: a smooth target)."""
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(dim, max(num_classes, 1)))

    def split(n):
        x = rng.normal(size=(n, dim)).astype(np.float32)
        if num_classes:
            return x, np.argmax(x @ teacher, axis=-1).astype(np.int32)
        return x, np.sin(x @ teacher).astype(np.float32)  # (n, 1)

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = split(num_train), split(num_eval), split(num_eval)
    return Dataset(x_tr, y_tr, x_va, y_va, x_te, y_te, name="teacher", num_classes=num_classes)


DATA = make_data()
TRACES = collections.Counter()


@functools.lru_cache(maxsize=None)
def _jitted(cfg: Config, mode: str = "solo"):
    """One compiled program per (config, mode), shared by the tests below.

    solo: train(key, data, hparams), counting its traces in TRACES[cfg];
    seeds: vmap over keys, hparams from the config; hparams: vmap over a Hyperparams batch.
    """
    fn = train.make_train(cfg)
    if mode == "solo":

        def counted(key, data, hparams):
            TRACES[cfg] += 1  # a Python side effect: runs once per trace, never per call
            return fn(key, data, hparams)

        return jax.jit(counted)
    if mode == "seeds":
        return jax.jit(jax.vmap(fn, in_axes=(0, None)))
    return jax.jit(jax.vmap(fn, in_axes=(None, None, 0)))


def _solo(cfg, key, data=DATA, **hparams):
    return _jitted(cfg)(key, data, Hyperparams.from_config(cfg, **hparams))


def _stack_hparams(cfg, **values):
    """A Hyperparams whose fields named in `values` (sequences) vary along a leading axis."""
    size = len(next(iter(values.values())))
    rows = [Hyperparams.from_config(cfg, **{k: v[i] for k, v in values.items()}) for i in range(size)]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *rows)


def _member(tree, i):
    return jax.tree.map(lambda leaf: leaf[i], tree)


def _assert_trees_close(actual, expected, atol=VMAP_ATOL, rtol=VMAP_RTOL):
    chex.assert_trees_all_equal_structs(actual, expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=rtol)


# -------------------------------------------------------------------------------------------- train_step

def _state(cfg, data=DATA, key=0, **hparams):
    def create(key):  # jitted: one compile instead of many eager ops
        return train.init_state(cfg, key, data, Hyperparams.from_config(cfg, **hparams))

    return jax.jit(create)(jax.random.key(key))


def test_train_step_lowers_the_loss_on_a_fixed_batch():
    cfg = BASE.replace(optimizer="adam", learning_rate=1e-2)
    state = _state(cfg)
    batch = (jnp.asarray(DATA.x_train[:32]), jnp.asarray(DATA.y_train[:32]))
    step = jax.jit(train.train_step)
    losses_seen = []
    for _ in range(20):
        state, step_metrics = step(state, batch)
        losses_seen.append(float(step_metrics["loss"]))
    assert losses_seen[-1] < 0.5 * losses_seen[0]
    assert int(state.step) == 20 and int(state.diverged_step) == -1
    assert step_metrics["grad_norm"].shape == (cfg.depth + 1,)
    assert 0.0 <= float(step_metrics["accuracy"]) <= 1.0


FD_CASES = [
    # depth, activation, norm, loss, residual
    (0, "identity", None, "cross_entropy", False),
    (2, "relu", None, "cross_entropy", False),
    (1, "tanh", None, "mse", False),
    (2, "gelu", "layer", "cross_entropy", False),
    (2, "sigmoid", "batch", "bce", False),
    (3, "softplus", None, "sigmoid_mse", True),
]


@pytest.fixture
def x64():
    """Enables float64 for one test and restores the previous setting afterwards."""
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("depth,activation,norm,loss,residual", FD_CASES)
def test_train_step_gradient_matches_central_finite_differences(x64, depth, activation, norm, loss, residual):
    num_classes = 2 if loss in ("bce", "sigmoid_mse") else 3
    cfg = Config(depth=depth, width=4, activation=activation, norm=norm, loss=loss, residual=residual,
                 optimizer="sgd", learning_rate=1.0)
    rng = np.random.default_rng(depth)
    x = jnp.asarray(rng.normal(size=(6, 3)))
    y = jnp.asarray(rng.integers(0, num_classes, 6))
    data = Dataset(x, y, x, y, x, y, num_classes=num_classes)
    model, loss_fn = make_model(cfg, losses.get(loss).num_outputs(num_classes)), losses.get(loss)

    @jax.jit
    def to_float64(state):
        """float64 parameters (biases made non-zero) and an SGD state for them."""
        offset = lambda p: 0.1 * jnp.cos(jnp.arange(p.size).reshape(p.shape))  # noqa: E731
        params = jax.tree.map(lambda p: p.astype(jnp.float64) + offset(p), state.params)
        batch_stats = jax.tree.map(lambda b: b.astype(jnp.float64), state.batch_stats)
        return state.replace(params=params, batch_stats=batch_stats,
                             opt_state=state.tx.init(params))  # SGD at lr 1, no decay

    def training_loss(p, batch_stats):
        variables = {"params": p, **({"batch_stats": batch_stats} if norm == "batch" else {})}
        out, _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return loss_fn(out, y, num_classes)

    @jax.jit
    def loss_and_finite_differences(params, batch_stats):
        flat, unravel = ravel_pytree(params)
        loss_flat = lambda v: training_loss(unravel(v), batch_stats)  # noqa: E731
        basis = FD_STEP * jnp.eye(flat.size, dtype=flat.dtype)
        fd = jax.vmap(lambda e: (loss_flat(flat + e) - loss_flat(flat - e)) / (2 * FD_STEP))(basis)
        return loss_flat(flat), unravel(fd)

    state = to_float64(_state(cfg, data))
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(state.params))
    new_state, step_metrics = jax.jit(train.train_step)(state, (x, y))
    # plain SGD with learning rate 1 and no decay: the update is exactly minus the gradient
    grads = jax.tree.map(lambda old, new: np.asarray(old) - np.asarray(new), state.params, new_state.params)
    loss_value, fd = loss_and_finite_differences(state.params, state.batch_stats)

    assert float(step_metrics["loss"]) == pytest.approx(float(loss_value), rel=1e-12)
    for (path, g), ref in zip(jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(fd)):
        # absolute floor: a bias followed by batch norm has an exactly zero gradient
        err = np.linalg.norm(g - np.asarray(ref))
        assert err < FD_RTOL * np.linalg.norm(ref) + FD_ATOL, (jax.tree_util.keystr(path), err)
    if norm == "batch":  # batch norm subtracts the batch mean, so the dense bias before it cannot matter
        for i in range(depth):
            assert np.abs(grads[f"hidden_{i}"]["bias"]).max() < FD_ATOL


# ------------------------------------------------------------------------------------------------ make_train

DEPTHS = (0, 1, 3)
ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
# Depth 0 has no hidden layer, so its activation is irrelevant: one case.
GRID = [(0, "relu")] + [(d, a) for d in DEPTHS if d for a in ACTIVATIONS]


def _grid_cfg(depth, activation):
    # 6 epochs of 8 steps, evaluated every 2 epochs: T = 4 evaluations.
    return Config(depth=depth, width=16, activation=activation, optimizer="adam", learning_rate=3e-2,
                  batch_size=32, num_epochs=6, eval_every_epochs=2)


@pytest.mark.parametrize("depth,activation", GRID)
def test_loss_goes_down_on_a_learnable_task(depth, activation):
    history = _solo(_grid_cfg(depth, activation), jax.random.key(0)).history
    loss_T, acc_T = np.asarray(history["train_loss"]), np.asarray(history["train_accuracy"])
    assert np.all(np.isfinite(loss_T))
    assert loss_T[-1] < 0.5 * loss_T[0], loss_T
    assert acc_T[-1] > 0.8, acc_T  # chance is 1/3
    assert float(history["test_accuracy"][-1]) > 0.6


@pytest.mark.parametrize("depth", DEPTHS)
def test_history_shapes(depth):
    cfg = _grid_cfg(depth, "relu")
    result = _solo(cfg, jax.random.key(0))
    history = result.history
    num_evals = cfg.num_epochs // cfg.eval_every_epochs + 1
    for name in ("step", "batch_loss", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                 "test_loss", "test_accuracy"):
        assert history[name].shape == (num_evals,), name
    assert history["grad_norm"].shape == (num_evals, depth + 1)
    assert history["activation_mean"].shape == (num_evals, depth)
    assert history["activation_std"].shape == (num_evals, depth)
    steps_per_eval = cfg.eval_every_epochs * (DATA.num_train // cfg.batch_size)
    np.testing.assert_array_equal(history["step"], steps_per_eval * np.arange(num_evals))
    assert np.isnan(history["batch_loss"][0]) and np.all(np.isfinite(history["batch_loss"][1:]))
    assert np.all(np.asarray(history["grad_norm"]) > 0)
    assert int(result.diverged_step) == -1
    assert set(result.params) == {f"hidden_{i}" for i in range(depth)} | {"readout"}


def test_vmapped_seeds_equal_separate_runs():
    keys = jax.random.split(jax.random.key(7), 3)
    batched = _jitted(BASE, "seeds")(keys, DATA)
    for i in range(3):
        _assert_trees_close(_member(batched, i), _solo(BASE, keys[i]))
    assert not np.allclose(batched.history["train_loss"][0], batched.history["train_loss"][1])


def test_vmapped_learning_rate_sweep_equals_separate_runs():
    learning_rates = (0.01, 0.1, 0.3)
    hparams = _stack_hparams(BASE, learning_rate=learning_rates)
    batched = _jitted(BASE, "hparams")(jax.random.key(1), DATA, hparams)
    for i, lr in enumerate(learning_rates):
        _assert_trees_close(_member(batched, i), _solo(BASE, jax.random.key(1), learning_rate=lr))
    np.testing.assert_array_equal(batched.history["train_loss"][:, 0], batched.history["train_loss"][0, 0])


def test_diverged_member_is_flagged_and_leaves_the_others_alone():
    learning_rates = (0.05, 1e6, 0.01)
    key = jax.random.key(2)
    batched = _jitted(BASE, "hparams")(key, DATA, _stack_hparams(BASE, learning_rate=learning_rates))
    diverged = np.asarray(batched.diverged_step)
    assert diverged[1] >= 0 and diverged[0] == -1 and diverged[2] == -1
    assert not np.isfinite(batched.history["train_loss"][1, -1])
    for i in (0, 2):
        _assert_trees_close(_member(batched, i), _solo(BASE, key, learning_rate=learning_rates[i]))
    solo = _solo(BASE, key, learning_rate=1e6)  # alone it is flagged the same way, without raising
    assert int(solo.diverged_step) == diverged[1]


def test_infinite_init_scale_diverges_at_the_first_step():
    result = _solo(BASE, jax.random.key(3), init_scale=float("inf"))
    assert int(result.diverged_step) == 0


def test_same_key_is_bitwise_deterministic():
    first = _solo(BASE, jax.random.key(4))
    second = _solo(BASE, jax.random.key(4))
    chex.assert_trees_all_equal(first, second)
    other = _solo(BASE, jax.random.key(5))
    assert not np.array_equal(first.history["train_loss"], other.history["train_loss"])


def test_new_keys_and_hyperparameters_do_not_retrace():
    fn = _jitted(BASE)
    for seed, lr, noise in [(10, 0.1, 0.0), (11, 0.02, 0.5), (12, 0.3, 1.0)]:
        hparams = Hyperparams.from_config(BASE, learning_rate=lr, label_noise=noise)
        jax.block_until_ready(fn(jax.random.key(seed), DATA, hparams))
    assert TRACES[BASE] == 1  # over every test of this module that ran BASE solo
    assert fn._cache_size() == 1


def test_chex_max_traces_on_a_fresh_jit():
    cfg = BASE.replace(num_epochs=1)
    fn = jax.jit(chex.assert_max_traces(train.make_train(cfg), n=1))  # a second trace raises
    for seed, lr, noise in [(0, 0.1, 0.0), (1, 0.05, 1.0)]:
        hparams = Hyperparams.from_config(cfg, learning_rate=lr, label_noise=noise)
        jax.block_until_ready(fn(jax.random.key(seed), DATA, hparams))


def test_corrupt_labels():
    y = jnp.asarray(np.random.default_rng(0).integers(0, 10, 20_000))
    key = jax.random.key(0)
    np.testing.assert_array_equal(train.corrupt_labels(key, y, 0.0, 10), y)
    for fraction in (0.5, 1.0):
        noisy = np.asarray(train.corrupt_labels(key, y, fraction, 10))
        assert noisy.min() >= 0 and noisy.max() < 10
        # a replaced label is uniform over 10 classes, so it stays the same 1 time in 10
        assert abs(np.mean(noisy != np.asarray(y)) - 0.9 * fraction) < 0.015
    regression = jnp.ones((5, 1))
    np.testing.assert_array_equal(train.corrupt_labels(key, regression, 1.0, 0), regression)


def test_label_noise_changes_training_labels_only():
    key = jax.random.key(6)
    clean = _solo(BASE, key, label_noise=0.0).history
    noisy = _solo(BASE, key, label_noise=1.0).history
    # same initial model: held-out splits agree at T=0, the training split's (noisy) labels do not
    for name in ("val_loss", "test_loss", "val_accuracy"):
        assert float(clean[name][0]) == float(noisy[name][0]), name
    assert float(clean["train_loss"][0]) != float(noisy["train_loss"][0])
    assert float(noisy["train_accuracy"][-1]) < float(clean["train_accuracy"][-1]) - 0.2


def test_batch_norm_trains():
    cfg = BASE.replace(norm="batch")
    result = _solo(cfg, jax.random.key(0))
    loss_T = np.asarray(result.history["train_loss"])
    assert np.all(np.isfinite(loss_T)) and loss_T[-1] < loss_T[0]
    assert set(result.batch_stats) == {"norm_0", "norm_1"}
    assert float(jnp.abs(result.batch_stats["norm_0"]["mean"]).max()) > 0  # running statistics moved
    assert int(result.diverged_step) == -1


def test_dropout_trains_and_rate_zero_equals_no_dropout():
    cfg = BASE.replace(dropout_rate=0.2)
    key = jax.random.key(0)
    result = _solo(cfg, key)
    loss_T = np.asarray(result.history["train_loss"])
    assert np.all(np.isfinite(loss_T)) and loss_T[-1] < loss_T[0]
    # the traced rate 0 through the dropout program is the plain model
    _assert_trees_close(_solo(cfg, key, dropout_rate=0.0), _solo(BASE, key))
    assert not np.allclose(result.history["train_loss"][-1], _solo(BASE, key).history["train_loss"][-1])


def test_regression_trains_with_mse_and_reports_nan_accuracy():
    data = make_data(num_classes=0)
    assert data.y_train.shape == (256, 1)
    cfg = BASE.replace(loss="mse", optimizer="adam", learning_rate=1e-2)
    result = _solo(cfg, jax.random.key(0), data=data)
    history = result.history
    assert result.params["readout"]["kernel"].shape == (16, 1)
    for split in ("train", "val", "test"):
        assert np.all(np.isnan(history[f"{split}_accuracy"])), split
        assert np.all(np.isfinite(history[f"{split}_loss"])), split
    assert float(history["train_loss"][-1]) < float(history["train_loss"][0])


def test_hyperparams_override_typo_raises_config_error():
    assert float(Hyperparams.from_config(BASE, learning_rate=0.5).learning_rate) == 0.5
    expected = "unknown hyperparameter 'learning_rat'; valid choices: .*learning_rate"
    with pytest.raises(ConfigError, match=expected):
        Hyperparams.from_config(BASE, learning_rat=0.5)


def test_regression_with_a_classification_loss_raises_config_error():
    with pytest.raises(ConfigError, match="regression dataset; allowed: mse"):
        train.make_train(BASE)(jax.random.key(0), make_data(num_classes=0))


def test_permutation_is_a_deterministic_permutation():
    perm = np.asarray(train.permutation(jax.random.key(3), 1000))
    np.testing.assert_array_equal(np.sort(perm), np.arange(1000))
    np.testing.assert_array_equal(perm, train.permutation(jax.random.key(3), 1000))
    assert not np.array_equal(perm, train.permutation(jax.random.key(4), 1000))


def test_permutation_is_uniform_over_all_orders():
    """All 24 orders of 4 items are equally likely: chi-square over 24,000 keyed draws."""
    keys = jax.random.split(jax.random.key(0), 24_000)
    perms = np.asarray(jax.jit(jax.vmap(lambda k: train.permutation(k, 4)))(keys))
    codes = perms @ np.array([64, 16, 4, 1])
    counts = collections.Counter(codes.tolist())
    assert len(counts) == 24
    chi2 = sum((c - 1000) ** 2 / 1000 for c in counts.values())
    assert chi2 < 49.7  # the 0.999 quantile of chi-square with 23 degrees of freedom


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_leaving_zero_label_noise_and_weight_decay_out_changes_nothing(optimizer):
    cfg = BASE.replace(optimizer=optimizer, learning_rate=0.1 if optimizer == "sgd" else 0.01)
    key = jax.random.key(5)
    full = _solo(cfg, key)
    lean = jax.jit(train.make_train(cfg, train.Features()))(key, DATA)
    chex.assert_trees_all_close(full, lean, rtol=1e-6, atol=1e-7)
