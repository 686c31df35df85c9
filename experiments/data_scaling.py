"""Performance grows with data: test accuracy vs training-set size, deep and shallow MLP vs logistic.

Source: the seeds ("performance improves with more data"); no single paper. Context: the MNIST-1D
        benchmark (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024:
        logistic regression ~32%, MLP ~68% with all 4000 training examples).
Claim:  T11: test accuracy rises with the number of training examples for every model, and the
        MLPs' advantage over logistic regression grows with data (a linear model saturates early;
        a flexible model keeps turning data into accuracy).
Setup:  MNIST-1D, all 4000 training examples (no validation carve), nested subsets of 1, 2, 5,
        10, 20, 50 and 100% (`train_fraction`, structural: the first ceil(f n) examples of one
        fixed permutation, so every subset contains the smaller ones and all seeds see the same
        examples; a size below one batch is replaced by the smallest size holding one batch).
        Models (the `depth` axis): logistic regression (depth 0, always run: the baseline), a
        shallow MLP (1 x 128) and a deep MLP (3 x 128), ReLU (He init), Adam lr 1e-3, batch 32,
        13 seeds vmapped per cell (one compile per size x model). Fixed steps, not fixed epochs:
        every size trains for the same number of updates, num_epochs x (batches per epoch of the
        largest size) = 32 x 125 = 4000 steps, so a 1% subset sees 4000 epochs and the full set 32;
        with fixed epochs the small subsets would get a handful of updates and the curve would
        confound data with compute. Final test accuracy, no early stopping. Fashion-MNIST column
        (`--dataset fashion_mnist`, 784 inputs): nested subsets of 0.1 to 10% of the 60,000 images
        (60, 120, 300, 600, 1200, 3000, 6000: MNIST-1D's sizes x 1.5) and 4 epochs of the largest
        (4 x 187 = 748 steps at every size), within the same time.
Run:    python -m experiments.data_scaling            # 1.0 min on 2 CPU cores (measured)
        python -m experiments.data_scaling --quick    # seconds; smoke test only
        python -m experiments.data_scaling --grid depth=1,6   # other MLPs (logistic regression runs too)
        python -m experiments.data_scaling --dataset fashion_mnist   # 1.0 min (measured)
Expect: logistic regression rises from ~18% (1%) and saturates near ~32% from ~20% of the data; the
        MLPs match it on tiny subsets and pull away from ~20%, reaching ~56% (1 x 128) and ~61%
        (3 x 128) with all the data; the deep MLP is no better than the shallow one (1-2 points
        behind) below the full set, and ~5 points ahead with all of it.
Pass:   each criterion on the 95% paired-bootstrap interval over seeds (the same seeds in every
        cell): (a) for each model, the Spearman rank correlation between training-set size and mean
        test accuracy above 0.9, and the mean's rise from the smallest to the largest size above 5
        points; (b) for each MLP, its advantage over logistic regression (difference of mean test
        accuracies) grows with data: its largest fall from one size to any larger size below 2
        points (about twice the seed noise of a 5-seed mean), and its growth from the smallest size
        to the largest above 10 points. The advantage is ~0 within noise on the smallest subsets,
        where its rank order is random, so (b) tests monotone-within-noise rather than a rank
        correlation (reported too). Deep vs shallow is reported without a criterion. A diverged
        model counts with its recorded accuracy.
"""

from __future__ import annotations

import math

import numpy as np

from dlfound import claims, cli, plots
from dlfound.config import Config
from dlfound.data import load
from dlfound.stats import describe
from dlfound.sweep import Sweep, run_sweeps

BASE = Config(dataset="mnist1d", depth=3, width=128, activation="relu", optimizer="adam",
              learning_rate=1e-3, batch_size=32, num_epochs=32, validation_fraction=0.0)
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
FASHION_FRACTIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)  # of 60,000: MNIST-1D's sizes x 1.5
MLP_DEPTHS = (1, 3)  # shallow and deep; logistic regression (depth 0) always runs beside them
MIN_RANK_CORRELATION = 0.9
MIN_RISE = 0.05  # mean accuracy gain from the smallest to the largest size
GAP_TOLERANCE = 0.02  # how far the MLP-minus-logistic gap may dip and still count as growing
MIN_GAP_GROWTH = 0.10


def usable_fractions(fractions, num_train: int, batch_size: int) -> tuple[float, ...]:
    """The fractions whose subset holds at least one batch, plus the smallest that does if any do not."""
    keep = [f for f in fractions if math.ceil(f * num_train) >= batch_size]
    if len(keep) < len(fractions):
        keep = [batch_size / num_train] + [f for f in keep if f > batch_size / num_train]
    return tuple(sorted(set(keep)))


