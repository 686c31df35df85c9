"""Model-wise double descent: with label noise, test error peaks where the MLP starts to interpolate.

Papers: M. Belkin, D. Hsu, S. Ma and S. Mandal, "Reconciling modern machine-learning practice and
        the classical bias-variance trade-off", PNAS 116(32), 2019 (Fig. 2-3: random features and
        a two-layer net on MNIST, the peak at the interpolation threshold); P. Nakkiran, G. Kaplun,
        Y. Bansal, T. Yang, B. Barak and I. Sutskever, "Deep double descent: where bigger models and
        more data hurt", ICLR 2020 (arXiv 2019), Fig. 1 (ResNet18 width sweep, 15% label noise);
        S. Greydanus and D. Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024, notebook
        `deep-double-descent.ipynb` (40-h-h-10 ReLU, 15% noise: 50.8% test error at h=21, 54.1%
        at h=47, 45.5% at h=300).
Claim:  T10: as the width grows, test error first falls, then rises to a peak near the
        interpolation threshold (the smallest model that fits the noisy training set; about as
        many parameters as training examples), then falls again; label noise makes the peak.
Setup:  the MNIST-1D notebook's model and optimizer: 40-h-h-10 ReLU (He init), SGD with momentum
        0.9, lr 0.01, batch 100, 500 epochs (20,000 steps, enough to drive the training loss to
        ~1e-3 past the threshold), all 4000 training examples (no validation carve), 1000 test
        examples (the notebook used 12,000). Training labels are corrupted with p = 0.15 (each
        label replaced, with probability p, by a uniformly drawn class, once per run from the
        run's key); p = 0 is trained alongside as the control (both vmapped with the seeds: one
        compile per width). Widths are multiples {0.2, 0.4, 0.6, 0.75, 0.9, 1.1, 1.5, 2.25, 3, 6}
        of h_n, the width at which parameters = training examples (h^2 + 52h + 10 = 4000 gives
        h_n = 42.3 on MNIST-1D: widths 8, 17, 25, 32, 38, 47, 63, 95, 127, 254, close to CLAIMS.md's
        8..256 grid), so the grid brackets the threshold on any dataset; 8 seeds (the fewest that
        decide; 16 would take ~7 min). Fashion-MNIST column (`--dataset fashion_mnist`): Belkin et
        al.'s 4000 images (train_fraction 0.0667: 4002 of 60,000; 784-h-h-10, h_n = 5, widths
        1..30), the same 500 epochs (20,000 steps), tested on the 10,000 test images. All 60k
        images would need ~300k steps per width (--set train_fraction=1): a GPU job.
Run:    python -m experiments.belkin2019_double_descent            # 4.5 min on 2 CPU cores (measured)
        python -m experiments.belkin2019_double_descent --quick    # seconds; smoke test only
        python -m experiments.belkin2019_double_descent --dataset fashion_mnist   # 4.3 min (measured)
Expect: (CLAIMS.md C17 calibration) mean test error ~49.6% at h=16, ~56.5% at h=40-48, ~46.8% at
        h=256; train error reaches ~0 from h=48 on; without label noise no clear peak (notebook:
        41-42% at h=21-61, 37% at h=300).
Pass:   (C17) with h* the width of highest mean test error and h_int the first width whose mean
        train error (on the noisy labels) is < 2%, each on the 95% paired-bootstrap interval over
        seeds (h* and h_int found again in every resample): |log2(h*/h_int)| below 1, err(h*) -
        err(h_small) above 3 points and err(h*) - err(h_large) above 5 points, where h_small is the
        width nearest 0.4 h_n (C17's h=16) and h_large the largest (C17's h=256). Resamples in
        which no width reaches 2% train error are left out of the first interval; none reaching it
        is inconclusive (the budget did not reach the threshold). Control (C17's optional check):
        the peak excess E = max mean test error within a factor 2 of h_int minus max(err(h_small),
        err(h_large)) below 2 points without noise, and E(noise) - E(no noise) above 3 points.
        A diverged model counts with its recorded accuracy.
"""

