"""Srivastava et al. (2014): dropout reduces overfitting in a wide MLP.

Paper:  N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever and R. Salakhutdinov, "Dropout:
        A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15 (2014) 1929-1958,
        Sec. 6.1.1 and Table 2 (MNIST: a standard 2 x 800 net 1.60% test error; dropout
        3 x 1024 ReLU nets 1.25%, 1.06% with max-norm), Fig. 4.
Claim:  T8: dropout (retain probability 0.5 for hidden units) shrinks the gap between
        training and test performance and lowers test error of a wide MLP that overfits.
Setup:  MNIST-1D (3600 training examples: a wide net memorizes them), 40-512-512-10 ReLU with
        He init, Adam lr 1e-3, batch 128, 108 epochs (3024 steps), evaluation every 12 epochs;
        dropout on both hidden layers (not on the inputs; no max-norm) at rates {0, 0.5}
        vmapped with 16 seeds in one compiled ensemble of 32 models. Seed s shares its
        initialization and batch order across rates (paired). Accuracies are measured in
        inference mode (no dropout) on the whole split. The intermediate rates of the dose
        curve (--grid dropout_rate=0,0.1,0.2,0.3,0.4,0.5) are left out of the default budget
        so that 16 seeds fit; they are not judged.
        Fashion-MNIST column (--dataset fashion_mnist): the same net on 784 inputs, trained on
        10% of the training split (5400 images, 42 steps/epoch) for 27 epochs (1134 steps),
        evaluated every 9 epochs (2.3x the parameters, and an evaluation there costs 10x
        MNIST-1D's); the thresholds are the same.
Run:    python -m experiments.srivastava2014_dropout            # 3.5 min on 2 CPU cores (measured)
        python -m experiments.srivastava2014_dropout --quick    # seconds; smoke test only
        python -m experiments.srivastava2014_dropout --dataset fashion_mnist   # 2.4 min (measured)
        python -m experiments.srivastava2014_dropout --grid dropout_rate=0,0.1,0.2,0.3,0.4,0.5
            # the dose curve (3x the default's models)
Expect: every rate fits the training set (train accuracy ~1.0); test accuracy rises with the
        rate (CLAIMS.md calibration at 6000 steps: 0.63-0.67 without dropout, 0.72-0.73 at
        0.2, 0.76-0.78 at 0.5), and the train/test gap falls. Measured with this code at 3024
        steps (3 seeds, all six rates): mean test accuracy 0.622, 0.673, 0.708, 0.727, 0.733,
        0.734 for rates 0..0.5, paired gain at 0.5 of 10-12 points; gap 0.378 -> 0.261. With
        16 seeds (rates 0 and 0.5): test accuracy 0.633 -> 0.737, mean paired gain +10.4 points
        [9.7, 11.0], gap 0.367 -> 0.259, shrinkage 0.108 [0.101, 0.114]: reproduced. On
        real handwritten digits the gain at 0.5 is only +1 to +2 points (issue 14), so the
        Fashion column may well not clear the 5-point margin.
Pass:   (a) (CLAIMS.md C13) the 95% paired-bootstrap interval over seeds of the mean paired
        gain in test accuracy, dropout 0.5 minus no dropout, lies above +5 points (the old
        "in every seed" rule on the interval of the mean); (b) the interval of the mean
        shrinkage of the train - test accuracy gap (no dropout minus dropout 0.5) lies above 0.
        A diverged model counts at its recorded accuracy.
"""

from __future__ import annotations

import numpy as np

from dlfound import claims, cli, plots
from dlfound.config import Config
from dlfound.data import load
from dlfound.errors import ConfigError
from dlfound.stats import describe
from dlfound.sweep import Sweep, Table, run_sweep

BASE = Config(dataset="mnist1d", depth=2, width=512, activation="relu", optimizer="adam",
              learning_rate=1e-3, batch_size=128, num_epochs=108, eval_every_epochs=12)
DROPOUT_RATES = (0.0, 0.5)
MARGIN = 0.05  # dropout 0.5 beats no dropout by >= 5 points of test accuracy (mean over seeds)


def by_rate(table: Table, metric: str, rates) -> np.ndarray:
    """Final `metric`, seeds x rates."""
    return np.stack([table.final(metric, dropout_rate=r) for r in rates], axis=1)


def paired_gain(with_SxR, rates, rate: float) -> np.ndarray:
    """Per seed: the value at `rate` minus the value without dropout (rate 0)."""
    rates = list(rates)
    return with_SxR[:, rates.index(rate)] - with_SxR[:, rates.index(0.0)]


def _columns(values_SxR, rates) -> dict:
    """{"0": per-seed values at rate 0, "0.5": ...}: the paired samples of `claims.effect`."""
    return {f"{r:g}": values_SxR[:, i] for i, r in enumerate(rates)}


