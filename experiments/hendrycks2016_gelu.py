"""Hendrycks & Gimpel (2016): GELU matches or beats ReLU and ELU in a deep MLP trained with Adam.

Paper:  D. Hendrycks and K. Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415
        (2016), Sec. 3.1 and Fig. 2 (MNIST classification).
Claim:  T3: in an 8-layer, 128-unit fully connected net trained with Adam, "the GELU tends to
        have the lowest median training log loss with and without dropout" (Fig. 2; curves
        only, no table; the median of five runs, each nonlinearity at the learning rate of
        {1e-3, 1e-4, 1e-5} that 5k validation examples pick).
Setup:  the paper's net (8 hidden layers x 128, Adam, batch 128) on MNIST-1D, activation {gelu, relu,
        elu} (packed into one program on a CPU), each at its own Adam learning rate tuned per cell:
        the six log-spaced rates 1e-4 .. 3.16e-2 train vmapped with 8 seeds in the same program, the
        validation split's log loss (mean over seeds, at the end of the run) picks the rate, and the
        judged training loss is read at the picked rate. Two runs, to fit the 6 x 8 models per
        activation in the budget: without dropout a short run of 18 epochs (504 steps), judged at its
        end (all three fit the training set by step ~1500, so the paper's no-dropout curves differ
        early; the rate is tuned for this short run); with dropout 0.2 on every hidden layer 24 epochs
        (672 steps; 36 before the 60-minute reproduction budget, and the untuned version ran 3024);
        evaluation every 6 epochs. Each unit has its intended init (He for all three; the paper used
        unit-norm rows), and GELU is the exact x * Phi(x) (the paper ran the tanh approximation). The
        paper's dropout 0.5 over 50 MNIST epochs (~21k steps) leaves an 8 x 128 net at chance loss
        (2.30) in 3000 steps here (CLAIMS.md C11), so the dropout setting uses 0.2. "Training loss" is
        the clean (inference-mode) cross- entropy on the whole training set; the with-dropout
        minibatch loss is recorded too. Fashion-MNIST column (--dataset fashion_mnist): the same net
        on 784 inputs (1.8x the parameters), trained on 10% of the training split (5400 images, 42
        steps/epoch): 6 epochs (252 steps) without dropout, 12 epochs (504 steps) with dropout 0.2,
        evaluated every 6 epochs (an evaluation there costs 8x MNIST-1D's); the same rates and
        thresholds.
Run:    python -m experiments.hendrycks2016_gelu            # 3.5 min on 2 CPU cores (measured)
        python -m experiments.hendrycks2016_gelu --quick    # seconds; smoke test only
        python -m experiments.hendrycks2016_gelu --grid dropout_rate=0,0.5   # the paper's rate
        python -m experiments.hendrycks2016_gelu --dataset fashion_mnist     # 3.6 min (measured)
Expect: with dropout 0.2 GELU's final training loss is well below ReLU's and ELU's (CLAIMS.md
        calibration at 3000 steps and lr 1e-3: 0.30-0.36 vs 0.78-0.93). Measured before the
        rates were tuned (5 seeds, lr 1e-3, 3024 steps): with dropout 0.2 GELU 0.29 vs ELU 0.87
        and ReLU 0.91; without dropout at step 504 ELU was ahead (0.0087 vs GELU 0.040, ReLU
        0.10). Measured with this code (8 seeds, tuned): without dropout the validation loss
        picks 1e-2 for all three (the top of the grid: at the rates that fit best, 1e-3, the
        overfit nets' validation loss peaks), median training loss GELU 0.386, ELU 0.514, ReLU
        0.643, GELU / ELU 0.75 [0.59, 0.81]; with dropout 0.2 it picks 3.16e-3 for all three,
        GELU 0.523, ReLU 1.01, ELU 1.05, GELU / ReLU 0.52 [0.47, 0.57] (36 epochs): both reproduced.
        Picked by validation accuracy instead, the no-dropout rates would be 1e-2 (GELU) and 3.16e-3
        (ReLU, ELU), where ELU's 0.134 is below GELU's 0.386: (a) rests on the selection rule.
Pass:   (CLAIMS.md C11, a weak criterion since the paper shows curves only) the 95% paired-
        bootstrap interval over seeds of GELU's median training loss / min(ReLU's, ELU's
        median) lies below 1.2, separately (a) without dropout at the end of the short run
        (step 504; the first evaluation at or after step 500, as before) and (b) with dropout
        0.2 at the end of training; each activation at its validation-picked rate. A diverged
        model's loss counts as +inf. The observed ordering of the medians is reported beside
        each verdict.
"""

