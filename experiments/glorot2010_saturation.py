"""Glorot & Bengio (2010): the standard init saturates a deep sigmoid net's top layer; normalized init helps.

Paper:  X. Glorot and Y. Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010: the "standard" init W ~ U(-1/sqrt(n), 1/sqrt(n)) (eq. 1), Fig. 2
        (mean activation per layer of a 4-layer sigmoid net along training) and Table 1 (test error
        with the "normalized" init W ~ U(+-sqrt(6 / (n_in + n_out))), eq. 16, "N": tanh 27.15% ->
        15.60% on Shapeset-3x2, softsign 16.27% -> 16.06%).
Claims: T1 (CLAIMS.md C08 design A): in a 4-layer sigmoid MLP with the standard init the top hidden
        layer saturates towards 0 while the lower layers stay near 0.5.
        T4 (C08 design B): the normalized init beats the standard one for tanh and softsign at depth 5.
Setup:  MNIST-1D with all 4000 training examples (no validation carve), inputs standardized; plain
        SGD with batch 10 (the paper's), 8 seeds vmapped; one sweep whose cells are named by depth,
        activation and init. (A) 4 x 256 sigmoid, std_uniform init, lr 0.1, 2000 steps; the mean
        activation of every hidden layer on 512 training inputs every 400 steps. (B) 5 x 256 tanh and
        softsign, std_uniform vs glorot ("N"), lr 0.05, 4800 steps (CLAIMS.md's CI length; the
        calibration used 10k), evaluated every 400. Budgets are set in steps (`config.step_budget`).
Run:    python -m experiments.glorot2010_saturation            # 1.0 min on 2 CPU cores (measured)
        python -m experiments.glorot2010_saturation --quick    # seconds; smoke test only
Expect: (C08 calibration) the top layer's mean falls to ~0.1 by step 2000 while the lower layers
        stay at ~0.5 and training accuracy stays at chance; tanh N beats tanh by ~10 points.
Pass:   T1: at the first evaluation at or after step 2000, the 95% paired-bootstrap intervals over
        seeds of: the mean top-layer activation below 0.15, every lower layer's mean above 0.49, the
        smallest rise between consecutive lower layers' means above 0 (layer 3 > 2 > 1), the mean
        train accuracy below 0.2 (C08 Pass A). T4: the interval of mean(N - standard test accuracy)
        above 0.05 for tanh and for softsign (C08 Pass B; its third item, sigmoid at depth 5 near
        chance, is T1's and shown by part A).
"""

from __future__ import annotations

import numpy as np

from dlfound import claims, cli, plots
from dlfound.config import Config, step_budget
from dlfound.data import load
from dlfound.stats import describe
from dlfound.sweep import Sweep, axes_of, labelled, run_sweeps
from dlfound.table import Table

BASE = Config(dataset="mnist1d", depth=4, width=256, activation="sigmoid", init="std_uniform",
              optimizer="sgd", learning_rate=0.1, batch_size=10, validation_fraction=0.0)
SETTINGS = {  # "*steps" become num_epochs / eval_every_epochs per dataset (config.step_budget)
    "saturation_steps": 2000, "saturation_eval_steps": 400,
    "table1": {"depth": 5, "width": 256, "learning_rate": 0.05},
    "table1_activations": ("tanh", "softsign"), "table1_steps": 4800, "table1_eval_steps": 400,
}
SATURATED, UNSATURATED = 0.15, 0.49  # T1: top-layer mean below, lower layers' means at least
INITS = ("std_uniform", "glorot")  # Table 1: standard, normalized ("N")
AXES = ("depth", "activation", "init")  # every cell names them: the parts are told apart in one table


def configs(cfg: Config, budget: dict, num_train: int) -> dict[str, Config]:
    """Each part's config with its step budget."""
    def part(name, changes):
        steps, eval_steps = budget[f"{name}_steps"], budget[f"{name}_eval_steps"]
        return step_budget(cfg.replace(**changes), num_train, steps, eval_steps)
    return {"saturation": part("saturation", {}), "table1": part("table1", budget["table1"])}


def at(cfg: Config, **axes) -> dict:
    """A cell's axes: the part's depth, activation and init unless `axes` names others."""
    return axes_of(cfg, AXES, **axes)


def sweeps(cfgs: dict, acts) -> list[Sweep]:
    """Both parts as one sweep: every cell carries depth, activation and init, so they are told apart."""
    return [labelled(cfgs["saturation"], AXES),
            labelled(cfgs["table1"], AXES, activation=tuple(acts), init=INITS)]


