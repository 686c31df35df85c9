"""Ioffe & Szegedy (2015): batch normalization makes sigmoid and deep MLPs train faster and better.

Paper:  S. Ioffe and C. Szegedy, "Batch normalization: accelerating deep network training by
        reducing internal covariate shift", ICML 2015 (Sec. 4.1, Fig. 1: MNIST, 3 fully connected
        hidden layers of 100 sigmoid units, batch 60, 50k steps; Sec. 4.2: BN allows much higher
        learning rates, and a sigmoid Inception trains with BN (69.8%) but stays at chance without).
Claim:  T5: with batch normalization before every hidden nonlinearity, the same MLP at the same
        learning rate reaches a higher test accuracy in fewer steps, and it trains over a wider
        range of learning rates, for sigmoid and for deep ReLU MLPs.
Setup:  MNIST-1D with all 4000 training examples, inputs standardized; plain SGD, batch 60,
        ~5000 steps, evaluated every ~130 steps; learning rates 0.02, 0.1, 0.5, 2.5 vmapped
        (0.1 and 0.5 are CLAIMS.md C12's), 9 seeds; each net with and without BN (`norm="batch"`:
        Dense -> BN -> activation, batch statistics in training, running averages (momentum 0.9)
        at evaluation). Nets: the paper's 40-100-100-100-10 sigmoid MLP with LeCun init (N(0, 1/fan_in):
        0.1^2 for the 100-wide layers, the paper's "small random Gaussian values"); a deep sigmoid
        MLP, 10 x 64 with Glorot init (the analogue of the paper's sigmoid Inception, which stayed at
        chance without BN); and a deep ReLU MLP, 10 x 64 with He init. Budgets are set in steps
        (num_epochs follows from the dataset). A diverged model counts with its recorded accuracy
        (its NaN outputs predict one class: about chance) and never reaches a target. Longer than
        most experiments: three nets, each judged on two criteria with per-rate evidence.
Run:    python -m experiments.ioffe2015_batchnorm            # 3.3 min on 2 CPU cores (measured)
        python -m experiments.ioffe2015_batchnorm --quick    # seconds; smoke test only
        python -m experiments.ioffe2015_batchnorm --dataset fashion_mnist   # 2.3 min (measured)
Fashion-MNIST column: 6,000 training images (train_fraction 0.1), ~2000 steps (100 per epoch),
        evaluated every ~400 steps on the subset and the 10,000 test images: a step costs ~2.6x
        MNIST-1D's (784 inputs), so the run fits the same time; the same rates and thresholds.
Expect: (CLAIMS.md C12 calibration) sigmoid without BN never reaches 50% test accuracy at lr 0.1
        or 0.5 (final ~0.35-0.48); with BN it does in ~1000-2000 steps and ends near 0.68-0.70.
        The deep sigmoid net stays at chance without BN at every rate and reaches ~0.7 test with
        it; the deep ReLU net without BN trains at 0.02 and 0.1 and collapses at 0.5 and 2.5,
        with BN it trains at all four rates and ends ~0.1 higher in test accuracy.
Pass:   every quantity's 95% paired-bootstrap interval over seeds clears its threshold:
        (1) sigmoid 3 x 100, at lr 0.1 and at 0.5: mean(BN - no-BN final test accuracy) > +0.10,
        BN's median steps to 50% test accuracy < 3000 and no-BN's > 3000 (CLAIMS.md C12 Pass);
        (2) for each net, BN trains at more of the learning rates: mean over seeds of (number of
        rates at which the seed reaches the net's train-accuracy target (sigmoids 0.75, ReLU 0.8)
        without diverging, BN minus no BN) > 0;
        (3) for each net, each at its best rate: BN's best (over rates) median steps to the train
        target / no-BN's < 1, and BN's best median final test accuracy - no-BN's > 0 (the paper
        compares BN at its higher rates with the baseline at its own: 14x fewer steps, higher
        accuracy); the best rate is picked inside every bootstrap resample.
        At equal small rates BN can be slower for the He-initialized ReLU net (calibration:
        lr 0.02, 0.90 vs 0.995 train accuracy after 5000 steps); the verdicts print every rate.
"""

from __future__ import annotations

import math

import numpy as np

from dlfound import claims, cli, plots
from dlfound.config import Config, step_budget
from dlfound.data import load
from dlfound.stats import describe
from dlfound.sweep import Sweep, run_sweeps
from dlfound.table import Table

