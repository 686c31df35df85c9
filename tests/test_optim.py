"""Optimizers: updates against their formulas, injected hyperparameters, schedules, vmapped learning
rates, the folded Adam against optax's, and weight decay left out when it is zero."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlfound import optim
from dlfound.errors import ConfigError

TARGET = jnp.asarray([1.0, -2.0, 0.5, 3.0])


def _quadratic(params):
    return 0.5 * jnp.sum((params["w"] - TARGET) ** 2)


def _one_update(name, learning_rate, params=None, **kwargs):
    params = {"w": jnp.zeros(4)} if params is None else params
    tx = optim.make_optimizer(name, learning_rate, **kwargs)
    state = tx.init(params)
    updates, state = tx.update(jax.grad(_quadratic)(params), state, params)
    return optax.apply_updates(params, updates), state


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_every_optimizer_lowers_a_quadratic(name):
    params = {"w": jnp.zeros(4)}
    new, _ = _one_update(name, 0.1, params)
    assert float(_quadratic(new)) < float(_quadratic(params))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_injected_learning_rate_lives_in_the_state(name):
    params = {"w": jnp.zeros(4)}
    tx = optim.make_optimizer(name, 0.03, 0.001)
    state = tx.init(params)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.03)
    assert float(state.hyperparams["weight_decay"]) == pytest.approx(0.001)
    small, _ = _one_update(name, 0.01, params)
    large, _ = _one_update(name, 0.1, params)
    assert not np.allclose(small["w"], large["w"])


def test_sgd_update_is_minus_learning_rate_times_gradient():
    new, _ = _one_update("sgd", 0.25)
    np.testing.assert_allclose(new["w"], 0.25 * TARGET, rtol=1e-6)


def test_weight_decay_is_l2_for_sgd_and_decoupled_for_adamw():
    params = {"w": jnp.asarray([2.0, -4.0])}
    zero_grad = {"w": jnp.zeros(2)}
    for name, expected in [("sgd", [2.0 - 0.1 * 0.5 * 2.0, -4.0 + 0.1 * 0.5 * 4.0]),
                           ("adamw", [2.0 - 0.1 * 0.5 * 2.0, -4.0 + 0.1 * 0.5 * 4.0])]:
        tx = optim.make_optimizer(name, 0.1, 0.5)
        state = tx.init(params)
        updates, _ = tx.update(zero_grad, state, params)
        np.testing.assert_allclose(optax.apply_updates(params, updates)["w"], expected, rtol=1e-6)
    # adam with an L2 term: the decay passes through Adam's normalization (a step of ~lr, not lr*wd*w).
    tx = optim.make_optimizer("adam", 0.1, 0.5)
    updates, _ = tx.update(zero_grad, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], [-0.1, 0.1], rtol=1e-4)


def test_grad_clip_norm_bounds_the_sgd_step():
    new, _ = _one_update("sgd", 1.0, grad_clip_norm=0.5)
    assert float(jnp.linalg.norm(new["w"])) == pytest.approx(0.5, rel=1e-5)


def test_unknown_optimizer_and_schedule_list_valid_ones():
    with pytest.raises(ConfigError) as info:
        optim.make_optimizer("adma", 0.1)
    assert all(name in str(info.value) for name in optim.OPTIMIZERS)
    with pytest.raises(ConfigError) as info:
        optim.make_optimizer("adam", 0.1, schedule="cosin")
    assert all(name in str(info.value) for name in optim.SCHEDULES)


@pytest.mark.parametrize("schedule,expected", [
    # multiplier at steps 0, 9 (last warmup step), 55 (middle of the decay), 100 (end)
    ("constant", (1.0, 1.0, 1.0, 1.0)),
    ("cosine", (1.0, 0.5 * (1 + math.cos(math.pi * 0.09)), 0.5 * (1 + math.cos(math.pi * 0.55)), 0.0)),
    ("warmup", (0.1, 1.0, 1.0, 1.0)),
    ("warmup_cosine", (0.1, 1.0, 0.5, 0.0)),
])
def test_schedule_shapes(schedule, expected):
    shape = optim.schedule_shape(schedule, total_steps=100, warmup_steps=10)
    got = [float(shape(step)) for step in (0, 9, 55, 100)]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    values = np.asarray(jax.vmap(shape)(jnp.arange(101)))
    assert values.min() >= 0.0 and values.max() <= 1.0 + 1e-7


def test_schedule_drives_the_optimizer_step():
    params = {"w": jnp.zeros(4)}
    tx = optim.make_optimizer("sgd", 1.0, schedule="cosine", total_steps=4)
    state = tx.init(params)
    grads = {"w": jnp.ones(4)}
    steps = []
    for _ in range(5):
        updates, state = tx.update(grads, state, params)
        steps.append(-float(updates["w"][0]))
    cosine = [0.5 * (1 + math.cos(math.pi * step / 4)) for step in range(5)]  # 1, 0.85, 0.5, 0.15, 0
    np.testing.assert_allclose(steps, cosine, atol=1e-6)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_vmapped_learning_rates_equal_separate_calls(name):
    learning_rates = jnp.asarray([0.001, 0.03, 0.3])
    params = {"w": jnp.asarray([0.5, -1.0, 2.0, 0.0])}
    factory = lambda lr: optim.make_optimizer(name, lr, 0.01, schedule="warmup_cosine",  # noqa: E731
                                              total_steps=10, warmup_steps=2)

    def run(learning_rate):
        tx = factory(learning_rate)
        p, state = params, tx.init(params)
        for _ in range(3):
            updates, state = tx.update(jax.grad(_quadratic)(p), state, p)
            p = optax.apply_updates(p, updates)
        return p["w"]

    batched = jax.vmap(run)(learning_rates)
    for i, lr in enumerate(learning_rates):
        np.testing.assert_allclose(batched[i], run(lr), rtol=1e-6, atol=1e-7)


def test_folded_adam_equals_optax_adam_over_many_steps():
    """Kingma & Ba's reordering (bias corrections in one scalar, eps scaled) is Adam, step for step."""
    key = jax.random.key(0)
    params = {"w": jax.random.normal(key, (64, 32)), "b": jnp.zeros(32)}
    ours, ref = optim.scale_by_adam(), optax.scale_by_adam()
    s_ours, s_ref = ours.init(params), ref.init(params)
    assert jax.tree.structure(s_ours) == jax.tree.structure(s_ref)
    for step in range(50):
        # gradients spanning 8 orders of magnitude, some near eps, so the folded eps matters
        scale = 10.0 ** jax.random.uniform(jax.random.fold_in(key, step), (), minval=-9, maxval=-1)
        noise_key = jax.random.fold_in(key, 100 + step)
        grads = jax.tree.map(lambda p: scale * jax.random.normal(noise_key, p.shape), params)
        u_ours, s_ours = ours.update(grads, s_ours)
        u_ref, s_ref = ref.update(grads, s_ref)
        chex.assert_trees_all_close(u_ours, u_ref, rtol=2e-5, atol=1e-6)
    chex.assert_trees_all_close(s_ours, s_ref, rtol=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_family_matches_optax_on_a_quadratic(name):
    params = {"w": jnp.asarray([0.5, -1.0, 2.0, 0.0])}
    tx = optim.make_optimizer(name, 0.05, 0.01 if name == "adamw" else 0.0)
    ref = optax.adam(0.05) if name == "adam" else optax.adamw(0.05, weight_decay=0.01)
    state = tx.init(params)
    ref_state, p, q = ref.init(params), params, params
    for _ in range(100):
        updates, state = tx.update(jax.grad(_quadratic)(p), state, p)
        p = optax.apply_updates(p, updates)
        ref_updates, ref_state = ref.update(jax.grad(_quadratic)(q), ref_state, q)
        q = optax.apply_updates(q, ref_updates)
    np.testing.assert_allclose(p["w"], q["w"], rtol=1e-5, atol=1e-6)
    assert float(_quadratic(p)) < 0.05 * float(_quadratic(params))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_leaving_decay_out_equals_zero_decay(name):
    params = {"w": jnp.asarray([0.5, -1.0, 2.0, 0.0])}

    def run(decay):
        tx = optim.make_optimizer(name, 0.05, decay=decay)
        p, state = params, tx.init(params)
        for _ in range(3):
            updates, state = tx.update(jax.grad(_quadratic)(p), state, p)
            p = optax.apply_updates(p, updates)
        return p["w"]

    np.testing.assert_array_equal(run(True), run(False))