from __future__ import annotations

import numpy as np

from dlfound import claims, cli, plots, tuning
from dlfound.config import Config
from dlfound.data import load
from dlfound.errors import ConfigError
from dlfound.stats import describe
from dlfound.sweep import Sweep, Table, run_sweeps

BASE = Config(dataset="mnist1d", depth=8, width=128, activation="gelu", optimizer="adam",
              learning_rate=1e-3, batch_size=128, num_epochs=24, eval_every_epochs=6)
ACTIVATIONS = ("gelu", "relu", "elu")
DROPOUT_RATES = (0.0, 0.2)
# Adam; the paper tuned over {1e-5, 1e-4, 1e-3}. The grid reached 1e-2 first, where all three picks
# landed without dropout (its edge): 3.16e-2 was added.
LEARNING_RATES = tuning.log_spaced(1e-4, 10**-1.5, 6)
TOLERANCE = 1.2  # GELU median <= 1.2 x the best rival's median
SELECT_BY = "val_loss"  # the validation split's log loss picks each cell's learning rate


def ordering(values: dict) -> str:
    """Names sorted by value, lowest first, e.g. 'gelu < elu < relu'."""
    return " < ".join(sorted(values, key=lambda k: values[k]))


def gelu_vs_best(medians: dict) -> tuple[float, str]:
    """GELU's median over the lowest rival median, and that rival's name."""
    rivals = {a: v for a, v in medians.items() if a != "gelu"}
    best = min(rivals, key=rivals.get)
    return claims.ratio(medians["gelu"], rivals[best]), best


def _cell(setting: dict, activation: str) -> dict:
    return {"num_epochs": setting["num_epochs"], "activation": activation,
            "dropout_rate": setting["dropout_rate"]}


def _tune(table: Table, acts, rates, setting: dict) -> dict:
    """Per activation: the learning rate the validation split picks and what it picked from."""
    out = {}
    for a in acts:
        where = _cell(setting, a)
        rate = tuning.pick(table, rates, select_by=SELECT_BY, higher_is_better=False, **where)
        by_rate = {f"{r:g}": float(np.nanmean(table.final(SELECT_BY, learning_rate=r, **where)))
                   for r in rates}
        out[a] = {"learning_rate": rate, "at_grid_edge": tuning.at_grid_edge(rate, rates),
                  f"mean_final_{SELECT_BY}_by_rate": by_rate}
    return out