def epochs_for(fraction: float, num_train: int, batch_size: int, total_steps: int) -> int:
    """Epochs that give a subset of `fraction` at least `total_steps` updates (last partial batch dropped)."""
    steps_per_epoch = math.ceil(fraction * num_train) // batch_size
    return math.ceil(total_steps / steps_per_epoch)


def rank(values) -> np.ndarray:
    """Ranks 1..n along the last axis, ties sharing their average rank."""
    v = np.asarray(values, dtype=float)
    less = (v[..., None, :] < v[..., :, None]).sum(-1)
    equal = (v[..., None, :] == v[..., :, None]).sum(-1)
    return less + (equal + 1) / 2


def spearman(x, y):
    """Spearman's rank correlation along the last axis (Pearson correlation of the ranks), vectorized over
    y's leading axes; NaN if either side is constant or holds a NaN."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rx, ry = np.broadcast_arrays(rank(x), rank(y))
    dx, dy = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    norm = np.sqrt((dx * dx).sum(-1) * (dy * dy).sum(-1))
    bad = (norm == 0) | np.isnan(x).any(-1) | np.isnan(y).any(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(bad, np.nan, (dx * dy).sum(-1) / np.where(norm == 0, 1.0, norm))
    return float(rho) if rho.ndim == 0 else rho


def largest_fall(values) -> np.ndarray:
    """How far a value falls below an earlier one at most, along the last axis (0 if it never falls;
    NaN if any value is NaN)."""
    v = np.asarray(values, dtype=float)
    return np.max(np.maximum.accumulate(v, axis=-1) - v, axis=-1)


def monotone_within(values, tolerance: float) -> bool:
    """True if no value falls below any earlier one by more than `tolerance` (NaN never passes)."""
    fall = largest_fall(values)
    return bool(not np.isnan(fall) and fall <= tolerance)


def _points(sizes, differences) -> str:
    return ", ".join(f"{n}: {100 * g:+.1f}" for n, g in zip(sizes, differences))


def _samples(sizes, acc: dict) -> dict:
    """Per-seed test accuracies as effect samples: {"0/40": (S,), ...} (depth/size)."""
    return {f"{d}/{n}": acc[d][:, i] for d in acc for i, n in enumerate(sizes)}


def _means(v: dict, d: int, sizes) -> np.ndarray:
    """Mean test accuracy over seeds per resample and size, (R, sizes)."""
    return np.stack([v[f"{d}/{n}"].mean(-1) for n in sizes], -1)


def _rise(values) -> np.ndarray:
    """The last value minus the first, along the last axis."""
    values = np.asarray(values)
    return values[..., -1] - values[..., 0]


def _judge_growth(sizes, acc: dict, names: dict, quick: bool) -> dict:
    samples = _samples(sizes, acc)
    effects = []
    for d in acc:
        effects.append(claims.effect(f"Spearman(size, mean test accuracy), {names[d]}",
                                     lambda v, d=d: spearman(sizes, _means(v, d, sizes)), samples,
                                     MIN_RANK_CORRELATION))
        effects.append(claims.effect(f"mean test accuracy rise {sizes[0]} -> {sizes[-1]}, {names[d]}",
                                     lambda v, d=d: _rise(_means(v, d, sizes)), samples, MIN_RISE))
    return claims.judge(
        "T11", "Test accuracy grows with the training-set size, for logistic regression, a shallow and a "
        "deep MLP (the seeds)",
        f"for every model, 95% intervals over seeds: Spearman rank correlation(size, mean test accuracy) "
        f"above {MIN_RANK_CORRELATION} and the mean's rise from {sizes[0]} to {sizes[-1]} examples above "
        f"{MIN_RISE * 100:.0f} points",
        claims.outcome(effects),
        "; ".join(f"{names[d]}: " + ", ".join(f"{n}: {claims.fmt(a)}" for n, a in zip(sizes, acc[d].mean(0)))
                  for d in acc),
        {"spearman": {names[d]: spearman(sizes, acc[d].mean(0)) for d in acc},
         "rise": {names[d]: _rise(acc[d].mean(0)) for d in acc}}, quick=quick, effects=effects)


def _judge_gap(sizes, acc: dict, names: dict, mlps, quick: bool) -> dict:
    samples = _samples(sizes, acc)
    effects = []
    for d in mlps:
        effects.append(claims.effect(f"largest fall of {names[d]} minus logistic",
                                     lambda v, d=d: largest_fall(_means(v, d, sizes) - _means(v, 0, sizes)),
                                     samples, GAP_TOLERANCE, higher_passes=False))
        effects.append(claims.effect(
            f"growth of {names[d]} minus logistic, {sizes[0]} -> {sizes[-1]}",
            lambda v, d=d: _rise(_means(v, d, sizes) - _means(v, 0, sizes)),
            samples, MIN_GAP_GROWTH))
    gaps = {d: acc[d].mean(0) - acc[0].mean(0) for d in mlps}
    deep, shallow = max(mlps), min(mlps)
    deep_vs_shallow = acc[deep].mean(0) - acc[shallow].mean(0)
    return claims.judge(
        "T11", "The MLPs' advantage over logistic regression grows with data (the seeds)",
        f"for each MLP, with its advantage = mean test accuracy minus logistic regression's, 95% intervals "
        f"over seeds: the advantage's largest fall from one size to any larger size below "
        f"{GAP_TOLERANCE * 100:.0f} points, and its growth from {sizes[0]} to {sizes[-1]} examples above "
        f"{MIN_GAP_GROWTH * 100:.0f} points",
        claims.outcome(effects),
        "; ".join(f"{names[d]} minus logistic: {_points(sizes, gaps[d])} points (rank correlation "
                  f"{claims.fmt(spearman(sizes, gaps[d]))})" for d in mlps)
        + (f"; deep minus shallow: {_points(sizes, deep_vs_shallow)} points" if deep != shallow else ""),
        {"gap": {names[d]: gaps[d].tolist() for d in mlps},
         "deep_minus_shallow": deep_vs_shallow.tolist()}, quick=quick, effects=effects)


def sweeps(cfg: Config, fractions, depths, total_steps: int, num_train: int) -> list[Sweep]:
    """One sweep per size, over the models: the epochs differ so that the steps do not."""
    out = []
    for f in fractions:
        epochs = epochs_for(f, num_train, cfg.batch_size, total_steps)
        out.append(Sweep(cfg.replace(num_epochs=epochs, eval_every_epochs=epochs),
                         {"train_fraction": (f,), "depth": depths}))
    return out


def run(ctx: cli.Context) -> dict:
    cfg = ctx.cfg
    data = load(cfg.dataset, validation_fraction=cfg.validation_fraction, seed=cfg.seed)
    n = data.num_train
    fractions = usable_fractions(ctx.axes["train_fraction"], n, cfg.batch_size)
    depths = tuple(sorted({0, *ctx.axes["depth"]}))
    names = {d: "logistic regression" if d == 0 else f"MLP {d}x{cfg.width}" for d in depths}
    total_steps = cfg.num_epochs * (math.ceil(max(fractions) * n) // cfg.batch_size)  # epochs of the largest
    table = run_sweeps(sweeps(cfg, fractions, depths, total_steps, n), data, ctx.seeds, ctx.run_dir,
                       quiet=ctx.quiet)
    sizes = [math.ceil(f * n) for f in fractions]
    acc = {d: np.array([table.final("test_accuracy", train_fraction=f, depth=d) for f in fractions]).T
           for d in depths}
    steps = {f: int(table.steps(train_fraction=f, depth=depths[0])[-1]) for f in fractions}
    mlps = [d for d in depths if d > 0]
    verdicts = [_judge_growth(sizes, acc, names, ctx.quick), _judge_gap(sizes, acc, names, mlps, ctx.quick)]
    plots.lines(ctx.run_dir.file("test_accuracy_vs_train_size.png"), np.array(sizes),
                {names[d]: acc[d] for d in depths}, "training examples (log scale)", "test accuracy",
                f"{cfg.dataset}: test accuracy vs data ({total_steps} steps at every size)", logx=True)
    plots.lines(ctx.run_dir.file("advantage_over_logistic.png"), np.array(sizes),
                {f"{names[d]} minus logistic regression": acc[d] - acc[0] for d in mlps},
                "training examples (log scale)", "test accuracy difference",
                "The MLPs' advantage over logistic regression vs data", logx=True)
    metrics = {
        "train_sizes": sizes, "fractions": list(fractions),
        "steps_per_size": {str(s): steps[f] for s, f in zip(sizes, fractions)},
        "test_accuracy": {names[d]: {str(s): describe(acc[d][:, i]) for i, s in enumerate(sizes)}
                          for d in depths},
        "train_accuracy": {
            names[d]: {str(s): describe(table.final("train_accuracy", train_fraction=f, depth=d))
                       for s, f in zip(sizes, fractions)} for d in depths},
        "diverged_models": table.diverged_models(),
    }
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="the seeds; Greydanus & Kobak (2024)", claim_ids=("T11",),
    name="data_scaling", description=__doc__, base=BASE, run=run, default_seeds=13,
    axes={"train_fraction": FRACTIONS, "depth": MLP_DEPTHS},
    quick=cli.Overrides(config={"num_epochs": 1}, axes={"train_fraction": (0.025, 0.1), "depth": (1,)}),
    datasets={"fashion_mnist": cli.Overrides(config={"num_epochs": 4},
                                             axes={"train_fraction": FASHION_FRACTIONS})})
cli.script(__name__, EXPERIMENT)