from __future__ import annotations

import math

import numpy as np

from dlfound import claims, cli, plots
from dlfound.config import Config
from dlfound.data import load
from dlfound.models import count_params
from dlfound.stats import describe
from dlfound.sweep import Sweep, Table, run_sweep

BASE = Config(dataset="mnist1d", depth=2, width=64, activation="relu", optimizer="momentum",
              learning_rate=0.01, momentum=0.9, batch_size=100, num_epochs=500, eval_every_epochs=50,
              label_noise=0.15, validation_fraction=0.0)
MULTIPLIERS = (0.2, 0.4, 0.6, 0.75, 0.9, 1.1, 1.5, 2.25, 3.0, 6.0)  # widths as multiples of h_n
SMALL_REF = 0.4  # the small reference width, as a multiple of h_n (C17's h=16)
INTERPOLATED = 0.02  # mean train error below this counts as interpolating
PEAK_OVER_SMALL, PEAK_OVER_LARGE = 0.03, 0.05
CONTROL_MAX_EXCESS, NOISE_MIN_GAIN = 0.02, 0.03


def params_of_width(width: float, input_dim: int, depth: int, num_outputs: int) -> float:
    """Parameters of an MLP with `depth` hidden layers of (real-valued) `width`, biases included."""
    return (input_dim + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * num_outputs


def interpolation_width(num_train: int, input_dim: int, depth: int, num_outputs: int) -> float:
    """The real width h_n at which the MLP has as many parameters as training examples (bisection)."""
    lo, hi = 0.0, float(max(num_train, 1))
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if params_of_width(mid, input_dim, depth, num_outputs) < num_train else (lo, mid)
    return (lo + hi) / 2


def width_grid(h_n: float, multipliers) -> tuple[int, ...]:
    """Sorted distinct integer widths round(m * h_n), at least 1."""
    return tuple(sorted({max(1, round(m * h_n)) for m in multipliers}))


def first_interpolating(widths, train_err) -> int | None:
    """The first width whose mean train error is below INTERPOLATED, or None."""
    for w, e in zip(widths, train_err):
        if e < INTERPOLATED:
            return w
    return None


def interpolating_index(mean_train) -> np.ndarray:
    """Per row of mean train errors (..., widths), the first width's index below INTERPOLATED; -1 if none."""
    below = np.asarray(mean_train) < INTERPOLATED
    return np.where(below.any(-1), np.argmax(below, -1), -1)


def peak_distance(widths, mean_test, mean_train) -> np.ndarray:
    """|log2(h*/h_int)| per row (h* the width of highest mean test error); NaN where none interpolates."""
    w = np.asarray(widths, dtype=float)
    index = interpolating_index(mean_train)
    star = w[np.argmax(mean_test, -1)]
    return np.where(index >= 0, np.abs(np.log2(star / w[index])), np.nan)


def peak_excess(widths, mean_test, mean_train, h_n: float, small: int, large: int) -> np.ndarray:
    """Highest mean test error within a factor 2 of h_int (h_n where no width interpolates), minus the
    larger of the errors at widths `small` and `large`, per row; NaN where no width is that near."""
    w = np.asarray(widths, dtype=float)
    mean_test = np.asarray(mean_test, dtype=float)
    index = interpolating_index(mean_train)
    h_int = np.where(index >= 0, w[index], h_n)
    near = np.abs(np.log2(w / np.expand_dims(h_int, -1))) <= 1
    peak = np.max(np.where(near, mean_test, -np.inf), -1)
    ref = np.maximum(mean_test[..., list(widths).index(small)], mean_test[..., list(widths).index(large)])
    return np.where(near.any(-1), peak - ref, np.nan)


def _errors(table: Table, widths, metric: str, p: float) -> np.ndarray:
    """1 - accuracy (a diverged model's recorded accuracy), shape (seeds, widths)."""
    return np.array([1 - table.final(metric, width=w, label_noise=p) for w in widths]).T


def _samples(widths, err: dict) -> dict:
    """Per-seed errors as effect samples: {"test p=0.15 h=8": (S,), "train p=0.15 h=8": ...}."""
    return {f"{kind} p={p:g} h={w}": values[:, i] for p, pair in err.items()
            for kind, values in zip(("test", "train"), pair) for i, w in enumerate(widths)}


def _means(v: dict, kind: str, p: float, widths) -> np.ndarray:
    """Mean error over seeds per resample and width, (R, widths), from effect samples."""
    return np.stack([v[f"{kind} p={p:g} h={w}"].mean(-1) for w in widths], -1)


def _judge_peak(widths, err: dict, noise, small, large, h_n, quick) -> tuple[dict, int | None]:
    test_err, train_err = err[noise]
    mean_test, mean_train = test_err.mean(0), train_err.mean(0)
    h_star = widths[int(np.argmax(mean_test))]
    h_int = first_interpolating(widths, mean_train)
    e = dict(zip(widths, mean_test))
    samples = _samples(widths, {noise: err[noise]})
    i_small, i_large = widths.index(small), widths.index(large)

    def height(ref):
        return lambda v: _means(v, "test", noise, widths).max(-1) - _means(v, "test", noise, widths)[:, ref]

    effects = [
        claims.effect(f"|log2(h*/h_int)|, p={noise:g}", lambda v: peak_distance(
            widths, _means(v, "test", noise, widths), _means(v, "train", noise, widths)), samples, 1.0,
            higher_passes=False),
        claims.effect(f"peak test error minus err(h={small}), p={noise:g}", height(i_small), samples,
                      PEAK_OVER_SMALL),
        claims.effect(f"peak test error minus err(h={large}), p={noise:g}", height(i_large), samples,
                      PEAK_OVER_LARGE)]
    verdict = claims.judge(
        "T10", "With 15% label noise, test error vs width peaks near the interpolation threshold "
        "(Belkin et al. 2019; Nakkiran et al. 2019; MNIST-1D notebook)",
        f"95% intervals over seeds: |log2(h*/h_int)| below 1 (h* the width of highest mean test error, "
        f"h_int the first width with mean train error < {INTERPOLATED:.0%}; resamples where no width "
        f"interpolates are left out, and none interpolating is inconclusive), peak mean test error minus "
        f"err(h={small}) above {PEAK_OVER_SMALL * 100:.0f} points and minus err(h={large}) above "
        f"{PEAK_OVER_LARGE * 100:.0f} points (C17)",
        claims.outcome(effects),
        f"h*={h_star}, h_int={h_int}, parameters = examples at h_n={h_n:.1f}; mean test error: "
        + ", ".join(f"h={w} {100 * m:.1f}%" for w, m in zip(widths, mean_test))
        + f"; peak minus h={small}: {100 * (e[h_star] - e[small]):+.1f} points, minus h={large}: "
        f"{100 * (e[h_star] - e[large]):+.1f}"
        + "; mean train error: " + ", ".join(f"h={w} {100 * m:.1f}%" for w, m in zip(widths, mean_train)),
        {"h_star": h_star, "h_int": h_int, "h_n": h_n}, quick=quick, effects=effects)
    return verdict, h_int


def _judge_control(widths, err: dict, noise, small, large, h_n, quick) -> dict:
    samples = _samples(widths, err)
    measured = {p: peak_excess(widths, err[p][0].mean(0), err[p][1].mean(0), h_n, small, large) for p in err}

    def excess(p):
        return lambda v: peak_excess(widths, _means(v, "test", p, widths), _means(v, "train", p, widths),
                                     h_n, small, large)

    effects = [
        claims.effect("peak excess E, p=0", excess(0.0), samples, CONTROL_MAX_EXCESS, higher_passes=False),
        claims.effect(f"E(p={noise:g}) - E(p=0)", lambda v: excess(noise)(v) - excess(0.0)(v), samples,
                      NOISE_MIN_GAIN)]
    return claims.judge(
        "T10", "Label noise makes the peak: without it the bump at the threshold is small "
        "(Nakkiran et al. 2019; MNIST-1D notebook: no clear peak without noise)",
        f"peak excess E = max mean test error within a factor 2 of h_int minus max(err(h={small}), "
        f"err(h={large})); 95% intervals over seeds: E(p=0) below {CONTROL_MAX_EXCESS * 100:.0f} points, "
        f"E(p={noise:g}) - E(p=0) above {NOISE_MIN_GAIN * 100:.0f} points",
        claims.outcome(effects),
        f"E(p={noise:g}) = {100 * measured[noise]:+.1f} points, E(p=0) = {100 * measured[0.0]:+.1f} points; "
        "mean test error without noise: "
        + ", ".join(f"h={w} {100 * m:.1f}%" for w, m in zip(widths, err[0.0][0].mean(0))),
        {"excess_noisy": float(measured[noise]), "excess_clean": float(measured[0.0])}, quick=quick,
        effects=effects)


def run(ctx: cli.Context) -> dict:
    data = load(ctx.cfg.dataset, validation_fraction=ctx.cfg.validation_fraction, seed=ctx.cfg.seed)
    num_train = math.ceil(ctx.cfg.train_fraction * data.num_train)
    input_dim, classes = int(np.prod(data.input_shape)), data.num_classes
    h_n = interpolation_width(num_train, input_dim, ctx.cfg.depth, classes)
    widths = width_grid(h_n, ctx.settings["multipliers"])
    small = min(widths, key=lambda w: abs(math.log(w / (SMALL_REF * h_n))))
    large = max(widths)
    noise = ctx.cfg.label_noise
    levels = (noise, 0.0) if noise > 0 else (0.0,)
    sweep = Sweep(ctx.cfg, {"width": widths}, {"label_noise": levels})
    table = run_sweep(sweep, data, ctx.seeds, ctx.run_dir, quiet=ctx.quiet)
    err = {p: (_errors(table, widths, "test_accuracy", p), _errors(table, widths, "train_accuracy", p))
           for p in levels}
    peak, h_int = _judge_peak(widths, err, noise, small, large, h_n, ctx.quick)
    verdicts = [peak]
    if noise > 0:
        verdicts.append(_judge_control(widths, err, noise, small, large, h_n, ctx.quick))
    marks = {f"parameters = training examples (h={h_n:.1f})": h_n}
    if h_int is not None:
        marks[f"interpolation: train error < {INTERPOLATED:.0%} (h={h_int})"] = h_int
    series = {}
    for p in levels:
        series[f"test error, p={p:g}"] = err[p][0]
        series[f"train error, p={p:g}"] = err[p][1]
    plots.lines(ctx.run_dir.file("double_descent.png"), np.array(widths), series,
                "hidden width h (log scale)", "error",
                f"{ctx.cfg.dataset}: {input_dim}-h-h-{classes} ReLU, {num_train} training examples",
                logx=True, vlines=marks)
    metrics = {
        "widths": list(widths), "h_n": h_n, "h_int": h_int, "num_train": num_train,
        "params": {w: count_params(input_dim, (w,) * ctx.cfg.depth, classes) for w in widths},
        "test_error": {f"p={p:g}": {w: describe(err[p][0][:, i]) for i, w in enumerate(widths)}
                       for p in levels},
        "train_error": {f"p={p:g}": {w: describe(err[p][1][:, i]) for i, w in enumerate(widths)}
                        for p in levels},
        "final_train_loss": {f"p={p:g}": {w: float(table.final("train_loss", width=w, label_noise=p).mean())
                                          for w in widths} for p in levels},
        "diverged_models": table.diverged_models(),
    }
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Belkin et al. (2019)", claim_ids=("T10",),
    name="belkin2019_double_descent", description=__doc__, base=BASE, run=run, default_seeds=8,
    settings={"multipliers": MULTIPLIERS},
    quick=cli.Overrides(config={"num_epochs": 2, "eval_every_epochs": 1},
                        settings={"multipliers": (0.4, 1.0)}),
    datasets={"fashion_mnist": cli.Overrides(config={"train_fraction": 0.0667})})
cli.script(__name__, EXPERIMENT)