BASE = Config(dataset="mnist1d", depth=3, width=100, activation="sigmoid", init="lecun", optimizer="sgd",
              learning_rate=0.1, batch_size=60, num_epochs=76, eval_every_epochs=2, validation_fraction=0.0)
# name -> (structural settings, train-accuracy target for the stability criterion)
NETS = {
    "sigmoid": ({"depth": 3, "width": 100, "activation": "sigmoid", "init": "lecun"}, 0.75),
    "deep_sigmoid": ({"depth": 10, "width": 64, "activation": "sigmoid", "init": "glorot"}, 0.75),
    "relu": ({"depth": 10, "width": 64, "activation": "relu", "init": "he"}, 0.80),
}
PAPER_RATES = (0.1, 0.5)  # CLAIMS.md C12
NORMS = (None, "batch")
SETTINGS = {"steps": 5000, "eval_steps": 132, "nets": tuple(NETS), "learning_rates": (0.02, 0.1, 0.5, 2.5)}
TEST_TARGET, TEST_TARGET_STEPS = 0.5, 3000  # C12: BN reaches 50% test within 3000 steps


def _axes(net: str, norm) -> dict:
    """The grid axes of one net with or without BN (its cell in the sweep)."""
    return {"activation": NETS[net][0]["activation"], "depth": NETS[net][0]["depth"], "norm": norm}


def _name(net: str) -> str:
    return "{depth} x {width} {activation}".format(**NETS[net][0])


def _label(norm) -> str:
    return "BN" if norm == "batch" else "no BN"


def _net_summary(table: Table, net: str, lrs) -> dict:
    """Per norm and learning rate: steps to the train target, final accuracies, divergence."""
    out = {}
    for norm in NORMS:
        at = _axes(net, norm)
        out[_label(norm)] = {lr: {
            "steps_to_train_target": table.steps_to("train_accuracy", NETS[net][1], learning_rate=lr, **at),
            "steps_to_test_50": table.steps_to("test_accuracy", TEST_TARGET, learning_rate=lr, **at),
            "final_test": table.final("test_accuracy", learning_rate=lr, **at),
            "final_train": table.final("train_accuracy", learning_rate=lr, **at),
            "diverged": ~np.all(np.isfinite(table.history("train_loss", learning_rate=lr, **at)), axis=1),
        } for lr in lrs}
    return out


def _judge_paper(summary: dict, lrs, quick: bool) -> dict:
    rates = [lr for lr in PAPER_RATES if lr in lrs]
    effects, parts = [], []
    for lr in rates:
        bn, plain = summary["BN"][lr], summary["no BN"][lr]
        effects += [
            claims.effect(f"BN - no-BN final test accuracy, lr {lr}", claims.mean_difference("BN", "no BN"),
                          {"BN": bn["final_test"], "no BN": plain["final_test"]}, 0.10),
            claims.effect(f"BN median steps to {TEST_TARGET:.0%} test, lr {lr}", claims.median_of("BN"),
                          {"BN": bn["steps_to_test_50"]}, TEST_TARGET_STEPS, higher_passes=False),
            claims.effect(f"no-BN median steps to {TEST_TARGET:.0%} test, lr {lr}", claims.median_of("no BN"),
                          {"no BN": plain["steps_to_test_50"]}, TEST_TARGET_STEPS)]
        parts.append(f"lr {lr}: final test BN {claims.fmt(bn['final_test'])} vs no BN "
                     f"{claims.fmt(plain['final_test'])}; steps to 50% test BN "
                     f"{claims.fmt(bn['steps_to_test_50'])} vs no BN {claims.fmt(plain['steps_to_test_50'])}")
    return claims.judge(
        "T5", "BN makes the paper's 3 x 100 sigmoid MLP reach a higher test accuracy, faster, at the same "
        "learning rate (Ioffe & Szegedy 2015, Fig. 1a)",
        f"at lr {' and '.join(map(str, rates))}, 95% intervals over seeds: mean(BN - no-BN final test "
        f"accuracy) above +0.10, BN's median steps to {TEST_TARGET:.0%} test accuracy below "
        f"{TEST_TARGET_STEPS} and no-BN's above it (a target never reached counts as infinitely many steps)",
        claims.outcome(effects), "; ".join(parts),
        {str(lr): {k: {n: summary[k][lr][n].tolist() for n in ("final_test", "steps_to_test_50")}
                   for k in summary} for lr in rates}, quick=quick, effects=effects)


