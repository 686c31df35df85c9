"""Cybenko (1989); Hornik et al. (1989): one hidden layer approximates any continuous function.

Papers: Cybenko (1989), "Approximation by superpositions of a sigmoidal function", Math. Control
        Signals Systems 2; Hornik, Stinchcombe & White (1989), "Multilayer feedforward networks
        are universal approximators", Neural Networks 2; Leshno, Lin, Pinkus & Schocken (1993),
        "Multilayer feedforward networks with a nonpolynomial activation function can
        approximate any function" (ReLU included); Barron (1993) for the O(1/width) rate.
Claim:  F6: finite sums sum_j a_j sigma(w_j x + b_j) are dense in C([a, b]): a one-hidden-layer
        net approximates any continuous target, and its best error falls as the width grows.
        The theorems say nothing about training; here the "best" error at a width is the best
        over 12 seeds of a net trained with Adam, and the verdicts carry its uncertainty over
        seeds (a 95% paired bootstrap: the seeds are resampled alike at every width).
Setup:  Four continuous 1-D targets on [-1, 1] (`dlfound.data` regression tasks, 256 uniform
        training and 256 test points): sin(3 pi x) (three periods), |x|, a Gaussian bump of
        width 0.1, and a steep logistic step (sharpness 50). One hidden layer of width 2, 4,
        ..., 512 (one compile per width; the targets reuse the compiled program), ReLU with He
        init, MSE, full-batch Adam at C05's constant lr 1e-2, 4000 steps, 12 seeds (the 2-core
        budget: until the 12-seed revision, widths went to 1024 and lr 3e-3 was tried too, at 3
        seeds). The input is (x, 1): the library starts biases at zero, which puts every ReLU's
        knot at x = 0; the constant feature gives each unit a random bias (knots at -w2/w1,
        spread over the domain), the role of the random biases in the C05 design. Test MSE is
        2 x the library's test loss (which is half the squared error); a diverged net's is inf.
Run:    python -m experiments.cybenko1989_universal_approximation   # 1.7 min on 2 CPU cores (measured)
        python -m experiments.cybenko1989_universal_approximation --quick   # seconds; smoke test only
        python -m experiments.cybenko1989_universal_approximation --set activation=tanh
Expect: best test MSE falls by 2-4 orders of magnitude from width 2 to width 64, then flattens
        near 1e-5 (Adam's noise floor and the 256-point sample: from width 256 on the net has
        as many units as training points or more), so the log-log slope over 2..512 stays
        negative. |x| is two ReLUs (|x| = relu(x) + relu(-x)): width 2 can fit it exactly (a
        few seeds find it), a control showing that a target inside the class needs no width.
Pass:   C05's criterion, on C05's widths 2..64, for every target that is not exactly a width-2
        net of the activation (declared up front: |x| for ReLU, the logistic step for tanh and
        sigmoid), each on the 95% paired-bootstrap interval over seeds of a statistic of the
        best MSE over seeds: best MSE(64) / best MSE(2) below 1e-2; the rises of the best MSE
        from 2 to 64 below 1.5 (at most one violation of non-increasing); the least-squares
        slope of log MSE on log width over all widths 2..512 below 0. For the in-class
        targets: the max over widths of best MSE / Var(y) below 1e-4. (A best over seeds never
        resamples below the seeds' best: its interval starts at the estimate and ends near the
        3rd-4th best seed, so a pass needs several good seeds, not one.)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dlfound import claims, cli, plots
from dlfound.config import Config
from dlfound.data import load
from dlfound.data.dataset import Dataset
from dlfound.sweep import Sweep, run_sweep
from dlfound.table import Table

BASE = Config(dataset="sin", depth=1, width=2, activation="relu", loss="mse", optimizer="adam",
              learning_rate=1e-2, batch_size=256, num_epochs=4000,
              eval_every_epochs=1000, validation_fraction=0.0)
# name -> dlfound.data options; every target is continuous on [-1, 1]
TARGETS = {"sin": {"frequency": 3.0}, "abs": {}, "bump": {"width": 0.1}, "step": {"sharpness": 50.0}}
IN_CLASS = {"relu": ("abs",), "leaky_relu": ("abs",), "tanh": ("step",), "sigmoid": ("step",)}
WIDTHS = tuple(2**j for j in range(1, 10))
LEARNING_RATES = (1e-2,)  # C05's
NUM_POINTS = 256
FIT_WIDTHS = (2, 8, 64, 512)
RATIO, VIOLATIONS, IN_CLASS_NMSE = 1e-2, 1, 1e-4
RATE_WIDTH = 64  # C05 judges widths 2..64; wider nets show the floor


def with_constant_feature(x: np.ndarray) -> np.ndarray:
    """(x, 1): the second column gives every first-layer unit an effective random bias."""
    return np.concatenate([x, np.ones_like(x)], axis=1).astype(np.float32)


def target_data(name: str, num_points: int = NUM_POINTS) -> Dataset:
    """The 1-D regression task `name` on [-1, 1] with inputs (x, 1) and no validation split."""
    d = load(name, validation_fraction=0.0, num_examples=num_points, num_test=num_points, **TARGETS[name])
    return Dataset(with_constant_feature(d.x_train), d.y_train, with_constant_feature(d.x_val), d.y_val,
                   with_constant_feature(d.x_test), d.y_test, name=name, num_classes=0)


def loglog_slope(widths, mse):
    """Least-squares slope of log10 MSE against log10 width; `mse` (..., W) gives one slope per row."""
    x = np.log10(np.asarray(widths, np.float64))
    x = x - x.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log10(np.asarray(mse, np.float64))
        slope = (y * x).sum(-1) / (x * x).sum()
    return float(slope) if np.ndim(slope) == 0 else slope


def best_curve(v: dict, widths) -> np.ndarray:
    """Best MSE over seeds per width: {"w=W": (R, S)} -> (R, W), the statistic's common core."""
    return np.stack([v[f"w={w}"].min(-1) for w in widths], -1)


