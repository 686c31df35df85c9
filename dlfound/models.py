"""The MLP family as Flax Linen modules, with stable layer names for per-layer metrics.

Layer names: `hidden_0`, ..., `hidden_{depth-1}`, then `readout`. One hidden layer is
    h <- dropout(act(norm(W h + b)))       plain
    h <- h + dropout(act(norm(W h + b)))   residual (He et al. 2016), when widths match
and the readout is linear. `depth=0` is multinomial logistic regression.

A packed MLP (`dlfound.packing`) takes a tuple of choices for `depth`, `activation`, `norm`
or `residual`, and each call a `Variant` that picks one of each: many structures, one program.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from dlfound import activations, initializers
from dlfound.config import Config


def dropout(x: jax.Array, rate, key: Optional[jax.Array]) -> jax.Array:
    """Inverted dropout (Srivastava et al. 2014) with a traced, vmappable `rate`."""
    if key is None:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


@struct.dataclass
class Variant:
    """One member's structural choices in a packed MLP: indices into the module's tuples of
    choices, traced so that `jax.vmap` gives every member its own (`init` indexes the pack's
    initializers and is used when the parameters are created)."""

    depth: jax.Array
    activation: jax.Array
    init: jax.Array
    norm: jax.Array
    residual: jax.Array


def _options(field) -> tuple:
    return field if isinstance(field, tuple) else (field,)


def _index(variant: Optional[Variant], name: str):
    return None if variant is None else getattr(variant, name)


def choose(options: Sequence[jax.Array], index) -> jax.Array:
    """`options[index]` for a traced index; every option is computed and the chosen one kept
    bit for bit (`lax.select_n`), so a packed member computes exactly what it would alone."""
    if len(options) == 1:
        return options[0]
    return jax.lax.select_n(jnp.asarray(index, jnp.int32), *options)


class MLP(nn.Module):
    """Multilayer perceptron: `len(widths)` hidden layers and a linear readout.

    `depth` hidden layers of `width` units (an int, or one int per layer). Call with
    `train=True` to use batch statistics and dropout (which needs the `dropout` rng).
    `depth`, `activation`, `norm` and `residual` may be tuples of choices; a call then
    takes a `variant` picking one of each. The stack is as deep as the deepest choice, and
    layers from a member's own depth on pass h through unchanged.
    """

    depth: Union[int, tuple[int, ...]]
    width: Union[int, Sequence[int]]
    num_outputs: int
    activation: Union[str, tuple[str, ...]] = "relu"
    initializer: str = "he"
    norm: Union[Optional[str], tuple[Optional[str], ...]] = None
    dropout_rate: float = 0.0
    residual: Union[bool, tuple[bool, ...]] = False

    @property
    def widths(self) -> tuple[int, ...]:
        depth = max(_options(self.depth))
        return (self.width,) * depth if isinstance(self.width, int) else tuple(self.width)

    @property
    def packed(self) -> bool:
        """Whether a call needs a `variant` (some field holds several choices)."""
        return any(len(_options(f)) > 1 for f in (self.depth, self.activation, self.norm, self.residual))

    def _normalize(self, kind: Optional[str], z: jax.Array, i: int, train: bool) -> jax.Array:
        if kind == "batch":
            return nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"norm_{i}")(z)
        if kind == "layer":
            return nn.LayerNorm(name=f"norm_{i}")(z)
        return z

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, dropout_rate=None,
                 variant: Optional[Variant] = None) -> jax.Array:
        """Maps inputs (B, ...) to outputs (B, num_outputs); `dropout_rate` overrides the field."""
        if self.packed and variant is None:
            raise ValueError("a packed MLP (a field with several choices) needs `variant`")
        depths, acts = _options(self.depth), [activations.get(a) for a in _options(self.activation)]
        norms, residuals = _options(self.norm), _options(self.residual)
        kernel_init = initializers.get(self.initializer)
        use_dropout = train and (dropout_rate is not None or self.dropout_rate > 0)
        rate = self.dropout_rate if dropout_rate is None else dropout_rate
        h = x.reshape((x.shape[0], -1))
        for i, width in enumerate(self.widths):
            z = nn.Dense(width, kernel_init=kernel_init, name=f"hidden_{i}")(h)
            z = choose([self._normalize(kind, z, i, train) for kind in norms], _index(variant, "norm"))
            a = choose([act(z) for act in acts], _index(variant, "activation"))
            self.sow("intermediates", f"activation_{i}", a)
            if use_dropout:
                a = dropout(a, rate, self.make_rng("dropout"))
            if h.shape[-1] == width:
                a = choose([h + a if r else a for r in residuals], _index(variant, "residual"))
            if i >= min(depths):  # past the shallowest choice: a member of depth <= i passes h through
                a = jnp.where(jnp.asarray(depths)[variant.depth] > i, a, h)
            h = a
        return nn.Dense(self.num_outputs, kernel_init=kernel_init, name="readout")(h)


def make_model(cfg: Config, num_outputs: int) -> MLP:
    """The MLP a config describes (`init="auto"` resolved from the activation)."""
    return MLP(
        depth=cfg.depth,
        width=cfg.widths,
        num_outputs=num_outputs,
        activation=cfg.activation,
        initializer=cfg.resolved_init,
        norm=cfg.norm,
        dropout_rate=cfg.dropout_rate,
        residual=cfg.residual,
    )


def layer_names(depth: int) -> tuple[str, ...]:
    """Names of the dense layers, input to output."""
    return tuple(f"hidden_{i}" for i in range(depth)) + ("readout",)


def count_params(input_dim: int, widths: Sequence[int], num_outputs: int, norm: Optional[str] = None) -> int:
    """Trainable parameters: sum of (fan_in + 1) * fan_out, plus 2 per normalized unit."""
    sizes = [input_dim, *widths, num_outputs]
    dense = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    return dense + (2 * sum(widths) if norm else 0)