def _judge(table: Table, acts, setting: dict, tuned: dict, net: str, quick: bool) -> dict:
    """The claim in one setting, judged at the end of its run (the early run ends at the comparison)."""
    where = {a: {**_cell(setting, a), "learning_rate": tuned[a]["learning_rate"]} for a in acts}
    losses = {a: claims.diverged_as_inf(table.final("train_loss", **where[a])) for a in acts}
    medians = {a: float(np.median(v)) for a, v in losses.items()}
    ratio, best = gelu_vs_best(medians)
    step = int(table.steps(**where[acts[0]])[-1])
    rivals = [a for a in acts if a != "gelu"]
    label = setting["label"]
    effect = claims.effect(f"GELU / min({', '.join(rivals)}) median training loss, {label}, step {step}",
                           claims.median_ratio_to_best("gelu", rivals), losses, TOLERANCE,
                           higher_passes=False)
    lrs = {a: tuned[a]["learning_rate"] for a in acts}
    edges = [a for a in acts if tuned[a]["at_grid_edge"]]
    return claims.judge(
        "T3", f"GELU matches or beats ReLU and ELU in a {net} MLP with Adam ({label})",
        f"95% paired-bootstrap interval over seeds of median(GELU training loss) / min over "
        f"{', '.join(rivals)} of their median lies below {TOLERANCE} at step {step}, each activation at "
        f"the Adam learning rate its validation log loss picks from {claims.fmt(list(setting['rates']))} "
        "(a diverged model's loss counts as +inf; weak: the paper shows curves only)",
        claims.outcome([effect]),
        "median train loss " + ", ".join(f"{a} {claims.fmt(m)} (lr {lrs[a]:g})" for a, m in medians.items())
        + f"; GELU / {best} = {claims.fmt(ratio)}; ordering {ordering(medians)}"
        + (f"; picked rate on the grid edge for {', '.join(edges)}" if edges else ""),
        {"step": step, "dropout_rate": setting["dropout_rate"], "num_epochs": setting["num_epochs"],
         "learning_rate": lrs, "grid_edge": edges, "median": medians,
         "per_seed": {a: v.tolist() for a, v in losses.items()},
         "ratio_gelu_to_best": ratio, "ordering": ordering(medians)},
        quick=quick, effects=[effect])


def _summaries(table: Table, acts, settings, tuned: dict) -> dict:
    out = {}
    for key, setting in settings.items():
        for a in acts:
            where = {**_cell(setting, a), "learning_rate": tuned[key][a]["learning_rate"]}
            out[f"{a}/dropout={setting['dropout_rate']:g}/{setting['num_epochs']}_epochs"] = {
                **tuned[key][a],
                f"median_final_train_loss_at_step_{int(table.steps(**where)[-1])}":
                    float(np.median(claims.diverged_as_inf(table.final("train_loss", **where)))),
                "mean_train_loss_over_run": describe(
                    table.history("train_loss", **where)[:, 1:].mean(axis=1)),
                "final_batch_loss": describe(table.final("batch_loss", **where)),
                "final_test_loss": describe(table.final("test_loss", **where)),
                "final_test_accuracy": describe(table.final("test_accuracy", **where)),
            }
    return out


def _plots(ctx, table: Table, acts, settings, tuned: dict, net: str) -> None:
    for key, setting in settings.items():
        rate, rates = setting["dropout_rate"], setting["rates"]
        where = {a: {**_cell(setting, a), "learning_rate": tuned[key][a]["learning_rate"]} for a in acts}
        steps = table.steps(**where[acts[0]])
        name = f"dropout{rate:g}_{key}"
        for metric, ylabel in (("train_loss", "training loss (clean, whole training set)"),
                               ("test_accuracy", "test accuracy")):
            plots.curves_with_bands(
                ctx.run_dir.file(f"{metric}_{name}.png"), steps,
                {f"{a} (lr {tuned[key][a]['learning_rate']:g})": table.history(metric, **where[a])
                 for a in acts},
                "step", ylabel,
                f"{net} MLP, Adam at the tuned rate, dropout {rate:g}: {metric.replace('_', ' ')}",
                logy=metric == "train_loss")
        by_rate = {a: np.stack([table.final(SELECT_BY, learning_rate=r, **_cell(setting, a)) for r in rates],
                               axis=1) for a in acts}
        plots.lines(ctx.run_dir.file(f"lr_tuning_{name}.png"), np.asarray(rates), by_rate,
                    "learning rate", f"final {SELECT_BY.replace('_', ' ')}",
                    f"dropout {rate:g}, {setting['num_epochs']} epochs: validation loss picks the rate",
                    logx=True, logy=True)


def _dropout(rate: float) -> str:
    return "without dropout" if rate == 0 else f"with dropout {rate:g}"