def _judge_test(test, rates, quick) -> dict:
    top = max(rates)
    gain = paired_gain(test, rates, top)
    k, n = claims.k_of_n(gain >= MARGIN)
    effect = claims.effect(f"test accuracy gain, dropout {top:g} - none (mean over seeds)",
                           claims.mean_difference(f"{top:g}", "0"), _columns(test, rates), MARGIN)
    return claims.judge(
        "T8", f"Dropout {top:g} raises the test accuracy of a wide MLP (Srivastava et al. 2014)",
        f"95% paired-bootstrap interval over seeds of mean(test accuracy at rate {top:g} - without "
        f"dropout) lies above +{MARGIN * 100:g} points (a diverged model counts at its recorded accuracy)",
        claims.outcome([effect]),
        "mean test accuracy by rate: "
        + ", ".join(f"{r:g}: {claims.fmt(test[:, i].mean())}" for i, r in enumerate(rates))
        + f"; mean paired gain at {top:g} {claims.fmt(gain.mean())} ({k}/{n} seeds >= {MARGIN:g})",
        {"test_accuracy_by_rate": {f"{r:g}": test[:, i].tolist() for i, r in enumerate(rates)},
         "gain": gain.tolist(), "seeds_with_gain_at_least_margin": k}, quick=quick, effects=[effect])


def _judge_gap(gap, train, rates, quick) -> dict:
    top = max(rates)
    shrink = -paired_gain(gap, rates, top)
    k, n = claims.k_of_n(shrink > 0)
    effect = claims.effect(f"train - test accuracy gap shrinkage, none - dropout {top:g} (mean over seeds)",
                           claims.mean_difference("0", f"{top:g}"), _columns(gap, rates), 0.0)
    return claims.judge(
        "T8", "Dropout shrinks the train/test gap (overfitting) of a wide MLP",
        f"95% paired-bootstrap interval over seeds of mean(gap without dropout - gap at rate {top:g}) "
        "lies above 0, where gap = train - test accuracy",
        claims.outcome([effect]),
        "mean train - test accuracy gap by rate: "
        + ", ".join(f"{r:g}: {claims.fmt(gap[:, i].mean())}" for i, r in enumerate(rates))
        + "; mean train accuracy by rate: " + ", ".join(f"{r:g}: {claims.fmt(train[:, i].mean())}"
                                                         for i, r in enumerate(rates))
        + f"; gap shrinks in {k}/{n} seeds",
        {"gap_by_rate": {f"{r:g}": gap[:, i].tolist() for i, r in enumerate(rates)},
         "shrink": shrink.tolist()}, quick=quick, effects=[effect])


def _plots(ctx, table: Table, rates, test, gap) -> None:
    x = np.asarray(rates)
    plots.lines(ctx.run_dir.file("test_error_vs_dropout.png"), x, {"test error": 1 - test},
                "dropout rate", "test error",
                f"{ctx.cfg.depth} x {ctx.cfg.width} ReLU MLP: test error vs dropout rate")
    plots.lines(ctx.run_dir.file("gap_vs_dropout.png"), x, {"train - test accuracy": gap},
                "dropout rate", "train - test accuracy", "Overfitting (generalization gap) vs dropout rate")
    steps = table.steps(dropout_rate=rates[0])
    for metric in ("test_accuracy", "train_loss"):
        plots.curves_with_bands(
            ctx.run_dir.file(f"{metric}_curves.png"), steps,
            {f"dropout {r:g}": table.history(metric, dropout_rate=r) for r in rates},
            "step", metric.replace("_", " "), f"{metric.replace('_', ' ')} by dropout rate",
            logy=metric == "train_loss")


def run(ctx: cli.Context) -> dict:
    rates = ctx.axes["dropout_rate"]
    if 0.0 not in rates:
        raise ConfigError("--grid dropout_rate must include 0: T8 pairs every rate with no dropout")
    data = load(ctx.cfg.dataset, validation_fraction=ctx.cfg.validation_fraction, seed=ctx.cfg.seed)
    table = run_sweep(Sweep(ctx.cfg, {}, {"dropout_rate": rates}), data, ctx.seeds, ctx.run_dir,
                      quiet=ctx.quiet)
    test, train = by_rate(table, "test_accuracy", rates), by_rate(table, "train_accuracy", rates)
    gap = train - test
    verdicts = [_judge_test(test, rates, ctx.quick), _judge_gap(gap, train, rates, ctx.quick)]
    _plots(ctx, table, rates, test, gap)
    metrics = {f"dropout={r:g}": {"test_accuracy": describe(test[:, i]),
                                  "train_accuracy": describe(train[:, i]), "gap": describe(gap[:, i]),
                                  "final_train_loss": describe(table.final("train_loss", dropout_rate=r))}
               for i, r in enumerate(rates)}
    metrics["diverged_models"] = table.diverged_models()
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Srivastava et al. (2014)", claim_ids=("T8",),
    name="srivastava2014_dropout", description=__doc__, base=BASE, run=run, default_seeds=16,
    axes={"dropout_rate": DROPOUT_RATES},
    datasets={"fashion_mnist": cli.Overrides(
        config={"train_fraction": 0.1, "num_epochs": 27, "eval_every_epochs": 9})},
    quick=cli.Overrides(config={"width": 64, "num_epochs": 2, "eval_every_epochs": 1},
                        axes={"dropout_rate": (0.0, 0.5)}))
cli.script(__name__, EXPERIMENT)
