"""He et al. (2016): plain nets degrade with depth; residual connections remove the degradation.

Paper:  K. He, X. Zhang, S. Ren and J. Sun, "Deep residual learning for image recognition",
        CVPR 2016 (Sec. 4.1, Table 2 and Fig. 4: ImageNet top-1 error plain-18 27.94 vs plain-34
        28.54, ResNet-18 27.88 vs ResNet-34 25.03; "the 34-layer plain net has higher *training*
        error throughout the whole training procedure", with BN, so not a vanishing-gradient
        effect; Fig. 1 and 6: the same on CIFAR-10).
Claim:  T6: at a fixed training budget, a deeper plain MLP reaches a higher training loss than a
        shallower one (degradation), while the same MLP with identity shortcuts does not degrade
        the same way and beats the plain net at every large depth.
Setup:  MNIST-1D with all 4000 training examples, inputs standardized. Plain: h <- ReLU(BN(W h + b));
        residual (`residual=True`): h <- h + ReLU(BN(W h + b)) for every layer after the first
        (whose width differs from the input's). He init, width 64, depth 4, 8, 16, 32, 64 hidden
        layers, SGD with momentum 0.9, batch 128, ~2500 steps, learning rates 0.003 and 0.03
        vmapped with 3 seeds. Each (net, depth) is scored at its better learning rate (lowest
        median final training loss over seeds), so no depth loses for want of a smaller step:
        the residual stream's scale grows with depth (the library's block has no branch scaling),
        and deep residual nets need a smaller rate. Training loss in inference mode (BN running
        averages) on the whole training set. Budgets are set in steps.
Run:    python -m experiments.he2016_residual            # ~3.5 min on 2 CPU cores
        python -m experiments.he2016_residual --quick    # seconds; smoke test only
        python -m experiments.he2016_residual --dataset fashion_mnist   # full size: same steps and
            widths on 784 inputs; every evaluation passes 70k images (longer on CPU; fine on a GPU)
Expect: (calibration at width 64, 3000 steps) plain: loss ~0.01 at depth 4, ~1.0-1.3 at 32, ~2.1 at 64
        (chance 2.30); residual: ~0.01 at 4, ~0.015-0.02 at 32, ~0.1 at 64. With the default ~2500
        steps: plain 0.016 / 0.027 / 0.22 / 1.31 / 2.24 and residual 0.018 / 0.006 / 0.046 / 0.042 /
        0.19 at depth 4 / 8 / 16 / 32 / 64 (seed medians); criterion (3) is the tightest (10.7 vs 13.9).
Pass:   in every seed, at each cell's best learning rate (CLAIMS.md C15 Pass, extended to depth 64):
        (1) degradation: plain final train loss at depth 32 >= 5 x at depth 4, and at depth 64 >= at 32;
        (2) residual fixes it: residual loss < 0.5 x plain loss at depth 32 and at depth 64;
        (3) residual degrades far less: residual(64) / residual(4) < 0.1 x plain(64) / plain(4)
        (seed medians).
"""

from __future__ import annotations

import numpy as np

from dlfound import claims, cli, plots
from dlfound.config import Config
from dlfound.data import load
from dlfound.sweep import Sweep, Table, cell_id, run_sweep

BASE = Config(dataset="mnist1d", depth=16, width=64, activation="relu", init="he", norm="batch",
              optimizer="momentum", learning_rate=0.003, momentum=0.9, batch_size=128, num_epochs=80,
              eval_every_epochs=8, validation_fraction=0.0)
DEPTHS = (4, 8, 16, 32, 64)
LEARNING_RATES = (0.003, 0.03)
BUDGET = {"depths": DEPTHS, "learning_rates": LEARNING_RATES, "steps": 2500, "eval_steps": 248,
          "shallow": 4, "deep": (32, 64)}
QUICK = {"depths": (2, 3), "learning_rates": LEARNING_RATES, "steps": 62, "eval_steps": 31,
         "shallow": 2, "deep": (3,)}
DEGRADATION = 5.0  # C15: plain L=32 >= 5 x plain L=4
FIX = 0.5  # C15: residual L=32 < 0.5 x plain L=32