def settings_of(cfg: Config, dropout_rates, early_epochs: int, early_every: int, rates) -> dict:
    """The two trained settings: a short run to the early comparison step with the first dropout
    rate, and the full run with the last one (its label names where it is judged)."""
    if not early_epochs < cfg.num_epochs:
        raise ConfigError(f"num_epochs={cfg.num_epochs} must exceed the early run's {early_epochs} epochs: "
                          "T3 judges the first dropout rate early and the last at the end of a longer run")
    if early_epochs % early_every:
        raise ConfigError(f"the early run's evaluation interval {early_every} must divide its "
                          f"{early_epochs} epochs")
    first, last = dropout_rates[0], dropout_rates[-1]
    return {"early": {"num_epochs": early_epochs, "eval_every_epochs": early_every, "dropout_rate": first,
                      "rates": tuple(rates), "label": f"{_dropout(first)}, early training"},
            "final": {"num_epochs": cfg.num_epochs, "eval_every_epochs": cfg.eval_every_epochs,
                      "dropout_rate": last, "rates": tuple(rates),
                      "label": f"{_dropout(last)}, end of training"}}


def run(ctx: cli.Context) -> dict:
    acts, dropout_rates = ctx.axes["activation"], ctx.axes["dropout_rate"]
    if "gelu" not in acts or len(acts) < 2:
        raise ConfigError("--grid activation must include gelu and another: T3 compares GELU with the others")
    rates = tuple(ctx.settings["learning_rates"])
    settings = settings_of(ctx.cfg, dropout_rates, ctx.settings["early_epochs"],
                           ctx.settings["early_eval_every_epochs"], rates)
    data = load(ctx.cfg.dataset, validation_fraction=ctx.cfg.validation_fraction, seed=ctx.cfg.seed)
    sweeps = [Sweep(ctx.cfg.replace(num_epochs=s["num_epochs"], eval_every_epochs=s["eval_every_epochs"]),
                    {"num_epochs": (s["num_epochs"],), "activation": acts},
                    {"dropout_rate": (s["dropout_rate"],), "learning_rate": rates})
              for s in settings.values()]
    table = run_sweeps(sweeps, data, ctx.seeds, ctx.run_dir, quiet=ctx.quiet)
    tuned = {key: _tune(table, acts, rates, s) for key, s in settings.items()}
    net = f"depth-{ctx.cfg.depth}, width-{ctx.cfg.width}"
    verdicts = [_judge(table, acts, s, tuned[key], net, ctx.quick) for key, s in settings.items()]
    _plots(ctx, table, acts, settings, tuned, net)
    metrics = {
        "tuned_learning_rate": {f"{key}/{a}": tuned[key][a]["learning_rate"]
                                for key in settings for a in acts},
        "learning_rates": list(rates), "select_by": SELECT_BY,
        "by_activation": _summaries(table, acts, settings, tuned),
        "init_by_activation": {a: ctx.cfg.replace(activation=a).resolved_init for a in acts},
        "diverged_models": table.diverged_models(),
    }
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Hendrycks & Gimpel (2016)", claim_ids=("T3",),
    name="hendrycks2016_gelu", description=__doc__, base=BASE, run=run, default_seeds=8,
    axes={"activation": ACTIVATIONS, "dropout_rate": DROPOUT_RATES},
    settings={"learning_rates": LEARNING_RATES, "early_epochs": 18, "early_eval_every_epochs": 6},
    datasets={"fashion_mnist": cli.Overrides(
        config={"train_fraction": 0.1, "num_epochs": 12, "eval_every_epochs": 6},
        settings={"early_epochs": 6, "early_eval_every_epochs": 6})},
    quick=cli.Overrides(config={"depth": 2, "num_epochs": 2, "eval_every_epochs": 1},
                        axes={"activation": ("gelu", "relu")},
                        settings={"learning_rates": LEARNING_RATES[1:4], "early_epochs": 1,
                                  "early_eval_every_epochs": 1}))
cli.script(__name__, EXPERIMENT)
