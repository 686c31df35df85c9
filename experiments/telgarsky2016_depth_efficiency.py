"""Telgarsky (2015, 2016): depth is exponentially more efficient than width for the sawtooth; linear regions.

Papers: Telgarsky (2015), "Representation benefits of deep feedforward networks", arXiv:1509.08101;
        Telgarsky (2016), "Benefits of depth in neural networks", COLT; Montufar, Pascanu, Cho &
        Bengio (2014), "On the number of linear regions of deep neural networks", NeurIPS;
        Hanin & Rolnick (2019), "Complexity of linear regions in deep networks", ICML.
Claim:  F7: a depth-k, width-2 ReLU net computes the sawtooth t^k (the k-fold tent map) with 2^k
        affine pieces from 6k+1 parameters, while a one-hidden-layer net of width m has at most
        m+1 pieces, so it needs about 2^k units and, on the 2^k alternating points, errs on at
        least (2^k - m - 2)/2 of them; the maximal number of linear regions grows exponentially
        with depth (Montufar et al.), but at random initialization the regions met along a line
        grow about linearly in the number of neurons whatever the depth (Hanin & Rolnick); and
        expressivity is not trainability: gradient descent does not find the sawtooth.
Setup:  (a) the hand-built net (`dlfound.regions.sawtooth_params`) for k = 1..10 on 2^14 dyadic
        midpoints of [0,1]: error against t^k, affine pieces (slope changes) and activation
        regions (pattern changes). (b) 100 random one-hidden-layer nets per width m in
        1..64 (knots uniform in [-1/4, 5/4]): pieces on 2^12 midpoints, in float64. (c) least-squares
        output layer over m ReLU features with knots at j/(m+1) plus an affine term, for
        k = 4, 6, 8 and m + 1 = 2, 4, ..., 2^k: L1 error against t^k. (d) the n-ap task, 2^6 = 64
        points x_i = i/64 with labels i mod 2 (rescaled to [-1, 1] for training): the tent net
        thresholded at 1/2, and trained one-hidden-layer nets of width {4, 16, 32} (Adam, lr
        {1e-3, 1e-2} vmapped, full batch, 3000 steps, 13 seeds). (e) activation regions along a
        random segment (|t| <= 3 around a N(0, I) point, 2^16 samples) of He-initialized ReLU
        nets on 2-D inputs with 64 neurons in 1, 2, 4 or 8 layers (the library's init: He
        weights, zero biases), 20 seeds. (f) depth-6 nets of width 2 and 8 and a width-64
        shallow net trained on the k=6 sawtooth (1024 uniform points, MSE, Adam lr {1e-3,
        1e-2} vmapped, full batch, 3000 steps, 13 seeds): L1 error on a 4096-point grid. A
        diverged net counts as erring on every n-ap point and as an infinite L1 error.
Run:    python -m experiments.telgarsky2016_depth_efficiency           # 57 s on 2 CPU cores (measured)
        python -m experiments.telgarsky2016_depth_efficiency --quick   # seconds; smoke test only
Expect: (a) error 0 (dyadic arithmetic is exact in float32), pieces = regions = 2^k; (b) never
        more than m+1 pieces; (c) L1 ~1e-15 at m = 2^k - 1 and ~0.25 (a constant's error) at
        m <= 2^(k-1) - 1; (d) 64/64 for the tent net; every trained shallow net at or above the
        bound (~30 errors of 64); (e) region counts flat in depth, ~50 for 64 neurons, against
        2^k for the construction; (f) L1 errors 0.2-0.25 for every architecture.
Pass:   C06/C07 criteria. Exact (seed-free, or a bound checked on every net): (a) max error
        <= 1e-6 and pieces = regions = 2^k for every k; (b) pieces <= m+1 for every net; (c) L1
        <= 1e-9 at m = 2^k - 1 and >= 0.2 at every m <= 2^(k-1) - 1; (d) the tent net makes 0
        errors and every trained width-m net (all seeds and learning rates) makes >= ceil((64 -
        m - 2)/2) errors (Telgarsky's counting bound) with at most m+1 pieces; (e) the
        construction's count doubles with every layer. On 95% paired-bootstrap intervals over
        seeds: (d) the mean of each seed's fewest errors (over learning rates) above the bound
        - 1/2 (errors are whole numbers); (e) mean count at depth 8 / mean count at depth 1
        below 2, and the mean count at every depth below 4 x 64 (C07: every count); (f) the
        mean over seeds of each seed's lowest L1 (over learning rates) above 0.1 for every
        architecture (C07: every trained net), against 0 for the construction.
Longer than most: six analyses, each this paper's own (the construction, random and least-squares
shallow nets, n-ap, regions at init, trained nets), computed here beside the one sweep.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from dlfound import claims, cli, plots, regions
from dlfound.checkpoints import Models
from dlfound.config import Config
from dlfound.data import load
from dlfound.data.dataset import Dataset
from dlfound.data.functions import tent_power
from dlfound.models import MLP
from dlfound.sweep import Sweep, run_sweeps
from dlfound.table import Table

BASE = Config(dataset="sawtooth", depth=1, width=16, activation="relu", loss="cross_entropy",
              optimizer="adam", learning_rate=1e-2, batch_size=64, num_epochs=3000,
              eval_every_epochs=500, validation_fraction=0.0)
K = 6  # the trained and n-ap tasks use the sawtooth with 2^6 = 64 pieces
CONSTRUCT_KS = tuple(range(1, 11))
GRID_POINTS = 2**14  # construction: 16 samples per piece at k = 10
SMALL_GRID = 2**12  # random nets and least squares
RANDOM_WIDTHS, RANDOM_NETS = (1, 2, 4, 8, 16, 32, 64), 100
LSQ_KS = (4, 6, 8)
NAP_WIDTHS = (4, 16, 32)
REGION_DEPTHS, REGION_NEURONS, REGION_SEEDS, REGION_POINTS = (1, 2, 4, 8), 64, 20, 2**16
TRAINED_ARCHS = ((6, 2), (6, 8), (1, 64))  # (depth, width) trained on the sawtooth
SAWTOOTH_TRAIN, L1_GRID = 1024, 4096
LEARNING_RATES = (1e-3, 1e-2)
L1_EXACT, L1_FAR, L1_UNTRAINABLE, CONSTRUCT_ATOL = 1e-9, 0.2, 0.1, 1e-6


def dyadic_grid(points: int = GRID_POINTS) -> np.ndarray:
    """Midpoints (i + 1/2)/points of [0, 1]: never on a knot j/2^k of the sawtooth (k <= log2 points)."""
    return (np.arange(points) + 0.5) / points


def construction(ks, x: np.ndarray) -> dict:
    """Error, affine pieces and activation regions of the hand-built depth-k net, per k."""
    out = {}
    x32 = jnp.asarray(x[:, None], jnp.float32)
    for k in ks:
        params = regions.sawtooth_params(k)
        y = np.asarray(MLP(depth=k, width=2, num_outputs=1).apply({"params": params}, x32))[:, 0]
        out[k] = {"max_error": float(np.max(np.abs(y.astype(np.float64) - tent_power(x, k)))),
                  "pieces": regions.count_pieces(x, y),
                  "regions": int(regions.count_pattern_runs(regions.relu_patterns(params, x32))),
                  "params": 6 * k + 1}
    return out


def random_shallow_pieces(widths, nets: int, x: np.ndarray, seed: int = 0) -> dict:
    """Pieces on [0, 1] of random one-hidden-layer ReLU nets with knots uniform in [-1/4, 5/4], per width."""
    rng = np.random.default_rng(seed)
    out = {}
    for m in widths:
        w, knots = rng.standard_normal((nets, m)), rng.uniform(-0.25, 1.25, (nets, m))
        a = rng.standard_normal((nets, m))
        out[m] = [regions.count_pieces(x, np.maximum(w[i] * (x[:, None] - knots[i]), 0.0) @ a[i])
                  for i in range(nets)]  # output layer a over relu(w x - w t)
    return out


def least_squares_l1(k: int, m: int, x: np.ndarray) -> float:
    """L1 error of the best output layer over relu(x - j/(m+1)), j = 1..m, plus 1 and x, against t^k."""
    knots = np.arange(1, m + 1) / (m + 1)
    features = np.concatenate([np.ones((x.size, 1)), x[:, None], np.maximum(x[:, None] - knots, 0.0)], 1)
    target = tent_power(x, k)
    coef, *_ = np.linalg.lstsq(features, target, rcond=None)
    return float(np.mean(np.abs(features @ coef - target)))


def nap_data(k: int = K) -> Dataset:
    """Telgarsky's n-ap: n = 2^k points x_i = i/n with labels i mod 2; inputs rescaled to [-1, 1]."""
    n = 2**k
    x = (2.0 * np.arange(n) / n - 1.0).astype(np.float32)[:, None]
    y = (np.arange(n) % 2).astype(np.int32)
    return Dataset(x, y, x[:0], y[:0], x, y, name="n-ap", num_classes=2)