def _judge_saturation(table: Table, cfg: Config, at_step: int, quick: bool) -> tuple[dict, dict]:
    axes, steps = at(cfg), table.steps(**at(cfg))
    index = int(np.argmax(steps >= at_step)) if np.any(steps >= at_step) else len(steps) - 1
    means = np.stack([table.history("activation_mean", layer=i, **axes)[:, index] for i in range(cfg.depth)],
                     axis=1)
    acc = table.history("train_accuracy", **axes)[:, index]
    top, lower = means[:, -1], means[:, :-1]
    effects = [claims.effect("mean top-layer activation", claims.mean_of("top"), {"top": top}, SATURATED,
                             higher_passes=False),
               claims.effect_of_rows("smallest lower layer's mean activation",
                                     lambda v: np.min(v["lower"].mean(-2), -1), {"lower": lower},
                                     UNSATURATED)]
    if lower.shape[1] > 1:
        effects.append(claims.effect_of_rows("smallest rise of the mean activation between lower layers",
                                             lambda v: np.min(np.diff(v["lower"].mean(-2), axis=-1), -1),
                                             {"lower": lower}, 0.0))
    effects.append(claims.effect("mean train accuracy", claims.mean_of("acc"), {"acc": acc}, 0.2,
                                 higher_passes=False))
    verdict = claims.judge(
        "T1", "The top hidden layer of a deep sigmoid MLP with standard init saturates towards 0 while the "
        "lower layers stay near 0.5 (Glorot & Bengio 2010, Fig. 2)",
        f"at step {int(steps[index])}, 95% intervals over seeds: the top layer's mean activation below "
        f"{SATURATED:g}; every lower layer's above {UNSATURATED:g}; each lower layer's above the one below "
        "it (the smallest rise above 0); train accuracy below 0.2",
        claims.outcome(effects),
        "mean activation per layer (input to output), seed-median: "
        + claims.fmt(np.median(means, axis=0)) + f"; top layer per seed {claims.fmt(top)}; train accuracy "
        f"{claims.fmt(acc)}",
        {"step": int(steps[index]), "layer_means": means.tolist(), "train_accuracy": acc.tolist()},
        quick=quick, effects=effects)
    return verdict, {"step": int(steps[index]), "layer_means_median": np.median(means, axis=0).tolist()}


def _judge_table1(table: Table, cfg: Config, acts, quick: bool) -> dict:
    effects, parts, numbers = [], [], {}
    for act in acts:
        std = table.final("test_accuracy", **at(cfg, activation=act, init="std_uniform"))
        norm = table.final("test_accuracy", **at(cfg, activation=act, init="glorot"))
        effects.append(claims.effect(f"{act}: normalized - standard init test accuracy",
                                     claims.mean_difference("N", "standard"), {"N": norm, "standard": std},
                                     0.05))
        parts.append(f"{act}: N {claims.fmt(norm)} vs standard {claims.fmt(std)}")
        numbers[act] = {"normalized": norm.tolist(), "standard": std.tolist()}
    return claims.judge(
        "T4", "Normalized (Glorot) init beats the standard U(+-1/sqrt(n)) init for tanh and softsign at "
        "depth 5 (Glorot & Bengio 2010, Table 1)",
        "95% interval over seeds of mean(normalized - standard init test accuracy) above +0.05, for each "
        "activation",
        claims.outcome(effects), "test accuracy per seed: " + "; ".join(parts), numbers, quick=quick,
        effects=effects)


def _plots(ctx, table: Table, cfgs: dict, acts) -> None:
    sat = cfgs["saturation"]
    plots.curves_with_bands(
        ctx.run_dir.file("sigmoid_saturation.png"), table.steps(**at(sat)),
        {f"layer {i + 1}": table.history("activation_mean", layer=i, **at(sat)) for i in range(sat.depth)},
        "step", "mean activation", "Sigmoid MLP, standard init: mean activation per layer",
        hlines={f"T1: top layer < {SATURATED:g}": SATURATED,
                f"T1: lower layers >= {UNSATURATED:g}": UNSATURATED})
    runs = {f"{a} {'N' if i == 'glorot' else 'standard'}": at(cfgs["table1"], activation=a, init=i)
            for a in acts for i in INITS}
    plots.curves_with_bands(
        ctx.run_dir.file("normalized_init_test_accuracy.png"), table.steps(**runs[f"{acts[0]} N"]),
        {label: table.history("test_accuracy", **axes) for label, axes in runs.items()},
        "step", "test accuracy", f"Depth {cfgs['table1'].depth}: normalized vs standard init")


def run(ctx: cli.Context) -> dict:
    budget, acts = ctx.settings, tuple(ctx.settings["table1_activations"])
    data = load(ctx.cfg.dataset, validation_fraction=ctx.cfg.validation_fraction, seed=ctx.cfg.seed)
    cfgs = configs(ctx.cfg, budget, data.num_train)
    table = run_sweeps(sweeps(cfgs, acts), data, ctx.seeds, ctx.run_dir, quiet=ctx.quiet)
    saturation, sat_metrics = _judge_saturation(table, cfgs["saturation"], budget["saturation_steps"],
                                                ctx.quick)
    verdicts = [saturation, _judge_table1(table, cfgs["table1"], acts, ctx.quick)]
    _plots(ctx, table, cfgs, acts)
    final = lambda a, i: describe(table.final("test_accuracy", **at(cfgs["table1"], activation=a, init=i)))
    metrics = {"saturation": sat_metrics,
               "table1_test_accuracy": {f"activation={a},init={i}": final(a, i) for a in acts for i in INITS},
               "configs": {name: cfg.to_dict() for name, cfg in cfgs.items()}}
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Glorot & Bengio (2010)", claim_ids=("T1", "T4"),
    name="glorot2010_saturation", description=__doc__, base=BASE, run=run, default_seeds=8,
    settings=SETTINGS, quick=cli.Overrides(
        config={"depth": 2, "width": 16},
        settings={"saturation_steps": 400, "table1": {**SETTINGS["table1"], "depth": 2, "width": 16},
                  "table1_activations": ("tanh",), "table1_steps": 400}))
cli.script(__name__, EXPERIMENT)