def best_ratio(v: dict, small: int, large: int) -> np.ndarray:
    """Best MSE over seeds at width `large` over that at width `small`, per resample (R,)."""
    curve = best_curve(v, (small, large))
    with np.errstate(divide="ignore", invalid="ignore"):
        return curve[:, 1] / curve[:, 0]


def rises(curve: np.ndarray) -> np.ndarray:
    """How often a curve (..., W) goes up from one width to the next."""
    return (np.diff(curve, axis=-1) > 0).sum(-1)


def best_fits(table: Table, targets, widths, x_plot: np.ndarray) -> dict:
    """Per (target, width in FIT_WIDTHS): predictions on `x_plot` of the member with the lowest test loss."""
    fits = {}
    for t in targets:
        for w in (w for w in widths if w in FIT_WIDTHS):
            best = int(np.argmin(table.final("test_loss", dataset=t, width=w)))
            models = table.models(dataset=t, width=w)
            y = models.module().apply(models.one(best), jnp.asarray(with_constant_feature(x_plot[:, None])))
            fits[t, w] = np.asarray(y[:, 0])
    return fits


def _judge(per_seed, variances, activation, widths, quick) -> list[dict]:
    in_class = [t for t in per_seed if t in IN_CLASS.get(activation, ())]
    rate_targets = [t for t in per_seed if t not in in_class]
    small, mid = widths[0], RATE_WIDTH if RATE_WIDTH in widths else widths[-1]
    upto = widths.index(mid) + 1
    effects, parts, numbers = [], [], {}
    for t in rate_targets:
        samples = {f"w={w}": per_seed[t][:, i] for i, w in enumerate(widths)}
        mse = best_curve({k: v[None] for k, v in samples.items()}, widths)[0]
        effects += [
            claims.effect(f"{t}: best MSE(w={mid}) / best MSE(w={small})",
                          lambda v: best_ratio(v, small, mid), samples, RATIO, higher_passes=False),
            claims.effect(f"{t}: rises of the best MSE along widths {small}..{mid}",
                          lambda v: rises(best_curve(v, widths[:upto])), samples, VIOLATIONS + 0.5,
                          higher_passes=False),
            claims.effect(f"{t}: log-log slope of the best MSE, widths {small}..{widths[-1]}",
                          lambda v: loglog_slope(widths, best_curve(v, widths)), samples, 0.0,
                          higher_passes=False)]
        ratio, slope = claims.ratio(mse[upto - 1], mse[0]), loglog_slope(widths, mse)
        up = int(rises(mse[:upto]))
        parts.append(f"{t}: MSE {claims.fmt(mse[0])} (w={small}) -> {claims.fmt(mse[upto - 1])} "
                     f"(w={mid}) -> {claims.fmt(mse[-1])} (w={widths[-1]}), ratio {claims.fmt(ratio)}, "
                     f"{up} rises up to w={mid}, slope {slope:.2f}")
        numbers[t] = {"best_mse": mse.tolist(), "ratio": ratio, "rises": up, "slope": slope}
    out = [claims.judge(
        "F6", "One hidden layer approximates continuous functions, with error falling as width grows "
              "(Cybenko 1989; Hornik et al. 1989)",
        f"per target, 95% paired-bootstrap intervals over seeds of statistics of the best MSE over seeds "
        f"(each seed at its better learning rate): best MSE({mid}) / best MSE({small}) below {RATIO:g}; "
        f"rises along widths {small}..{mid} below {VIOLATIONS + 0.5:g} (at most {VIOLATIONS}); log-log "
        f"slope over {small}..{widths[-1]} below 0",
        claims.outcome(effects) if effects else None,
        "; ".join(parts) or "no target outside the width-2 class",
        {"widths": list(widths), **numbers}, quick=quick, effects=effects)]
    if in_class:
        effects = [claims.effect(
            f"{t}: max over widths of best MSE / Var(y)",
            lambda v, t=t: best_curve(v, widths).max(-1) / variances[t],
            {f"w={w}": per_seed[t][:, i] for i, w in enumerate(widths)}, IN_CLASS_NMSE, higher_passes=False)
            for t in in_class]
        nmse = {t: per_seed[t].min(0) / variances[t] for t in in_class}
        out.append(claims.judge(
            "F6", f"A target inside the class ({', '.join(in_class)} for {activation}) is fit at every width",
            f"95% paired-bootstrap interval over seeds of max over widths of best MSE over seeds / Var(y) "
            f"below {IN_CLASS_NMSE:g}",
            claims.outcome(effects),
            "; ".join(f"{t}: max MSE/Var(y) over widths {claims.fmt(v.max())} (w={widths[int(np.argmax(v))]})"
                      for t, v in nmse.items()),
            {t: {"best_mse": per_seed[t].min(0).tolist(), "variance": variances[t]} for t in in_class},
            quick=quick, effects=effects))
    return out