def nap_bound(n: int, m: int) -> int:
    """Fewest errors of a width-m one-hidden-layer ReLU classifier on n alternating points.

    Its logit difference has <= m+1 affine pieces, hence <= m+1 sign changes and <= m+2 runs of
    equal predictions; a run of L alternating points holds >= floor(L/2) errors.
    """
    return max(0, math.ceil((n - m - 2) / 2))


def region_counts(depth: int, seeds, neurons: int = REGION_NEURONS, points: int = REGION_POINTS):
    """Activation regions along a random segment of He-initialized nets, `neurons` split over `depth`
    layers, one count per seed."""
    width = neurons // depth
    model = MLP(depth=depth, width=width, num_outputs=1, activation="relu", initializer="he")

    def count(key):
        init_key, point_key, dir_key = jax.random.split(key, 3)
        params = model.init(init_key, jnp.zeros((1, 2)))["params"]
        center = jax.random.normal(point_key, (2,))
        direction = jax.random.normal(dir_key, (2,))
        direction = direction / jnp.linalg.norm(direction)
        return regions.regions_along_line(params, center - 3 * direction, center + 3 * direction, points)

    keys = jax.vmap(jax.random.key)(jnp.asarray(list(seeds), jnp.uint32))
    return np.asarray(jax.jit(lambda ks: jax.lax.map(count, ks))(keys))