def _trains(entry: dict) -> np.ndarray:
    """Per seed: reached the train target and never diverged."""
    return np.isfinite(entry["steps_to_train_target"]) & ~np.asarray(entry["diverged"], dtype=bool)


def rates_that_train(by_lr: dict) -> np.ndarray:
    """Per seed, the number of learning rates at which it reaches the train target without diverging."""
    return np.sum([_trains(entry) for entry in by_lr.values()], axis=0).astype(float)


def _judge_stability(summary: dict, net: str, lrs, quick: bool) -> dict:
    target = NETS[net][1]
    ok = {k: [lr for lr in lrs if np.all(_trains(summary[k][lr]))] for k in summary}
    counts = {k: rates_that_train(summary[k]) for k in summary}
    effects = [claims.effect(f"{_name(net)}: BN - no-BN rates that train per seed",
                             claims.mean_difference("BN", "no BN"), counts, 0.0)]
    return claims.judge(
        "T5", f"BN trains the {_name(net)} MLP over a wider range of learning rates (Ioffe & Szegedy 2015, "
        "Sec. 3.3: BN enables higher learning rates)",
        f"95% interval over seeds of the mean of (number of learning rates of {list(lrs)} at which the seed "
        f"reaches {target:.0%} train accuracy without diverging, BN minus no BN) lies above 0",
        claims.outcome(effects),
        f"rates that train in every seed: BN {ok['BN']} vs no BN {ok['no BN']}; mean rates per seed: BN "
        f"{claims.fmt(counts['BN'].mean())} vs no BN {claims.fmt(counts['no BN'].mean())}; median final "
        "train accuracy by rate: "
        + "; ".join(f"lr {lr}: BN {claims.fmt(np.median(summary['BN'][lr]['final_train']))}, no BN "
                    f"{claims.fmt(np.median(summary['no BN'][lr]['final_train']))}"
                    + (" (diverged)" if np.any(summary['no BN'][lr]['diverged']) else "") for lr in lrs),
        {"rates_that_train": ok, "rates_that_train_per_seed": {k: v.tolist() for k, v in counts.items()},
         "median_final_train": {k: {str(lr): float(np.median(summary[k][lr]["final_train"])) for lr in lrs}
                                for k in summary}}, quick=quick, effects=effects)


def best_over_rates(v: dict, label: str, lrs, best) -> np.ndarray:
    """`best` (np.min or np.max) over rates of the median over seeds of cells "<label> <lr>", per resample."""
    return best(np.stack([np.median(v[f"{label} {lr}"], -1) for lr in lrs]), axis=0)


def _best_effects(summary: dict, net: str, lrs) -> list[dict]:
    cells = lambda name: {f"{k} {lr}": summary[k][lr][name] for k in summary for lr in lrs}

    def steps_ratio(v):
        with np.errstate(invalid="ignore", divide="ignore"):
            return best_over_rates(v, "BN", lrs, np.min) / best_over_rates(v, "no BN", lrs, np.min)

    test_gain = lambda v: best_over_rates(v, "BN", lrs, np.max) - best_over_rates(v, "no BN", lrs, np.max)
    return [claims.effect(f"{_name(net)}: best median steps to train target, BN / no BN", steps_ratio,
                          cells("steps_to_train_target"), 1.0, higher_passes=False),
            claims.effect(f"{_name(net)}: best median final test accuracy, BN - no BN", test_gain,
                          cells("final_test"), 0.0)]


def _judge_best_rate(summary: dict, net: str, lrs, quick: bool) -> dict:
    target = NETS[net][1]
    medians = lambda name: {k: {lr: float(np.median(summary[k][lr][name])) for lr in lrs} for k in summary}
    steps, test = medians("steps_to_train_target"), medians("final_test")
    best_steps = {k: min(v.values()) for k, v in steps.items()}
    best_test = {k: max(v.values()) for k, v in test.items()}
    effects = _best_effects(summary, net, lrs)
    return claims.judge(
        "T5", f"With BN the {_name(net)} MLP, each at its best learning rate, trains faster and reaches a "
        "higher test accuracy (Ioffe & Szegedy 2015, Sec. 4.2)",
        f"95% intervals over seeds (the best rate picked in every resample): best median steps to "
        f"{target:.0%} train, BN / no BN, below 1 (a target never reached counts as infinitely many steps); "
        "best median final test accuracy, BN - no BN, above 0",
        claims.outcome(effects),
        f"best median steps: BN {claims.fmt(best_steps['BN'])} vs no BN {claims.fmt(best_steps['no BN'])}; "
        f"best median final test: BN {claims.fmt(best_test['BN'])} vs no BN "
        f"{claims.fmt(best_test['no BN'])}; at equal rates (median steps to target, final test): "
        + "; ".join(f"lr {lr}: BN {claims.fmt(steps['BN'][lr])}, {claims.fmt(test['BN'][lr])} vs no BN "
                    f"{claims.fmt(steps['no BN'][lr])}, {claims.fmt(test['no BN'][lr])}" for lr in lrs),
        {"median_steps": {k: {str(lr): v for lr, v in d.items()} for k, d in steps.items()},
         "median_final_test": {k: {str(lr): v for lr, v in d.items()} for k, d in test.items()}}, quick=quick,
        effects=effects)


