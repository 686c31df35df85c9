"""Rumelhart, Hinton & Williams (1986): backpropagation trains hidden units to solve XOR.

Papers: D. E. Rumelhart, G. E. Hinton and R. J. Williams, "Learning internal representations by
        error propagation", in Parallel Distributed Processing, Vol. 1, ch. 8, pp. 318-362, MIT
        Press, 1986 (XOR pp. 330-334; Chauvin's hidden-unit study p. 333), and "Learning
        representations by back-propagating errors", Nature 323:533-536, 1986.
Claim:  F3: gradient descent with backpropagated errors (the generalised delta rule) trains a
        2-2-1 sigmoid network to solve XOR from random weights; local minima are rare ("only two
        cases" in hundreds of runs, both with two hidden units); one hidden unit with direct
        input-output links solved it in 558 sweeps (eta 0.5); more hidden units learn faster,
        presentations P ~ 280 - 33 log2 H (Chauvin; numbers as recorded in CLAIMS.md C04, V2).
Setup:  as CLAIMS.md C04: sigmoid hidden and output units, summed squared error
        E = 1/2 sum_p (t_p - o_p)^2 over the 4 patterns, full-batch gradient descent with the
        chapter's momentum, dw(t) = -eta dE/dw + alpha dw(t-1), eta = 0.5 (`learning_rate`; 2.0
        on the library's batch-mean sigmoid_mse), alpha = 0.9 (`momentum`; `--set optimizer=sgd`
        drops it), weights AND biases drawn from U(-0.5, 0.5) (biases are weights from an
        always-on unit in the PDP chapter; the library MLP starts biases at 0, hence a dedicated
        pure scan, vmapped over seeds, rather than `make_train`). Nets: 1 hidden unit + direct
        input-output links, and H = 2, 4, 8, 16, 32 hidden units; 200 seeds each, 5000 epochs
        (one epoch = one sweep = one update); every epoch is evaluated. Solved: all 4 outputs on
        the right side of 0.5, i.e. max_p |o_p - t_p| < 0.5 (the stricter < 0.1 is reported too).
        Epochs to solve = number of updates before the first solved evaluation (inf if never);
        medians are over all seeds with unsolved runs as inf. A failed run whose loss moved less
        than 1e-4 over its last 1000 epochs is counted as stuck (local minimum or plateau).
Run:    python -m experiments.rumelhart1986_xor_backprop           # 7 s on 2 CPU cores (measured)
        python -m experiments.rumelhart1986_xor_backprop --quick   # seconds; smoke test only
Expect: (calibration, CLAIMS.md C04) H=2 solves ~96% with median ~270 epochs; median epochs
        ~175, 130, 100, 87 at H = 4, 8, 16, 32, all solved; 1 hidden unit + direct links ~99%
        solved, median ~250 (the chapter's single run: 558).
Pass:   as CLAIMS.md C04, each quantity judged by its 95% paired-bootstrap interval over the 200
        seeds (seed s is the same key in every net; medians count unsolved runs as inf): (1) H=2:
        the fraction of seeds solved within 5000 epochs above 0.85 and the median epochs inside
        [100, 1500]; (2) median(H=b) / median(H=a) below 1 at every step from H=2 to H=32 and
        median(32) / median(2) below 0.6; (3) the largest fraction unsolved over H below 0.10, and
        the fraction unsolved at H=2 minus at H=32 above 0 (rarer with more hidden units; the old
        "no more failures" test was <=, which an interval cannot establish). Added: (4) 1 hidden
        unit + direct links: fraction solved above 0.85; (5) Chauvin's formula: the largest
        |log2(median / (280 - 33 log2 H))| over H below 1, i.e. each median within a factor of 2
        (a loose check: his stopping rule and setup are not recorded here).
Length: longer than most: it trains the PDP nets with its own scan (biases drawn like weights,
        direct input-output links; see Setup), which the library's MLP and trainer do not offer.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from dlfound import claims, cli, plots
from dlfound.config import Config
from dlfound.data import load
from dlfound.errors import ConfigError
from dlfound.stats import describe

BASE = Config(dataset="xor", depth=1, width=2, activation="sigmoid", loss="sigmoid_mse", optimizer="momentum",
              learning_rate=0.5, momentum=0.9, batch_size=4, num_epochs=5000, validation_fraction=0.0)
INIT_RANGE = 0.5  # weights and biases ~ U(-0.5, 0.5)
TOLERANCES = (0.5, 0.1)
STUCK_WINDOW, STUCK_CHANGE = 1000, 1e-4
PDP_DIRECT_SWEEPS = 558  # 1 hidden unit + direct links, eta = 0.5 (PDP p. 331)
MIN_SOLVED, MAX_UNSOLVED, SPEEDUP = 0.85, 0.10, 0.6
MEDIAN_RANGE = (100, 1500)
DIRECT = "1+direct"


def chauvin(hidden: int) -> float:
    """Chauvin's fit reported in PDP ch. 8 (p. 333): presentations to solve XOR, 280 - 33 log2 H."""
    return 280.0 - 33.0 * math.log2(hidden)