def budget_config(cfg: Config, num_train: int, steps: int, eval_steps: int) -> Config:
    """`cfg` with num_epochs and eval_every_epochs giving about `steps` steps, evaluated every ~`eval_steps`."""
    per_epoch = max(1, num_train // cfg.batch_size)
    every = max(1, round(eval_steps / per_epoch))
    evals = max(1, round(steps / (every * per_epoch)))
    return cfg.replace(num_epochs=every * evals, eval_every_epochs=every)


def _cell(residual: bool, depth: int) -> str:
    return cell_id({"residual": residual, "depth": depth})


def best_rate(final_loss_by_rate: dict) -> float:
    """The learning rate with the lowest median final loss over seeds (non-finite counts as +inf)."""
    def score(values):
        values = np.where(np.isfinite(values), values, np.inf)
        return float(np.median(values))
    return min(final_loss_by_rate, key=lambda lr: (score(final_loss_by_rate[lr]), lr))


def _at_best(table: Table, residual: bool, depth: int, lrs) -> tuple[float, np.ndarray]:
    cell = _cell(residual, depth)
    by_rate = {lr: table.final("train_loss", learning_rate=lr, cell=cell) for lr in lrs}
    lr = best_rate(by_rate)
    return lr, np.where(np.isfinite(by_rate[lr]), by_rate[lr], np.inf)


def _judge(best: dict, budget: dict, quick: bool) -> list[dict]:
    shallow, deep = budget["shallow"], budget["deep"]
    loss = {k: v[1] for k, v in best.items()}
    mid, deepest = deep[0], deep[-1]
    degrade = bool(np.all(loss[(False, mid)] >= DEGRADATION * loss[(False, shallow)])
                   and np.all(loss[(False, deepest)] >= loss[(False, mid)]))
    per_depth = lambda res: ", ".join(
        f"L={d} {claims.fmt(np.median(loss[(res, d)]))} (lr {best[(res, d)][0]:g})" for d in budget["depths"])
    a = claims.judge(
        "T6", "A deeper plain MLP (with BN) reaches a higher training loss at the same budget: degradation "
        "(He et al. 2016, Table 2 and Fig. 4)",
        f"in every seed, at each depth's best learning rate: plain loss at depth {mid} >= {DEGRADATION:g} x at depth "
        f"{shallow}, and at depth {deepest} >= at depth {mid}",
        degrade,
        f"median final train loss (best lr), plain: {per_depth(False)}; per seed L={shallow} "
        f"{claims.fmt(loss[(False, shallow)])}, L={mid} {claims.fmt(loss[(False, mid)])}, L={deepest} "
        f"{claims.fmt(loss[(False, deepest)])}",
        {f"plain_L{d}": loss[(False, d)].tolist() for d in budget["depths"]}, quick=quick)
    fixed = bool(all(np.all(loss[(True, d)] < FIX * loss[(False, d)]) for d in deep))
    b = claims.judge(
        "T6", "Identity shortcuts remove the degradation: the residual MLP beats the plain one at large depth "
        "(He et al. 2016, Table 2: ResNet-34 25.03 vs plain-34 28.54)",
        f"in every seed, at each cell's best learning rate: residual loss < {FIX:g} x plain loss at depth "
        + " and ".join(map(str, deep)),
        fixed,
        f"median final train loss (best lr), residual: {per_depth(True)}; per seed at "
        + "; ".join(f"L={d}: residual {claims.fmt(loss[(True, d)])} vs plain {claims.fmt(loss[(False, d)])}"
                    for d in deep),
        {f"residual_L{d}": loss[(True, d)].tolist() for d in budget["depths"]}, quick=quick)
    growth = {res: claims.ratio(np.median(loss[(res, deepest)]), np.median(loss[(res, shallow)]))
              for res in (False, True)}
    c = claims.judge(
        "T6", "The residual MLP's training loss grows far less with depth than the plain MLP's",
        f"median loss ratio depth {deepest} / depth {shallow}: residual < 0.1 x plain",
        bool(growth[True] < 0.1 * growth[False]),
        f"loss ratio L={deepest}/L={shallow}: residual {claims.fmt(growth[True])}, plain {claims.fmt(growth[False])}",
        {"residual_growth": growth[True], "plain_growth": growth[False]}, quick=quick)
    return [a, b, c]


def _plots(ctx, table: Table, best: dict, budget: dict) -> None:
    depths = np.array(budget["depths"])
    plots.lines(ctx.run_dir.file("train_loss_vs_depth.png"), depths,
                {name: np.stack([best[(res, d)][1] for d in budget["depths"]], axis=1)
                 for name, res in (("plain", False), ("residual", True))},
                "hidden layers", "final train loss (best lr)", "Degradation: plain vs residual MLP",
                logx=True, logy=True)
    deepest = budget["depths"][-1]
    series = {}
    for name, res in (("plain", False), ("residual", True)):
        for d in (budget["shallow"], deepest):
            lr = best[(res, d)][0]
            series[f"{name} L={d} (lr {lr:g})"] = table.history("train_loss", learning_rate=lr, cell=_cell(res, d))
    plots.curves_with_bands(ctx.run_dir.file("train_loss_curves.png"), table.steps(cell=_cell(False, deepest)), series,
                            "step", "train loss", "Training loss at each cell's best learning rate", logy=True)


def run(ctx: cli.Context) -> dict:
    budget = {**BUDGET, **QUICK} if ctx.quick else BUDGET
    lrs = budget["learning_rates"]
    data = load(ctx.cfg.dataset, validation_fraction=ctx.cfg.validation_fraction, seed=ctx.cfg.seed)
    cfg = budget_config(ctx.cfg, data.num_train, budget["steps"], budget["eval_steps"])
    sweep = Sweep(cfg, {"residual": (False, True), "depth": budget["depths"]}, {"learning_rate": lrs})
    sweep.cells()  # validate every cell before anything compiles
    table = run_sweep(sweep, data, ctx.seeds, ctx.run_dir, quiet=ctx.quiet)
    best = {(res, d): _at_best(table, res, d, lrs) for res in (False, True) for d in budget["depths"]}
    verdicts = _judge(best, budget, ctx.quick)
    _plots(ctx, table, best, budget)
    metrics = {
        "best_learning_rate": {_cell(r, d): v[0] for (r, d), v in best.items()},
        "final_train_loss_at_best_lr": {_cell(r, d): v[1].tolist() for (r, d), v in best.items()},
        "final_train_loss_by_lr": {_cell(r, d): {str(lr): table.final("train_loss", learning_rate=lr, cell=_cell(r, d))
                                                 .tolist() for lr in lrs} for r in (False, True)
                                   for d in budget["depths"]},
        "final_train_accuracy_at_best_lr": {
            _cell(r, d): table.final("train_accuracy", learning_rate=v[0], cell=_cell(r, d)).tolist()
            for (r, d), v in best.items()},
        "final_test_accuracy_at_best_lr": {
            _cell(r, d): table.final("test_accuracy", learning_rate=v[0], cell=_cell(r, d)).tolist()
            for (r, d), v in best.items()},
        "config": cfg.to_dict(),
    }
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    name="he2016_residual", description=__doc__, base=BASE, default_seeds=3, run=run)
cli.script(__name__, EXPERIMENT)
