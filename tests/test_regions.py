"""Region and piece counting: exact counts on constructions with known answers, and the sawtooth net."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlfound import regions
from dlfound.data.functions import tent_power
from dlfound.models import MLP

# Dyadic midpoints never hit a knot j/2^k of the sawtooth (k <= 16).
GRID = (np.arange(2**14) + 0.5) / 2**14


def _one_layer(knots, slopes, readout, bias=0.0) -> dict:
    """Params of a width-m ReLU net with unit j switching at x = knots[j]."""
    knots, slopes = np.asarray(knots, np.float32), np.asarray(slopes, np.float32)
    return {"hidden_0": {"kernel": slopes[None, :], "bias": -slopes * knots},
            "readout": {"kernel": np.asarray(readout, np.float32)[:, None], "bias": np.array([bias], np.float32)}}


def _apply(params, x):
    depth = regions.hidden_depth(params)
    width = params["hidden_0"]["kernel"].shape[1]
    model = MLP(depth=depth, width=width, num_outputs=1, activation="relu")
    return np.asarray(model.apply({"params": params}, jnp.asarray(x[:, None], jnp.float32))[:, 0])


@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_sawtooth_net_computes_the_tent_power_with_2_to_the_k_pieces(k):
    params = regions.sawtooth_params(k)
    y = _apply(params, GRID)
    np.testing.assert_allclose(y, tent_power(GRID, k), atol=1e-6)
    assert regions.count_pieces(GRID, y) == 2**k
    patterns = regions.relu_patterns(params, jnp.asarray(GRID[:, None], jnp.float32))
    assert patterns.shape == (GRID.size, 2 * k)
    assert int(regions.count_pattern_runs(patterns)) == 2**k
    assert sum(p.size for leaf in params.values() for p in leaf.values()) == 6 * k + 1


def test_one_layer_pieces_equal_one_plus_knots_inside_the_interval():
    rng = np.random.default_rng(0)
    for m in (1, 3, 10):
        knots = np.sort(rng.uniform(-0.5, 1.5, m))
        knots[1:] = np.maximum(knots[1:], knots[:-1] + 1e-2)  # separated: no merged knots
        slopes = rng.choice([-1.0, 1.0], m) * rng.uniform(0.5, 2.0, m)
        params = _one_layer(knots, slopes, rng.choice([-1.0, 1.0], m) * rng.uniform(0.5, 2.0, m))
        inside = int(np.sum((knots > 0) & (knots < 1)))
        y = regions.forward_float64(params, GRID[:, None])[:, 0]
        np.testing.assert_allclose(y, _apply(params, GRID), rtol=1e-5, atol=1e-5)
        assert regions.count_pieces(GRID, y) == 1 + inside <= m + 1
        count = regions.regions_along_line(params, jnp.array([0.0]), jnp.array([1.0]), 2**14)
        assert int(count) == 1 + inside


def test_a_switch_without_effect_is_a_region_but_not_a_piece():
    params = _one_layer([0.25, 0.5, 0.75], [1.0, 1.0, 1.0], [1.0, 0.0, -2.0])
    assert regions.count_pieces(GRID, _apply(params, GRID)) == 3
    assert int(regions.regions_along_line(params, jnp.array([0.0]), jnp.array([1.0]), 2**14)) == 4


def test_count_pieces_of_known_functions():
    x = np.linspace(-1.0, 1.0, 4001)
    assert regions.count_pieces(x, 3.0 * x + 1.0) == 1
    assert regions.count_pieces(x, np.abs(x)) == 2
    assert regions.count_pieces(x, np.abs(np.abs(x) - 0.5)) == 4
    assert regions.count_pieces(x, np.abs(x - 0.1234567)) == 2  # knot strictly inside an interval
    assert regions.count_pieces(x.astype(np.float32), np.abs(x).astype(np.float32)) == 2
    with pytest.raises(ValueError, match="increasing"):
        regions.count_pieces(x[::-1], x)
    with pytest.raises(ValueError, match="1-D"):
        regions.count_pieces(x, x[:-1])


def test_regions_along_a_line_in_two_dimensions_and_under_vmap():
    # Units x1 > 0, x2 > 0 and x1 + x2 > 1: the diagonal from (-1,-1) to (2,2) crosses 3 boundaries.
    params = {"hidden_0": {"kernel": jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),
                           "bias": jnp.array([0.0, 0.1, -1.0])},
              "readout": {"kernel": jnp.ones((3, 1)), "bias": jnp.zeros((1,))}}
    count = regions.regions_along_line(params, jnp.array([-1.0, -1.0]), jnp.array([2.0, 2.0]), 3001)
    assert int(count) == 4
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), params)
    starts = jnp.array([[-1.0, -1.0], [5.0, 5.0]])
    counts = jax.vmap(lambda p, s: regions.regions_along_line(p, s, s + 3.0, 3001))(stacked, starts)
    assert counts.tolist() == [4, 1]


def test_sawtooth_params_rejects_a_bad_depth():
    with pytest.raises(ValueError, match="k=0"):
        regions.sawtooth_params(0)
