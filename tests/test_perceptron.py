"""Threshold logic is exact (F2); the perceptron learns separable sets in Novikoff's bound, not XOR (F1)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlfound import perceptron as pc
from dlfound.errors import ConfigError

X2 = pc.truth_table(2)
SEEDS = 20


def _apply(gate):
    module, variables = gate
    return lambda x: module.apply(variables, x)


def _margin_blobs(gamma, n=400, seed=0):
    """n points from two Gaussian blobs labelled by a planted unit separator u = [w, b] (bias absorbed),
    keeping only points with |u . [x, 1]| >= gamma, so u separates them with margin >= gamma."""
    rng = np.random.default_rng(seed)
    u = np.array([1.0, 1.0, 0.3])
    u /= np.linalg.norm(u)
    x = 0.7 * rng.normal(size=(4 * n, 2)) + rng.choice([-1.0, 1.0], size=(4 * n, 1)) * u[:2]
    s = np.c_[x, np.ones(4 * n)] @ u
    keep = np.flatnonzero(np.abs(s) >= gamma)[:n]
    assert keep.size == n
    return x[keep].astype(np.float32), np.where(s[keep] > 0, 1, -1).astype(np.int32), u


# One compiled program per data shape, shared by the tests below.
_train_seeds = jax.jit(jax.vmap(pc.train_perceptron, in_axes=(0, None, None)))
_bound = jax.jit(pc.novikoff_bound)


def _keys(n=SEEDS):
    return jax.random.split(jax.random.key(0), n)


def test_truth_table_enumerates_inputs():
    np.testing.assert_array_equal(X2, [[0, 0], [0, 1], [1, 0], [1, 1]])
    assert pc.truth_table(5).shape == (32, 5)


def test_gates_have_exact_truth_tables():
    np.testing.assert_array_equal(_apply(pc.and_gate())(X2), [0, 0, 0, 1])
    np.testing.assert_array_equal(_apply(pc.or_gate())(X2), [0, 1, 1, 1])
    np.testing.assert_array_equal(_apply(pc.not_gate())(jnp.array([[0.0], [1.0]])), [1, 0])
    np.testing.assert_array_equal(_apply(pc.xor_network())(X2), [0, 1, 1, 0])
    x3 = pc.truth_table(3)
    np.testing.assert_array_equal(_apply(pc.and_gate(3))(x3), jnp.all(x3 == 1, axis=1))
    np.testing.assert_array_equal(_apply(pc.or_gate(3))(x3), jnp.any(x3 == 1, axis=1))


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_parity_network_is_exact_with_n_hidden_units(n):
    module, variables = pc.parity_network(n)
    x = pc.truth_table(n)
    np.testing.assert_array_equal(module.apply(variables, x), jnp.sum(x, axis=1) % 2)
    assert variables["params"]["layer_0"]["weights"].shape == (n, n)


def test_threshold_weights_are_settable_params():
    module, variables = pc.and_gate()
    nand = {"params": {"weights": -variables["params"]["weights"], "threshold": jnp.array(-1.0)}}
    np.testing.assert_array_equal(module.apply(nand, X2), [1, 1, 1, 0])
    module, variables = pc.xor_network()
    init = module.init(jax.random.key(0), X2)
    assert jax.tree.structure(init) == jax.tree.structure(variables)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, init, variables))
    layer = pc.ThresholdUnit(((1.0, 1.0), (1.0, 1.0)), (1.0, 2.0))  # (OR, AND) side by side
    out = layer.apply(layer.init(jax.random.key(0), X2), X2)
    np.testing.assert_array_equal(out, [[0, 0], [1, 0], [1, 0], [1, 1]])


def test_perceptron_rule_updates_only_on_mistakes():
    w, x = jnp.array([1.0, -1.0, 0.0]), jnp.array([2.0, 1.0, 1.0])
    same, mistake = pc.perceptron_rule(w, x, 1.0)  # 1 * (2 - 1) > 0: correct
    assert not mistake and jnp.array_equal(same, w)
    new, mistake = pc.perceptron_rule(w, x, -1.0)
    assert mistake and jnp.array_equal(new, w - x)
    _, on_boundary = pc.perceptron_rule(jnp.zeros(3), x, 1.0)  # y (w . x) = 0 counts as a mistake
    assert on_boundary


@pytest.mark.parametrize("name,labels", [("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])])
def test_perceptron_learns_and_or_within_novikoff_bound(name, labels):
    y = jnp.array(labels)
    result = _train_seeds(_keys(), X2, y)
    bound = float(_bound(X2, y))
    assert bool(jnp.all(result.converged)), name
    assert bool(jnp.all(result.epoch_accuracy[:, -1] == 1.0))
    assert int(jnp.max(result.num_updates)) <= bound
    params = jax.tree.map(lambda a: a[0], result.params)
    np.testing.assert_array_equal(pc.Perceptron().apply({"params": params}, X2), pc.signed_labels(y))


def test_perceptron_converges_on_margin_blobs_within_novikoff_bound():
    medians = {}
    for gamma in (0.05, 0.2):
        x, y, u = _margin_blobs(gamma)
        result = _train_seeds(_keys(), x, y)
        planted = float(_bound(x, y, w_star=u))
        tightest = float(_bound(x, y))
        assert bool(jnp.all(result.converged)), gamma
        # The max-margin direction's margin is at least the planted one (0.1% slack for float32).
        assert tightest <= planted * 1.001
        assert int(jnp.max(result.num_updates)) <= tightest
        assert bool(jnp.all(result.epoch_mistakes[:, -1] == 0))
        medians[gamma] = float(jnp.median(result.num_updates))
    assert medians[0.05] > medians[0.2]  # a smaller margin costs more mistakes (C02)


def test_perceptron_never_exceeds_three_quarters_on_xor():
    result = _train_seeds(_keys(), X2, jnp.array([0, 1, 1, 0]))  # 20 seeds x 100 epochs
    assert result.epoch_accuracy.shape == (20, 100)
    assert float(jnp.max(result.epoch_accuracy)) <= 0.75
    assert not bool(jnp.any(result.converged))
    assert bool(jnp.all(result.epochs_to_converge == -1))
    assert float(_bound(X2, jnp.array([0, 1, 1, 0]))) == float("inf")


def test_vmapped_seeds_equal_single_runs():
    x, y, _ = _margin_blobs(0.1, seed=3)
    keys = _keys()
    batched = _train_seeds(keys, x, y)
    single = jax.jit(pc.train_perceptron)
    for i in (0, 7, 19):
        alone = single(keys[i], x, y)
        member = jax.tree.map(lambda a: a[i], batched)
        np.testing.assert_array_equal(member.epoch_mistakes, alone.epoch_mistakes)
        np.testing.assert_array_equal(member.num_updates, alone.num_updates)
        np.testing.assert_allclose(member.params["kernel"], alone.params["kernel"], rtol=1e-6)
        np.testing.assert_allclose(member.epoch_accuracy, alone.epoch_accuracy)
    assert len(set(np.asarray(batched.num_updates).tolist())) > 1 or not np.array_equal(
        batched.epoch_mistakes[0], batched.epoch_mistakes[1]
    )  # different seeds visit the examples in different orders


def test_novikoff_bound_on_a_hand_solved_case():
    # 1-D points x = 1 (y = +1) and x = -2 (y = -1); augmented z = (1, 1), (2, -1).
    # Min-norm point of their segment: (1.2, 0.6), so gamma* = sqrt(1.8); R^2 = max(2, 5) = 5.
    x, y = jnp.array([[1.0], [-2.0]]), jnp.array([1, -1])
    u = pc.max_margin_direction(x, y)
    np.testing.assert_allclose(u, np.array([1.2, 0.6]) / np.sqrt(1.8), rtol=1e-6)
    assert float(pc.radius(x)) == pytest.approx(np.sqrt(5.0))
    assert float(_bound(x, y)) == pytest.approx(5.0 / 1.8, rel=1e-5)
    # Any separator gives a valid, looser bound: w = 1, b = 0 has margin 1/1 in the augmented space.
    assert float(_bound(x, y, w_star=jnp.array([1.0, 0.0]))) == pytest.approx(5.0)
    assert float(_bound(x, y, w_star=jnp.array([-1.0, 0.0]))) == float("inf")


def test_perceptron_module_outputs_and_bad_name():
    module = pc.Perceptron()
    variables = module.init(jax.random.key(0), X2)
    assert float(jnp.sum(jnp.abs(module.apply(variables, X2)))) == 0.0  # w = 0: all on the boundary
    params = {"kernel": jnp.array([1.0, 1.0]), "bias": jnp.array(-1.5)}
    np.testing.assert_array_equal(pc.Perceptron(output="step").apply({"params": params}, X2), [0, 0, 0, 1])
    with pytest.raises(ConfigError, match="unknown perceptron output 'tanh'.*sign, step"):
        pc.Perceptron(output="tanh").apply({"params": params}, X2)


def test_train_perceptron_accepts_other_epoch_counts():
    run = jax.jit(functools.partial(pc.train_perceptron, num_epochs=3))
    result = run(jax.random.key(1), X2, jnp.array([0, 0, 0, 1]))
    assert result.epoch_accuracy.shape == (3,) and result.num_updates.dtype == jnp.int32
