"""Per-layer statistics and reductions of a training history."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def layer_norms(tree, names) -> jax.Array:
    """L2 norm of each named layer's subtree (kernel and bias together), in `names` order."""
    def norm(sub):
        return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(sub)))

    return jnp.stack([norm(tree[name]) for name in names])


def activation_stats(intermediates, depth: int) -> tuple[jax.Array, jax.Array]:
    """Mean and standard deviation of each hidden layer's activations; shapes (depth,)."""
    if depth == 0:
        empty = jnp.zeros((0,), jnp.float32)
        return empty, empty
    acts = [intermediates[f"activation_{i}"][0] for i in range(depth)]
    return jnp.stack([jnp.mean(a) for a in acts]), jnp.stack([jnp.std(a) for a in acts])


def first_step_reaching(values_T, steps_T, target: float, *, above: bool = True) -> float:
    """First recorded step whose value reaches `target` (inf if never; NaN values never reach)."""
    values = np.asarray(values_T, dtype=float)
    hit = values >= target if above else values <= target
    hit &= np.isfinite(values)
    return float(np.asarray(steps_T)[np.argmax(hit)]) if hit.any() else float("inf")


def gradient_ratio(grad_norm_TxL, index: int = 0) -> float:
    """First-layer over last-layer gradient norm at evaluation `index` (vanishing if << 1)."""
    g = np.asarray(grad_norm_TxL, dtype=float)[index]
    return float(g[0] / g[-1]) if g[-1] > 0 else float("nan")