def _plots(ctx, best, per_seed, widths, fits, datasets, x_plot) -> None:
    plots.lines(ctx.run_dir.file("mse_vs_width.png"), np.asarray(widths), {t: v for t, v in best.items()},
                "hidden units", "best test MSE (seeds x learning rates)",
                "One hidden layer: approximation error vs width", logx=True, logy=True)
    plots.lines(ctx.run_dir.file("mse_vs_width_per_seed.png"), np.asarray(widths), per_seed,
                "hidden units", "test MSE, best learning rate per seed (mean ± std over seeds)",
                "Error vs width, spread over seeds", logx=True, logy=True)
    for target, data in datasets.items():
        x = np.asarray(data.x_test[:, 0])
        order = np.argsort(x)
        series = {f"{target} (test points)": np.interp(x_plot, x[order], np.asarray(data.y_test[order, 0]))}
        series.update({f"width {w}": fits[target, w] for w in FIT_WIDTHS if (target, w) in fits})
        plots.curves_with_bands(ctx.run_dir.file(f"fits_{target}.png"), x_plot, series, "x", "f(x)",
                                f"{target}: best one-hidden-layer fits by width")


def best_mse(table: Table, targets, widths) -> dict:
    """Per target: test MSE (S, W) per seed (in the run's seed order) and width, at the better learning
    rate of each seed."""
    per_seed = {}
    for t in targets:
        mse_LxWxS = np.stack([[2 * table.final("test_loss", dataset=t, width=w, learning_rate=r)
                               for w in widths] for r in LEARNING_RATES])
        mse_LxWxS = np.where(np.isfinite(mse_LxWxS), mse_LxWxS, np.inf)  # a diverged net counts as inf
        per_seed[t] = mse_LxWxS.min(0).T
    return per_seed


def run(ctx: cli.Context) -> dict:
    targets, widths = ctx.settings["targets"], ctx.axes["width"]
    datasets = {t: target_data(t) for t in targets}
    x_plot = np.linspace(-1.0, 1.0, 401)
    sweep = Sweep(ctx.cfg, {"dataset": targets, "width": widths}, {"learning_rate": LEARNING_RATES})
    table = run_sweep(sweep, lambda cfg: datasets[cfg.dataset], ctx.seeds, ctx.run_dir, quiet=ctx.quiet)
    per_seed = best_mse(table, targets, widths)
    best = {t: v.min(0) for t, v in per_seed.items()}
    variances = {t: float(np.var(np.asarray(d.y_test))) for t, d in datasets.items()}
    verdicts = _judge(per_seed, variances, ctx.cfg.activation, list(widths), ctx.quick)
    _plots(ctx, best, per_seed, widths, best_fits(table, targets, widths, x_plot), datasets, x_plot)
    metrics = {"widths": list(widths), "learning_rates": list(LEARNING_RATES),
               "best_test_mse": {t: v.tolist() for t, v in best.items()},
               "best_test_mse_over_variance": {t: (v / variances[t]).tolist() for t, v in best.items()},
               "loglog_slope": {t: loglog_slope(widths, v) for t, v in best.items()},
               "test_mse_by_seed": {t: v.tolist() for t, v in per_seed.items()},
               "target_variance": variances, "activation": ctx.cfg.activation,
               "init": ctx.cfg.resolved_init}
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Cybenko (1989); Hornik et al. (1989)", claim_ids=("F6",),
    name="cybenko1989_universal_approximation", description=__doc__, base=BASE, run=run, default_seeds=12,
    axes={"width": WIDTHS}, settings={"targets": tuple(TARGETS)},
    quick=cli.Overrides(config={"num_epochs": 4, "eval_every_epochs": 2}, axes={"width": (2, 8)},
                        settings={"targets": ("sin", "abs")}))
cli.script(__name__, EXPERIMENT)
