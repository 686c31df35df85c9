"""The MLP family as Flax Linen modules, with stable layer names for per-layer metrics.

Layer names: `hidden_0`, ..., `hidden_{depth-1}`, then `readout`. One hidden layer is
    h <- dropout(act(norm(W h + b)))       plain
    h <- h + dropout(act(norm(W h + b)))   residual (He et al. 2016), when widths match
and the readout is linear. `depth=0` is multinomial logistic regression.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from dlfound import activations, initializers
from dlfound.config import Config


def dropout(x: jax.Array, rate, key: Optional[jax.Array]) -> jax.Array:
    """Inverted dropout (Srivastava et al. 2014) with a traced, vmappable `rate`."""
    if key is None:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class MLP(nn.Module):
    """Multilayer perceptron: `len(widths)` hidden layers and a linear readout.

    `depth` hidden layers of `width` units (an int, or one int per layer). Call with
    `train=True` to use batch statistics and dropout (which needs the `dropout` rng).
    """

    depth: int
    width: Union[int, Sequence[int]]
    num_outputs: int
    activation: str = "relu"
    initializer: str = "he"
    norm: Optional[str] = None
    dropout_rate: float = 0.0
    residual: bool = False

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.width,) * self.depth if isinstance(self.width, int) else tuple(self.width)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, dropout_rate=None) -> jax.Array:
        """Maps inputs (B, ...) to outputs (B, num_outputs); `dropout_rate` overrides the field."""
        act = activations.get(self.activation)
        kernel_init = initializers.get(self.initializer)
        use_dropout = train and (dropout_rate is not None or self.dropout_rate > 0)
        rate = self.dropout_rate if dropout_rate is None else dropout_rate
        h = x.reshape((x.shape[0], -1))
        for i, width in enumerate(self.widths):
            z = nn.Dense(width, kernel_init=kernel_init, name=f"hidden_{i}")(h)
            if self.norm == "batch":
                z = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"norm_{i}")(z)
            elif self.norm == "layer":
                z = nn.LayerNorm(name=f"norm_{i}")(z)
            a = act(z)
            self.sow("intermediates", f"activation_{i}", a)
            if use_dropout:
                a = dropout(a, rate, self.make_rng("dropout"))
            h = h + a if self.residual and h.shape[-1] == width else a
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