def sweeps(cfg: Config, widths, archs) -> list[Sweep]:
    """The n-ap nets (cross-entropy, one per width), then each architecture on the sawtooth (MSE)."""
    sawtooth, rates = cfg.replace(loss="mse", batch_size=SAWTOOTH_TRAIN), {"learning_rate": LEARNING_RATES}
    return [Sweep(cfg, {"loss": (cfg.loss,), "depth": (cfg.depth,), "width": widths}, rates)] + [
        Sweep(sawtooth, {"loss": ("mse",), "depth": (d,), "width": (w,)}, rates) for d, w in archs]


def _float64_params(models: Models) -> list[dict]:
    return [jax.tree.map(lambda a, m=m: np.asarray(a[m], np.float64), models.variables["params"])
            for m in range(len(models.seeds))]


def nap_pieces(models: Models, x_grid: np.ndarray) -> list[int]:
    """Affine pieces on [0, 1] of each trained n-ap net's logit difference (inputs rescaled to [-1, 1])."""
    logits = [regions.forward_float64(p, (2 * x_grid - 1)[:, None]) for p in _float64_params(models)]
    return [regions.count_pieces(x_grid, z[:, 1] - z[:, 0]) for z in logits]


def sawtooth_fits(models: Models, x_grid: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """Each trained sawtooth net's L1 error against t^K and pieces on `x_grid`; the best net's outputs."""
    outputs = [regions.forward_float64(p, x_grid[:, None])[:, 0] for p in _float64_params(models)]
    members = [{"l1": float(np.mean(np.abs(y - tent_power(x_grid, K)))),
                "pieces": regions.count_pieces(x_grid, y)} for y in outputs]
    return members, outputs[min(range(len(members)), key=lambda m: members[m]["l1"])]


def per_seed_min(values, member_seeds) -> np.ndarray:
    """The smallest value of each seed's members (e.g. over learning rates), in order of first appearance;
    NaN (a diverged net) counts as +inf."""
    values = np.where(np.isnan(np.asarray(values, np.float64)), np.inf, np.asarray(values, np.float64))
    member_seeds = np.asarray(member_seeds)
    return np.array([values[member_seeds == s].min() for s in dict.fromkeys(member_seeds.tolist())])


def mean_of(name: str):
    """The statistic mean over seeds of cell `name`, for `claims.effect`."""
    return lambda v: v[name].mean(-1)


def _judge(construct, shallow, lsq, nap, region, trained, quick) -> list[dict]:
    out = []
    ks = sorted(construct)
    exact = all(c["max_error"] <= CONSTRUCT_ATOL and c["pieces"] == c["regions"] == 2**k
                for k, c in construct.items())
    out.append(claims.judge(
        "F7", "A depth-k width-2 ReLU net computes the sawtooth t^k with exactly 2^k affine pieces "
              "(Telgarsky)",
        f"max |net - t^k| <= {CONSTRUCT_ATOL:g} and pieces = activation regions = 2^k for "
        f"k = {ks[0]}..{ks[-1]}",
        exact, "k: pieces/regions/max error = " + "; ".join(
            f"{k}: {c['pieces']}/{c['regions']}/{claims.fmt(c['max_error'])}" for k, c in construct.items()),
        {"construction": construct}, quick=quick))
    worst = {m: max(c) for m, c in shallow.items()}
    out.append(claims.judge(
        "F7", "A one-hidden-layer ReLU net of width m has at most m+1 affine pieces on a line",
        f"exact (a bound on every net, checked on each): pieces <= m+1 for every one of "
        f"{len(next(iter(shallow.values())))} random nets per width",
        all(worst[m] <= m + 1 for m in worst),
        "width m: max (mean) pieces = " + ", ".join(
            f"{m}: {worst[m]} ({claims.fmt(np.mean(c))})" for m, c in shallow.items()),
        {"pieces": shallow}, quick=quick))
    exact_ok = all(lsq[k][2**k - 1] <= L1_EXACT for k in lsq)
    far_ok = all(v >= L1_FAR for k in lsq for m, v in lsq[k].items() if m <= 2 ** (k - 1) - 1)
    out.append(claims.judge(
        "F7", "A shallow net needs about 2^k units for the sawtooth: least-squares fits over m ReLU features",
        f"L1 <= {L1_EXACT:g} with m = 2^k - 1 units and L1 >= {L1_FAR} with m <= 2^(k-1) - 1, "
        f"for k in {list(lsq)}",
        exact_ok and far_ok, "; ".join(
            f"k={k}: L1(m={2**k - 1}) {claims.fmt(lsq[k][2**k - 1])}, L1(m={2**(k - 1) - 1}) "
            f"{claims.fmt(lsq[k][2**(k - 1) - 1])}" for k in lsq), {"l1": lsq}, quick=quick))
    n = 2**K
    nap_effects = [claims.effect(f"m={m}: mean fewest errors over learning rates (bound {nap_bound(n, m)})",
                                 mean_of("errors"), {"errors": per_seed_min(v["errors"], v["seeds"])},
                                 nap_bound(n, m) - 0.5) for m, v in nap["trained"].items()]
    bound_ok = all(min(v["errors"]) >= nap_bound(n, m) and max(v["pieces"]) <= m + 1
                   for m, v in nap["trained"].items())
    out.append(claims.judge(
        "F7", f"On {n} alternating points a width-m shallow net must err on >= (n-m-2)/2 points; "
              f"the depth-{K} width-2 net makes no error (Telgarsky 2015)",
        "exact: tent net 0 errors, and every trained width-m net (seeds x learning rates) has >= "
        "ceil((n-m-2)/2) errors and <= m+1 pieces (a bound on every net, checked on each); and the 95% "
        "interval over seeds of the mean of each seed's fewest errors lies above the bound - 1/2 (whole "
        "errors: at or above the bound)",
        claims.outcome(nap_effects, nap["tent_errors"] == 0, bound_ok),
        f"tent net errors {nap['tent_errors']}/{n}; " + "; ".join(
            f"m={m}: min errors {min(v['errors'])} (bound {nap_bound(n, m)}), max pieces {max(v['pieces'])}"
            for m, v in nap["trained"].items()), nap, quick=quick, effects=nap_effects))
    depths = sorted(region)
    means = {d: float(np.mean(region[d])) for d in depths}
    samples = {f"depth {d}": region[d] for d in depths}
    region_effects = [
        claims.effect(f"mean regions depth {depths[-1]} / depth {depths[0]}",
                      lambda v: v[f"depth {depths[-1]}"].mean(-1) / v[f"depth {depths[0]}"].mean(-1), samples,
                      2.0, higher_passes=False),
        claims.effect("max over depths of mean regions", lambda v: np.max([v[k].mean(-1) for k in v], 0),
                      samples, 4 * REGION_NEURONS, higher_passes=False)]
    doubling = all(construct[k + 1]["regions"] == 2 * construct[k]["regions"] for k in ks[:-1])
    out.append(claims.judge(
        "F7", "Regions can grow exponentially with depth (Montufar et al. 2014) but at random init grow "
              "about linearly in neurons whatever the depth (Hanin & Rolnick 2019)",
        f"construction (exact): regions double with each layer; He init, {REGION_NEURONS} neurons, 95% "
        f"paired-bootstrap intervals over init seeds: mean regions at depth {depths[-1]} / depth "
        f"{depths[0]} below 2, and the mean at every depth below {4 * REGION_NEURONS} (C07: every count)",
        claims.outcome(region_effects, doubling),
        f"construction regions {[construct[k]['regions'] for k in ks]}; random init mean (max) by depth: "
        + ", ".join(f"{d}: {claims.fmt(means[d])} ({int(np.max(region[d]))})" for d in depths),
        {"random_init": {d: region[d].tolist() for d in depths}}, quick=quick, effects=region_effects))
    l1 = {arch: [e["l1"] for e in entries] for arch, entries in trained.items()}
    trained_effects = [claims.effect(f"{arch}: mean L1 of each seed's best net", mean_of("l1"),
                                     {"l1": per_seed_min(l1[arch], [e["seed"] for e in entries])},
                                     L1_UNTRAINABLE) for arch, entries in trained.items()]
    out.append(claims.judge(
        "F7", "Expressivity is not trainability: gradient descent does not find the sawtooth, even in "
              "deep nets",
        f"95% interval over seeds of the mean L1 on t^{K} of each seed's best net (over learning rates) "
        f"above {L1_UNTRAINABLE} for every architecture (C07: every trained net; a constant scores 0.25, "
        f"the depth-{K} width-2 construction 0)",
        claims.outcome(trained_effects),
        "min (median) L1 by architecture: " + ", ".join(
            f"{a}: {claims.fmt(min(v))} ({claims.fmt(np.median(v))})" for a, v in l1.items()),
        {"l1": l1}, quick=quick, effects=trained_effects))
    return out


def _plots(ctx, construct, lsq, region, trained_fits, x_grid) -> None:
    depths = sorted(region)
    plots.lines(ctx.run_dir.file("regions_vs_depth.png"), np.array(depths),
                {"random init, 64 neurons (seeds)": np.stack([region[d] for d in depths], 1),
                 "sawtooth construction, 2 per layer": np.array([2.0**d for d in depths])},
                "hidden layers", "linear regions along a line",
                "Regions: exponential by construction, flat at random init", logy=True)
    powers = range(1, max(lsq) + 1)
    plots.lines(ctx.run_dir.file("least_squares_l1.png"), np.array([2.0**j - 1 for j in powers]),
                {f"k={k}": np.array([lsq[k].get(2**j - 1, np.nan) for j in powers]) for k in lsq},
                "ReLU units m (knots at j/(m+1))", "L1 error of the best output layer",
                "One hidden layer needs ~2^k units for the k-fold sawtooth", logx=True)
    series = {f"t^{K}": tent_power(x_grid, K)}
    series.update(trained_fits)
    plots.curves_with_bands(ctx.run_dir.file("trained_sawtooth_fits.png"), x_grid, series, "x", "output",
                            f"Trained nets on the {2**K}-piece sawtooth (best member per architecture)")


def trained_nets(table: Table, cfg: Config, widths, archs, x_grid: np.ndarray) -> tuple[dict, dict, dict]:
    """The n-ap result, each architecture's members ({l1, pieces}) and its best fit (for the plot)."""
    n = 2**K
    tent_pred = tent_power(np.arange(n) / n, K) > 0.5
    nap = {"tent_errors": int(np.sum(tent_pred != (np.arange(n) % 2 == 1))), "trained": {}}
    for m in widths:
        axes = {"loss": cfg.loss, "depth": cfg.depth, "width": m}
        # a diverged net (NaN accuracy) errs on every point
        accuracy = np.nan_to_num(table.final("train_accuracy", **axes), nan=0.0)
        errors = np.round(n * (1 - accuracy)).astype(int)
        nap["trained"][m] = {"errors": errors.tolist(), "pieces": nap_pieces(table.models(**axes), x_grid),
                             "seeds": table.member_values("seed", **axes).tolist()}
    trained, fits = {}, {}
    for depth, width in archs:
        name = f"depth {depth} x width {width}"
        axes = {"loss": "mse", "depth": depth, "width": width}
        trained[name], best = sawtooth_fits(table.models(**axes), x_grid)
        for member, seed in zip(trained[name], table.member_values("seed", **axes)):
            member["seed"] = int(seed)
        fits[f"{name} (best L1 {claims.fmt(min(e['l1'] for e in trained[name]))})"] = best
    return nap, trained, fits


def run(ctx: cli.Context) -> dict:
    widths, archs, quick = ctx.axes["width"], ctx.settings["archs"], ctx.quick
    x = dyadic_grid()
    construct = construction(CONSTRUCT_KS, x)
    x_small = dyadic_grid(SMALL_GRID)
    shallow = random_shallow_pieces(RANDOM_WIDTHS, ctx.settings["random_nets"], x_small)
    lsq = {k: {2**j - 1: least_squares_l1(k, 2**j - 1, x_small) for j in range(1, k + 1)} for k in LSQ_KS}
    region = {d: region_counts(d, range(ctx.settings["region_seeds"])) for d in REGION_DEPTHS}

    nap, saw = nap_data(), load("sawtooth", validation_fraction=0.0, k=K, num_examples=SAWTOOTH_TRAIN,
                                task="regression")
    table = run_sweeps(sweeps(ctx.cfg, widths, archs), lambda c: saw if c.loss == "mse" else nap, ctx.seeds,
                       ctx.run_dir, quiet=ctx.quiet)
    x_l1 = dyadic_grid(L1_GRID)
    nap_result, trained, fits = trained_nets(table, ctx.cfg, widths, archs, x_l1)

    verdicts = _judge(construct, shallow, lsq, nap_result, region, trained, quick)
    _plots(ctx, construct, lsq, region, fits, x_l1)
    metrics = {"construction": construct,
               "random_shallow_max_pieces": {m: max(c) for m, c in shallow.items()},
               "least_squares_l1": lsq, "nap": nap_result,
               "regions_random_init_mean": {d: float(np.mean(c)) for d, c in region.items()},
               "trained_sawtooth_l1": {a: [e["l1"] for e in v] for a, v in trained.items()},
               "trained_sawtooth_pieces": {a: [e["pieces"] for e in v] for a, v in trained.items()}}
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Telgarsky (2016)", claim_ids=("F7",),
    name="telgarsky2016_depth_efficiency", description=__doc__, base=BASE, run=run, default_seeds=13,
    axes={"width": NAP_WIDTHS},
    settings={"archs": TRAINED_ARCHS, "region_seeds": REGION_SEEDS, "random_nets": RANDOM_NETS},
    quick=cli.Overrides(config={"num_epochs": 4, "eval_every_epochs": 2}, axes={"width": (4,)},
                        settings={"archs": ((2, 2),), "region_seeds": 3, "random_nets": 10}))
cli.script(__name__, EXPERIMENT)
