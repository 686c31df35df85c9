"""Weight initialization schemes by name, and each activation's intended scheme.

Variances for a layer with fan-in n_in and fan-out n_out:
  lecun        N(0, 1/n_in)                          LeCun et al. (1998); Flax's default
  glorot       U(+-sqrt(6/(n_in+n_out)))             Glorot & Bengio (2010), eq. 16
  glorot_normal N(0, 2/(n_in+n_out))
  std_uniform  U(+-1/sqrt(n_in))                     Glorot & Bengio (2010), eq. 1 ("standard")
  he           N(0, 2/n_in)                          He et al. (2015), eq. 10
  he_uniform   U(+-sqrt(6/n_in))
  orthogonal   a random orthogonal matrix             Saxe et al. (2014)
  small_normal N(0, 0.01^2)                          the seeds' recipe
  zeros        all zero: every hidden unit stays identical
"""

from __future__ import annotations

import jax
from jax.nn import initializers as jinit

from dlfound.activations import RELU_FAMILY
from dlfound.errors import unknown_name

INITIALIZERS = {
    "lecun": jinit.variance_scaling(1.0, "fan_in", "normal"),
    "glorot": jinit.glorot_uniform(),
    "xavier": jinit.glorot_uniform(),
    "glorot_normal": jinit.glorot_normal(),
    "xavier_normal": jinit.glorot_normal(),
    "std_uniform": jinit.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
    "he": jinit.variance_scaling(2.0, "fan_in", "normal"),
    "kaiming": jinit.variance_scaling(2.0, "fan_in", "normal"),
    "he_uniform": jinit.variance_scaling(2.0, "fan_in", "uniform"),
    "orthogonal": jinit.orthogonal(),
    "small_normal": jinit.normal(0.01),
    "zeros": jinit.zeros,
}


def names() -> tuple[str, ...]:
    return tuple(INITIALIZERS)


def get(name: str):
    """Returns the kernel initializer called `name` (a jax.nn.initializers function)."""
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        raise unknown_name("init", name, INITIALIZERS) from None


def intended_init(activation: str) -> str:
    """He for the ReLU family, Glorot for saturating and linear units."""
    return "he" if activation in RELU_FAMILY else "glorot"


def expected_variance(name: str, fan_in: int, fan_out: int) -> float:
    """The weight variance a scheme targets (what the tests check samples against)."""
    table = {
        "lecun": 1.0 / fan_in,
        "glorot": 2.0 / (fan_in + fan_out),
        "xavier": 2.0 / (fan_in + fan_out),
        "glorot_normal": 2.0 / (fan_in + fan_out),
        "xavier_normal": 2.0 / (fan_in + fan_out),
        "std_uniform": 1.0 / (3.0 * fan_in),
        "he": 2.0 / fan_in,
        "kaiming": 2.0 / fan_in,
        "he_uniform": 2.0 / fan_in,
        "orthogonal": 1.0 / max(fan_in, fan_out),
        "small_normal": 1e-4,
        "zeros": 0.0,
    }
    get(name)
    return table[name]


def scale_kernels(params, init_scale: jax.Array):
    """Multiplies every `kernel` leaf by `init_scale` (a vmappable init-scale sweep)."""

    def scale(path, leaf):
        is_kernel = any(getattr(k, "key", None) == "kernel" for k in path)
        return leaf * init_scale if is_kernel else leaf

    return jax.tree_util.tree_map_with_path(scale, params)


