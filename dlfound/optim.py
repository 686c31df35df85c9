"""The one place that builds Optax optimizers, with learning rate and weight decay injectable.

Learning rate and weight decay live in the optimizer state (`optax.inject_hyperparams`),
so a vmapped learning-rate sweep is one program, and a new value does not recompile.
"""

from __future__ import annotations

import jax
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


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam's direction with the bias corrections folded into one scalar (Kingma & Ba 2015, Sec. 2).

        m_t = b1 m + (1 - b1) g,   v_t = b2 v + (1 - b2) g^2,   c = sqrt(1 - b2^t)
        update = c / (1 - b1^t) * m_t / (sqrt(v_t) + eps c)  ==  m_hat / (sqrt(v_hat) + eps)

    Equal to `optax.scale_by_adam` in exact arithmetic (within float32 rounding in practice),
    with the same state, but one division and one square root per parameter instead of two
    divisions and a square root: the update is the costliest elementwise pass of a small MLP.
    """

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update(grads, state, params=None):
        del params
        mu = optax.tree.update_moment(grads, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(grads, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        t = count.astype(jnp.float32)
        c = jnp.sqrt(1.0 - b2**t)
        step, eps_t = c / (1.0 - b1**t), eps * c
        updates = jax.tree.map(lambda m, v: step * m / (jnp.sqrt(v) + eps_t), mu, nu)
        return updates, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


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
    if name == "adam" or weight_decay is None:  # adamw without decay is adam
        return optax.chain(scale_by_adam(), optax.scale_by_learning_rate(learning_rate))
    return optax.chain(scale_by_adam(), optax.add_decayed_weights(weight_decay),
                       optax.scale_by_learning_rate(learning_rate))


def make_optimizer(
    optimizer: str,
    learning_rate,
    weight_decay=0.0,
    *,
    momentum: float = 0.9,
    schedule: str = "constant",
    total_steps: int = 1,
    warmup_steps: int = 0,
    grad_clip_norm: float = 0.0,
    decay: bool = True,
) -> optax.GradientTransformation:
    """The optimizer for one model, with its own (possibly traced) learning rate and weight decay.

    Both are injected hyperparameters (`optax.inject_hyperparams`): they live in the optimizer
    state that `tx.init(params)` returns, so a vmapped ensemble gives each member its own.

    `weight_decay` is decoupled for adamw (Loshchilov & Hutter 2019) and an L2 term
    (decay * w added to the gradient) for every other optimizer. `decay=False` leaves that
    term out of the program (3% of an epoch of the seeds' MLP): only for runs whose weight
    decay is 0, which it then ignores.
    """
    check(optimizer, schedule)
    shape = schedule_shape(schedule, total_steps, warmup_steps)

    def factory(learning_rate, weight_decay):
        lr = lambda step: learning_rate * shape(step)  # noqa: E731
        parts = []
        if grad_clip_norm > 0:
            parts.append(optax.clip_by_global_norm(grad_clip_norm))
        if optimizer != "adamw" and decay:
            parts.append(optax.add_decayed_weights(weight_decay))
        parts.append(_base(optimizer, lr, momentum, weight_decay if decay else None))
        return optax.chain(*parts)

    return optax.inject_hyperparams(factory)(learning_rate=learning_rate, weight_decay=weight_decay)
