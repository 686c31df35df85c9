"""Activation functions by name; an unknown name lists the valid ones."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from dlfound.errors import unknown_name

Activation = Callable[[jax.Array], jax.Array]


def identity(x: jax.Array) -> jax.Array:
    """f(x) = x: with it a deep MLP collapses to one linear map."""
    return x


def step(x: jax.Array) -> jax.Array:
    """Heaviside threshold 1[x >= 0] of McCulloch & Pitts (1943); its gradient is zero."""
    return (x >= 0).astype(x.dtype)


def softsign(x: jax.Array) -> jax.Array:
    """f(x) = x / (1 + |x|), studied by Glorot & Bengio (2010)."""
    return x / (1.0 + jnp.abs(x))


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,  # negative slope 0.01
    "elu": jax.nn.elu,  # alpha 1 (Clevert et al. 2016)
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # x * Phi(x), Hendrycks & Gimpel (2016)
    "silu": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "softsign": softsign,
    "identity": identity,
    "step": step,
}

# The ReLU family keeps signal variance with He init; saturating units with Glorot.
RELU_FAMILY = frozenset({"relu", "leaky_relu", "elu", "gelu", "silu", "softplus"})


def names() -> tuple[str, ...]:
    return tuple(ACTIVATIONS)


def get(name: str) -> Activation:
    """Returns the activation called `name`."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise unknown_name("activation", name, ACTIVATIONS) from None
