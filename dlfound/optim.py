"""The one place that builds Optax optimizers, with learning rate and weight decay injectable.

Learning rate and weight decay live in the optimizer state (`optax.inject_hyperparams`),
so a vmapped learning-rate sweep is one program, and a new value does not recompile.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from dlfound.errors import unknown_name

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "warmup")


def check(optimizer: str, schedule: str = "constant") -> None:
    """Raises ConfigError for an unknown optimizer or schedule name."""
    if optimizer not in OPTIMIZERS:
        raise unknown_name("optimizer", optimizer, OPTIMIZERS)
    if schedule not in SCHEDULES:
        raise unknown_name("schedule", schedule, SCHEDULES)


def schedule_shape(schedule: str, total_steps: int, warmup_steps: int = 0):
    """Multiplier of the base learning rate as a function of the step, in [0, 1]."""
    check("sgd", schedule)
    total = max(total_steps, 1)
    warm = min(warmup_steps, total - 1) if schedule.startswith("warmup") else 0

    def shape(step):
        step = jnp.asarray(step, jnp.float32)
        ramp = jnp.minimum(1.0, (step + 1.0) / warm) if warm > 0 else 1.0
        if schedule in ("cosine", "warmup_cosine"):
            progress = jnp.clip((step - warm) / max(total - warm, 1), 0.0, 1.0)
            return ramp * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        return ramp * jnp.ones_like(step)

    return shape


def _base(name: str, learning_rate, momentum: float, weight_decay):
    if name == "sgd":
        return optax.sgd(learning_rate)
    if name == "momentum":
        return optax.sgd(learning_rate, momentum=momentum)
    if name == "nesterov":
        return optax.sgd(learning_rate, momentum=momentum, nesterov=True)
    if name == "rmsprop":
        return optax.rmsprop(learning_rate)
    if name == "adagrad":
        return optax.adagrad(learning_rate)
    if name == "adam":
        return optax.adam(learning_rate)
    return optax.adamw(learning_rate, weight_decay=weight_decay)


def make_optimizer(
    optimizer: str = "adam",
    *,
    momentum: float = 0.9,
    schedule: str = "constant",
    total_steps: int = 1,
    warmup_steps: int = 0,
    grad_clip_norm: float = 0.0,
) -> optax.GradientTransformation:
    """Builds the optimizer; init its state with hyperparameters via `init_with`.

    `weight_decay` is decoupled for adamw (Loshchilov & Hutter 2019) and an L2 term
    (decay * w added to the gradient) for every other optimizer.
    """
    check(optimizer, schedule)
    shape = schedule_shape(schedule, total_steps, warmup_steps)

    def factory(learning_rate, weight_decay):
        lr = lambda step: learning_rate * shape(step)  # noqa: E731
        parts = []
        if grad_clip_norm > 0:
            parts.append(optax.clip_by_global_norm(grad_clip_norm))
        if optimizer != "adamw":
            parts.append(optax.add_decayed_weights(weight_decay))
        parts.append(_base(optimizer, lr, momentum, weight_decay))
        return optax.chain(*parts)

    return optax.inject_hyperparams(factory)(learning_rate=1.0, weight_decay=0.0)


def init_with(tx: optax.GradientTransformation, params, learning_rate, weight_decay):
    """Initial optimizer state carrying this model's learning rate and weight decay."""
    state = tx.init(params)
    hyper = dict(state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(learning_rate, jnp.float32)
    hyper["weight_decay"] = jnp.asarray(weight_decay, jnp.float32)
    return state._replace(hyperparams=hyper)