def _plots(ctx, table: Table, nets, lrs) -> None:
    for net in nets:
        plots.curves_with_bands(
            ctx.run_dir.file(f"{net}_test_accuracy.png"), table.steps(**_axes(net, None)),
            {f"{_label(n)}, lr {lr}": table.history("test_accuracy", learning_rate=lr, **_axes(net, n))
             for n in NORMS for lr in lrs},
            "step", "test accuracy", f"{_name(net)} MLP with and without batch norm",
            hlines={f"T5 target {TEST_TARGET:.0%}": TEST_TARGET} if net == "sigmoid" else None)
        plots.lines(
            ctx.run_dir.file(f"{net}_final_train_accuracy_vs_lr.png"), np.array(lrs),
            {_label(n): np.stack([table.final("train_accuracy", learning_rate=lr, **_axes(net, n))
                                  for lr in lrs], axis=1) for n in NORMS},
            "learning rate", "final train accuracy", f"{_name(net)} MLP: stability across learning rates",
            logx=True, hlines={f"T5 train target {NETS[net][1]:.0%}": NETS[net][1]})


def _metric(name: str, values: np.ndarray):
    if name == "diverged":
        return int(np.sum(values))
    return values.tolist() if name.startswith("steps") else describe(values)


def run(ctx: cli.Context) -> dict:
    nets, lrs, budget = ctx.settings["nets"], ctx.settings["learning_rates"], ctx.settings
    data = load(ctx.cfg.dataset, validation_fraction=ctx.cfg.validation_fraction, seed=ctx.cfg.seed)
    num_train = math.ceil(ctx.cfg.train_fraction * data.num_train)  # the subset the sweep trains on
    cfgs = {net: step_budget(ctx.cfg.replace(**NETS[net][0]), num_train, budget["steps"],
                             budget["eval_steps"]) for net in nets}
    sweeps = [Sweep(cfgs[net], {k: (v,) for k, v in _axes(net, None).items()} | {"norm": NORMS},
                    {"learning_rate": lrs}) for net in nets]
    table = run_sweeps(sweeps, data, ctx.seeds, ctx.run_dir, quiet=ctx.quiet)
    summaries = {net: _net_summary(table, net, lrs) for net in nets}
    verdicts = [_judge_paper(summaries["sigmoid"], lrs, ctx.quick)] if "sigmoid" in nets else []
    for net in nets:
        verdicts.append(_judge_stability(summaries[net], net, lrs, ctx.quick))
        verdicts.append(_judge_best_rate(summaries[net], net, lrs, ctx.quick))
    _plots(ctx, table, nets, lrs)
    metrics = {net: {label: {str(lr): {name: _metric(name, values) for name, values in entry.items()}
                             for lr, entry in by_lr.items()} for label, by_lr in summary.items()}
               for net, summary in summaries.items()}
    metrics["configs"] = {net: cfg.to_dict() for net, cfg in cfgs.items()}
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Ioffe & Szegedy (2015)", claim_ids=("T5",),
    name="ioffe2015_batchnorm", description=__doc__, base=BASE, run=run, default_seeds=9, settings=SETTINGS,
    quick=cli.Overrides(settings={"steps": 132, "eval_steps": 66, "nets": ("sigmoid",),
                                  "learning_rates": PAPER_RATES}),
    datasets={"fashion_mnist": cli.Overrides(config={"train_fraction": 0.1},
                                             settings={"steps": 2000, "eval_steps": 400})})
cli.script(__name__, EXPERIMENT)
