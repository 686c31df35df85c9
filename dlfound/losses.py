"""Losses by name, each with its output size and how its outputs are scored as accuracy.

Every loss returns the mean over the batch of a per-example loss:
  cross_entropy  -log softmax(z)_y                                    (integer labels)
  mse            1/2 ||y - z||^2  (y one-hot for classification)
  sigmoid_mse    1/2 (y - sigmoid(z))^2, Rumelhart et al. (1986)      (binary labels)
  bce            -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z))       (binary labels)
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from dlfound.errors import ConfigError, unknown_name


@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss: per-example values, the number of outputs it needs, and accuracy of outputs."""

    name: str
    per_example: Callable[[jax.Array, jax.Array, int], jax.Array]
    correct: Callable[[jax.Array, jax.Array], jax.Array]
    binary: bool = False

    def num_outputs(self, num_classes: int, target_dim: int = 1) -> int:
        """Output units for a task with `num_classes` (0 = regression with `target_dim` targets)."""
        if num_classes == 0:
            if self.name != "mse":
                raise ConfigError(f"invalid loss={self.name!r} for a regression dataset; allowed: mse")
            return target_dim
        if self.binary:
            if num_classes != 2:
                raise ConfigError(
                    f"invalid loss={self.name!r} for {num_classes} classes; allowed: cross_entropy, mse"
                )
            return 1
        return num_classes

    def __call__(self, outputs: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
        return jnp.mean(self.per_example(outputs, y, num_classes))

    def accuracy(self, outputs: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
        """Fraction correct; NaN for regression."""
        if num_classes == 0:
            return jnp.full((), jnp.nan, outputs.dtype)
        return jnp.mean(self.correct(outputs, y).astype(outputs.dtype))


def _cross_entropy(z_BxC, y_B, num_classes):
    return optax.softmax_cross_entropy_with_integer_labels(z_BxC, y_B)


def _mse(z_BxT, y, num_classes):
    target = jax.nn.one_hot(y, num_classes, dtype=z_BxT.dtype) if num_classes else y
    return 0.5 * jnp.sum((target - z_BxT) ** 2, axis=-1)


def _sigmoid_mse(z_Bx1, y_B, num_classes):
    return 0.5 * (y_B.astype(z_Bx1.dtype) - jax.nn.sigmoid(z_Bx1[:, 0])) ** 2


def _bce(z_Bx1, y_B, num_classes):
    return optax.sigmoid_binary_cross_entropy(z_Bx1[:, 0], y_B.astype(z_Bx1.dtype))


def _argmax_correct(z_BxC, y_B):
    return jnp.argmax(z_BxC, axis=-1) == y_B


def _sign_correct(z_Bx1, y_B):
    return (z_Bx1[:, 0] > 0) == (y_B > 0)


LOSSES = {
    "cross_entropy": Loss("cross_entropy", _cross_entropy, _argmax_correct),
    "mse": Loss("mse", _mse, _argmax_correct),
    "sigmoid_mse": Loss("sigmoid_mse", _sigmoid_mse, _sign_correct, binary=True),
    "bce": Loss("bce", _bce, _sign_correct, binary=True),
}


def names() -> tuple[str, ...]:
    return tuple(LOSSES)


def get(name: str) -> Loss:
    """Returns the loss called `name`."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise unknown_name("loss", name, LOSSES) from None