def init_net(key, hidden: int, direct: bool, init_range: float = INIT_RANGE) -> dict:
    """Weights and biases ~ U(-init_range, init_range); `direct` adds input->output links D (2,)."""
    shapes = {"W1": (2, hidden), "b1": (hidden,), "W2": (hidden,), "b2": ()}
    if direct:
        shapes["D"] = (2,)
    keys = dict(zip(shapes, jax.random.split(key, len(shapes))))
    return {k: jax.random.uniform(keys[k], shape, jnp.float32, -init_range, init_range)
            for k, shape in shapes.items()}


def net_output(params: dict, x_Bx2):
    """o = sigmoid(sigmoid(x W1 + b1) . W2 + b2 [+ x . D]), shape (B,)."""
    z = jax.nn.sigmoid(x_Bx2 @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    if "D" in params:
        z = z + x_Bx2 @ params["D"]
    return jax.nn.sigmoid(z)


def summed_error(params: dict, x_Bx2, t_B):
    """E = 1/2 sum_p (t_p - o_p)^2 (PDP eq. 2, summed over patterns); also returns the outputs."""
    o = net_output(params, x_Bx2)
    return 0.5 * jnp.sum((t_B - o) ** 2), o


@functools.partial(jax.jit, static_argnames=("hidden", "direct", "num_epochs"))
def train_xor(keys, x_Bx2, t_B, learning_rate, momentum, *, hidden: int, direct: bool, num_epochs: int):
    """One full-batch momentum run per key, vmapped: dw = -lr dE/dw + momentum dw_prev.

    Returns: dict with loss and max_error (K, num_epochs + 1) (index e = after e updates),
    final params and final outputs (K, 4).
    """

    def one(key):
        params = init_net(key, hidden, direct)

        def epoch(carry, _):
            params, velocity = carry
            (loss, out), grads = jax.value_and_grad(summed_error, has_aux=True)(params, x_Bx2, t_B)
            velocity = jax.tree.map(lambda v, g: momentum * v - learning_rate * g, velocity, grads)
            return (jax.tree.map(jnp.add, params, velocity), velocity), (loss, jnp.max(jnp.abs(out - t_B)))

        start = (params, jax.tree.map(jnp.zeros_like, params))
        (params, _), (loss, max_error) = jax.lax.scan(epoch, start, None, length=num_epochs)
        last_loss, last_out = summed_error(params, x_Bx2, t_B)
        last_error = jnp.max(jnp.abs(last_out - t_B))
        return {"loss": jnp.append(loss, last_loss), "max_error": jnp.append(max_error, last_error),
                "params": params, "outputs": last_out}

    return jax.vmap(one)(keys)


def epochs_to_solve(max_error_SxT, tolerance: float) -> np.ndarray:
    """First evaluation index (= updates done) with max error < tolerance, per seed; inf if never."""
    solved = np.asarray(max_error_SxT) < tolerance
    return np.where(solved.any(axis=1), solved.argmax(axis=1), np.inf)


def stuck(loss_SxT, solved_S, window: int = STUCK_WINDOW, change: float = STUCK_CHANGE) -> np.ndarray:
    """Unsolved runs whose loss changed less than `change` over the last `window` epochs."""
    loss = np.asarray(loss_SxT)
    window = min(window, loss.shape[1] - 1)
    return ~np.asarray(solved_S) & (np.abs(loss[:, -1] - loss[:, -1 - window]) < change)


def _momentum(cfg: Config) -> float:
    if cfg.optimizer == "momentum":
        return cfg.momentum
    if cfg.optimizer == "sgd":
        return 0.0
    raise ConfigError(f"optimizer {cfg.optimizer!r} is not used by this experiment; "
                      "valid choices: momentum, sgd")


def _summarise(result) -> dict:
    loss, max_error = np.asarray(result["loss"]), np.asarray(result["max_error"])
    epochs = {tol: epochs_to_solve(max_error, tol) for tol in TOLERANCES}
    solved = np.isfinite(epochs[0.5])
    return {"loss": loss, "epochs": epochs, "median": {tol: float(np.median(e)) for tol, e in epochs.items()},
            "solved": solved, "stuck": stuck(loss, solved), "solved_at_end": max_error[:, -1] < 0.5,
            "outputs": np.asarray(result["outputs"]), "params": jax.tree.map(np.asarray, result["params"])}


def largest_log2_distance(targets: dict):
    """The statistic max over cells of |log2(median / target)|: below 1 means every median is within a
    factor of 2 of its target (`targets`: {cell: target})."""
    def statistic(v):
        with np.errstate(divide="ignore"):
            return np.max(np.stack([np.abs(np.log2(np.median(a, -1) / targets[k])) for k, a in v.items()]), 0)
    return statistic


def _slower(epochs: dict, top: str, bottom: str, threshold: float, label: str = "") -> dict:
    """The effect median epochs(top) / median epochs(bottom), which must lie below `threshold`."""
    return claims.effect(f"median epochs, {top} / {bottom}{label}", claims.median_ratio(top, bottom),
                         {bottom: epochs[bottom], top: epochs[top]}, threshold, higher_passes=False)


def _judge_solves(runs: dict, hidden: tuple, epochs_budget: int, quick: bool) -> list[dict]:
    h2, direct = runs[hidden[0]], runs[DIRECT]
    frac, med = float(h2["solved"].mean()), h2["median"][0.5]
    direct_pct = float(np.mean(direct["epochs"][0.5] <= PDP_DIRECT_SWEEPS))
    key = f"H={hidden[0]}"
    effects = [claims.effect(f"fraction of seeds solved, {key}", claims.mean_of(key), {key: h2["solved"]},
                             MIN_SOLVED)]
    effects += [claims.effect(f"median epochs to solve, {key} ({end} end)", claims.median_of(key),
                              {key: h2["epochs"][0.5]}, bound, higher_passes=end == "low")
                for bound, end in zip(MEDIAN_RANGE, ("low", "high"))]
    direct_effect = claims.effect("fraction of seeds solved, 1 hidden unit + direct links",
                                  claims.mean_of(DIRECT),
                                  {DIRECT: direct["solved"]}, MIN_SOLVED)
    return [
        claims.judge(
            "F3", "Backprop trains a 2-2-1 sigmoid net to solve XOR (Rumelhart, Hinton & Williams 1986)",
            f"H=2 (solved: all outputs within 0.5 of target within {epochs_budget} epochs): the 95% interval "
            f"of the fraction of seeds solved lies above {MIN_SOLVED}, and that of the median epochs to "
            f"solve (unsolved = inf) inside {list(MEDIAN_RANGE)}",
            claims.outcome(effects),
            f"H=2: solved {frac:.1%} of {h2['solved'].size} seeds, median epochs {claims.fmt(med)} "
            f"(tolerance 0.1: {claims.fmt(h2['median'][0.1])}), epochs of solved runs 5-95%: "
            f"{claims.fmt(_quantiles(h2['epochs'][0.5]))}",
            {"solved_fraction": frac, "median_epochs": med, "epochs": h2["epochs"][0.5].tolist()},
            quick=quick, effects=effects),
        claims.judge(
            "F3", "One hidden unit with direct input-output links learns XOR (PDP p. 331: 558 sweeps)",
            f"the 95% interval of the fraction of seeds solved lies above {MIN_SOLVED}",
            claims.outcome([direct_effect]),
            f"solved {direct['solved'].mean():.1%}, median epochs {claims.fmt(direct['median'][0.5])}; "
            f"{direct_pct:.0%} of seeds solve within the chapter's {PDP_DIRECT_SWEEPS} sweeps",
            {"solved_fraction": float(direct["solved"].mean()), "median_epochs": direct["median"][0.5],
             "fraction_within_558": direct_pct}, quick=quick, effects=[direct_effect]),
    ]


def _judge_scaling(runs: dict, hidden: tuple, quick: bool) -> list[dict]:
    med = {h: runs[h]["median"][0.5] for h in hidden}
    fails = {h: int((~runs[h]["solved"]).sum()) for h in hidden}
    stuck_n = {h: int(runs[h]["stuck"].sum()) for h in hidden}
    n = runs[hidden[0]]["solved"].size
    h2, hmax = hidden[0], hidden[-1]
    direct = runs[DIRECT]
    ratios = {h: claims.ratio(med[h], chauvin(h)) for h in hidden}
    finite = [h for h in hidden if np.isfinite(med[h])]
    slope = (float(np.polyfit(np.log2(finite), [med[h] for h in finite], 1)[0])
             if len(finite) > 1 else float("nan"))
    failure_outputs = {h: runs[h]["outputs"][~runs[h]["solved"]][:3].astype(float).round(2).tolist()
                       for h in hidden}
    epochs = {f"H={h}": runs[h]["epochs"][0.5] for h in hidden}
    unsolved = {f"H={h}": (~runs[h]["solved"]).astype(float) for h in hidden}
    faster = [_slower(epochs, f"H={b}", f"H={a}", 1.0) for a, b in itertools.pairwise(hidden)]
    faster.append(_slower(epochs, f"H={hmax}", f"H={h2}", SPEEDUP, " (overall)"))
    pair = {k: unsolved[k] for k in (f"H={h2}", f"H={hmax}")}
    rare = [claims.effect("largest fraction unsolved over H", claims.largest_mean, unsolved, MAX_UNSOLVED,
                          higher_passes=False),
            claims.effect(f"fraction unsolved, H={h2} - H={hmax}", claims.mean_difference(*pair), pair, 0.0)]
    targets = {f"H={h}": chauvin(h) for h in hidden}
    fit = [claims.effect("largest |log2(median epochs / (280 - 33 log2 H))| over H",
                         largest_log2_distance(targets), epochs, 1.0, higher_passes=False)]
    return [
        claims.judge(
            "F3", "More hidden units learn XOR faster",
            f"95% intervals over seeds (unsolved = inf): median(H=b) / median(H=a) epochs to solve below 1 "
            f"at every step from H={h2} to H={hmax}, and median(H={hmax}) / median(H={h2}) below {SPEEDUP}",
            claims.outcome(faster),
            "median epochs to solve: " + ", ".join(f"H={h} {claims.fmt(med[h])}" for h in hidden)
            + f"; ratio H={hmax}/H={h2} {claims.fmt(claims.ratio(med[hmax], med[h2]))}",
            {"median_epochs": med, "median_epochs_tol_0.1": {h: runs[h]["median"][0.1] for h in hidden}},
            quick=quick, effects=faster),
        claims.judge(
            "F3", "Local minima are rare, and rarer with more hidden units",
            f"95% intervals over seeds: the fraction unsolved below {MAX_UNSOLVED} at every H (their "
            f"largest), and fraction unsolved at H={h2} minus at H={hmax} above 0",
            claims.outcome(rare),
            "unsolved (stuck on a plateau) of " + str(n) + ": "
            + ", ".join(f"H={h} {fails[h]} ({stuck_n[h]})" for h in hidden)
            + f", 1+direct {int((~direct['solved']).sum())} ({int(direct['stuck'].sum())}); final outputs of "
            f"failed H={h2} runs (patterns 00, 01, 10, 11): {failure_outputs[h2]}",
            {"unsolved": fails, "stuck": stuck_n, "failure_outputs": failure_outputs},
            quick=quick, effects=rare),
        claims.judge(
            "F3", "Chauvin's scaling P ~ 280 - 33 log2 H (PDP p. 333)",
            "median epochs (unsolved = inf) within a factor of 2 of 280 - 33 log2 H at every H: the 95% "
            "interval of the largest |log2(median / (280 - 33 log2 H))| over H lies below 1",
            claims.outcome(fit),
            "measured / Chauvin: " + ", ".join(f"H={h} {claims.fmt(med[h])}/{chauvin(h):.0f}" for h in hidden)
            + f"; fitted slope {claims.fmt(slope)} epochs per doubling of H (Chauvin -33)",
            {"ratio": ratios, "slope_per_doubling": slope}, quick=quick, effects=fit),
    ]


def _quantiles(epochs) -> list:
    finite = np.asarray(epochs)[np.isfinite(epochs)]
    return np.percentile(finite, [5, 95]).tolist() if finite.size else [math.nan, math.nan]


def _label(name) -> str:
    return name if name == DIRECT else f"H={name}"


def _score(params):
    """Output minus 1/2 at 2-D points (class 1 where the net says > 0.5)."""
    return lambda p: np.asarray(net_output(params, jnp.asarray(p, jnp.float32))) - 0.5


def _plots(ctx, runs: dict, hidden: tuple, x, t) -> None:
    stride = max(1, runs[DIRECT]["loss"].shape[1] // 1000)
    epochs = np.arange(runs[DIRECT]["loss"].shape[1])[::stride]
    plots.curves_with_bands(ctx.run_dir.file("loss_curves.png"), epochs,
                            {_label(k): r["loss"][:, ::stride] for k, r in runs.items()},
                            "epoch (sweep)", "summed squared error", "XOR: training error", logy=True)
    series = {f"median epochs to solve (tol {tol})": np.array([[runs[h]["median"][tol] for h in hidden]])
              for tol in TOLERANCES}
    series["Chauvin 280 - 33 log2 H"] = np.array([[chauvin(h) for h in hidden]])
    plots.lines(ctx.run_dir.file("epochs_vs_hidden_units.png"), np.array(hidden), series, "hidden units H",
                "epochs", "XOR: epochs to solve vs hidden units", logx=True)
    panels = []
    for name in (hidden[0], hidden[-1], DIRECT):
        r = runs[name]
        for label, pick in (("solved", r["solved"]), ("failed", ~r["solved"])):
            if pick.any():
                i = int(np.argmax(pick))
                params = jax.tree.map(lambda a, i=i: a[i], r["params"])
                panels.append((f"{_label(name)}: seed #{i} {label}", x, t, _score(params)))
    plots.decision_regions(ctx.run_dir.file("decision_regions.png"), panels,
                           "Trained XOR nets: region where the output > 0.5", ncols=3, pad=0.5)


def _net_metrics(r: dict) -> dict:
    return {"solved_fraction": float(r["solved"].mean()), "solved_at_end": float(r["solved_at_end"].mean()),
            "unsolved": int((~r["solved"]).sum()), "stuck": int(r["stuck"].sum()),
            "median_epochs": {str(tol): m for tol, m in r["median"].items()},
            "epochs_solved": {str(tol): describe(e[np.isfinite(e)]) for tol, e in r["epochs"].items()},
            "final_loss_unsolved": r["loss"][~r["solved"], -1].tolist()}


def run(ctx: cli.Context) -> dict:
    cfg, hidden = ctx.cfg, ctx.settings["hidden"]
    data = load(cfg.dataset, validation_fraction=0.0)
    x, t = jnp.asarray(data.x_train, jnp.float32), jnp.asarray(data.y_train, jnp.float32)
    keys = jax.vmap(jax.random.key)(jnp.asarray(list(ctx.seeds), jnp.uint32))
    momentum = _momentum(cfg)
    nets = {DIRECT: (1, True), **{h: (h, False) for h in hidden}}
    runs = {name: _summarise(train_xor(keys, x, t, cfg.learning_rate, momentum, hidden=units, direct=direct,
                                       num_epochs=cfg.num_epochs))
            for name, (units, direct) in nets.items()}
    verdicts = _judge_solves(runs, hidden, cfg.num_epochs, ctx.quick)
    verdicts += _judge_scaling(runs, hidden, ctx.quick)
    _plots(ctx, runs, hidden, np.asarray(x), np.asarray(t))
    metrics = {
        "setup": {"learning_rate": cfg.learning_rate, "momentum": momentum, "epochs": cfg.num_epochs,
                  "seeds": len(ctx.seeds), "init": f"U(-{INIT_RANGE}, {INIT_RANGE}) weights and biases",
                  "error": "summed over the 4 patterns"},
        "nets": {str(name): _net_metrics(r) for name, r in runs.items()},
        "chauvin": {h: chauvin(h) for h in hidden},
    }
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Rumelhart, Hinton & Williams (1986)", claim_ids=("F3",),
    name="rumelhart1986_xor_backprop", description=__doc__, base=BASE, run=run, default_seeds=200,
    settings={"hidden": (2, 4, 8, 16, 32)},
    quick=cli.Overrides(config={"num_epochs": 400}, settings={"hidden": (2, 4)}))
cli.script(__name__, EXPERIMENT)
