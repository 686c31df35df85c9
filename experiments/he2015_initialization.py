"""Initialization decides whether depth trains: variance propagation, He vs Glorot vs small init.

Papers: X. Glorot and Y. Bengio, "Understanding the difficulty of training deep feedforward
        neural networks", AISTATS 2010 (eq. 1 "standard" and eq. 16 "normalized" init, Fig. 2,
        Table 1); K. He, X. Zhang, S. Ren and J. Sun, "Delving deep into rectifiers: surpassing
        human-level performance on ImageNet classification", ICCV 2015 (Sec. 2.2, eq. 10,
        Fig. 3-4); the seeds' "better initialization".
Claims: T4: with ReLU, Var(W) = 2/fan_in (He) keeps the signal's second moment constant through
        the layers, while 1/fan_in (LeCun; Glorot for square layers) halves it at every layer (an
        RMS factor 2^-15 ~ 3e-5 after 30 layers) and the gradients shrink with it; a 30-layer
        ReLU MLP trains with He init, while Glorot's "completely stalls" (He et al. Fig. 4) and a
        fixed std of 0.01 does not converge for deep models; zero init never breaks the symmetry
        between hidden units; the normalized init helps tanh and softsign at depth 5 (Glorot &
        Bengio Table 1: tanh 27.15% -> 15.60% test error on Shapeset).
        T1 (C08 design A, Glorot & Bengio Fig. 2): in a 4-layer sigmoid MLP with the standard init
        the top hidden layer saturates towards 0 while the lower layers stay near 0.5.
Setup:  MNIST-1D with all 4000 training examples (no validation carve), inputs standardized.
        (1) At init (no training; 32 seeds vmapped): a depth-50, width-64 ReLU MLP per scheme (he,
        glorot, lecun, std_uniform, small_normal), zero biases; the RMS of every hidden layer's
        output on 512 training inputs, which for a net of depth L are its first L layers, against
        the recursion E[h_l^2] = fan_in Var(W_l) E[h_{l-1}^2] / 2 and its typical (median) value,
        whose log2 falls by a further 5/(2 n ln 2) bits per layer at width n (Hanin 2018); and the
        kernel-gradient RMS of every layer of the depth-30 net on the same batch (cross-entropy).
        (2) Training (C09): depth 30 (and 10 as the control), width 64, ReLU, SGD with momentum 0.9,
        lr 0.01, batch 128, ~1500 steps, 3 seeds vmapped, init he / glorot / small_normal.
        (3) Zero init: a 2 x 64 sigmoid MLP with init "zeros" vs glorot, lr 0.1, same budget; the
        per-unit incoming weight vectors after training.
        (4) C08 design A: 4 x 256 sigmoid, std_uniform init, plain SGD lr 0.1, batch 10, 2000 steps;
        mean activation per layer on 512 training inputs every 400 steps.
        (5) C08 design B: 5 x 256 tanh and softsign, std_uniform vs glorot ("N"), plain SGD lr 0.05,
        batch 10, 4800 steps (the CI length of CLAIMS.md; the calibration used 10k).
        Budgets are set in steps: num_epochs follows from the dataset size and batch size.
Run:    python -m experiments.he2015_initialization            # ~1-2 min on 2 CPU cores
        python -m experiments.he2015_initialization --quick    # seconds; smoke test only
        python -m experiments.he2015_initialization --dataset fashion_mnist   # full size: the same
            step budgets, but every evaluation passes 70k images (~3x longer on CPU; fine on a GPU)
Expect: (CLAIMS.md C08/C09 calibrations) RMS(h_30)/RMS(x) ~0.5-2 for He vs ~2e-5 for Glorot and
        LeCun; fitted log2 slopes 0 / -1 / -1 / -2.6 / -8.3 bits per layer (he, glorot, lecun,
        std_uniform, small_normal); small_normal's signal underflows to exactly 0 near layer 30.
        He reaches 50% train accuracy at depth 30 in ~400 steps; Glorot stays at chance in most
        seeds; small_normal stays at chance; zero init keeps all units identical; the top sigmoid
        layer's mean falls to ~0.1 by step 2000; tanh N beats tanh by ~10 points.
Pass:   T4 (a) at init, the fitted slope of the mean log2 second moment per layer is within 0.1 bit of
        the typical-value recursion for every scheme, He's median RMS(h_30)/RMS(x) is in [0.25, 4]
        and Glorot's and LeCun's are < 1e-3 in every seed (C09 (a); CLAIMS asked for He in [0.25, 4]
        in 3/3 seeds at width 128: at width 64 and 32 seeds the finite-width spread puts single
        seeds below 0.25, so the criterion is on the median); (b) at depth 30 every layer's median
        Glorot kernel gradient is < 1e-3 x He's, and He's first/last hidden-layer gradient ratio is
        in [0.1, 10]; (c) He reaches 50% train accuracy within 1000 steps in every seed and
        Glorot's median steps to 50% is >= 2x He's (never counts as infinite) (C09 (b), (c));
        (d) control: at depth 10 both reach 50% in every seed (C09 (d)); (e) small_normal's final
        train accuracy at depth 30 is < 0.2 in every seed; (f) zero init: in every seed and hidden
        layer the units' incoming weight vectors differ by <= 1e-6 of their norm, the weights
        moved (norm > 1e-3), and train accuracy is >= 10 points below glorot's; (g) tanh N >= tanh
        + 5 points and softsign N >= softsign + 5 points test accuracy in every seed (C08 Pass B;
        its third item, sigmoid at depth 5 near chance, is T1's and shown by part 4).
        T1: at the first evaluation at or after step 2000, in every seed: top-layer mean < 0.15,
        every lower layer's mean >= 0.49, means ordered layer 3 > 2 > 1, train accuracy < 0.2
        (C08 Pass A).
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dlfound import claims, cli, losses, plots
from dlfound.config import Config
from dlfound.data import load
from dlfound.models import MLP, layer_names
from dlfound.propagation import (
    draw_params,
    fitted_slope,
    predicted_mean_square,
    robust_rms,
    typical_slope,
    unit_spread,
)
from dlfound.stats import describe
from dlfound.sweep import Sweep, Table, cell_id, run_sweep

BASE = Config(dataset="mnist1d", depth=30, width=64, activation="relu", init="he", optimizer="momentum",
              learning_rate=0.01, momentum=0.9, batch_size=128, num_epochs=48, eval_every_epochs=2,
              validation_fraction=0.0)
SCHEMES = ("he", "glorot", "lecun", "std_uniform", "small_normal")
TRAIN_SCHEMES = ("he", "glorot", "small_normal")
CONTROL_SCHEMES = ("he", "glorot")
# Budgets per part; "steps" and "eval_steps" become num_epochs / eval_every_epochs per dataset.
BUDGET = {
    "init_depth": 50, "grad_depth": 30, "init_seeds": 32, "probe": 512,
    "deep": 30, "control": 10, "train_steps": 1500, "train_eval_steps": 62,
    "zero": {"depth": 2, "width": 64, "activation": "sigmoid", "learning_rate": 0.1},
    "saturation": {"depth": 4, "width": 256, "activation": "sigmoid", "init": "std_uniform", "optimizer": "sgd",
                   "learning_rate": 0.1, "batch_size": 10},
    "saturation_steps": 2000, "saturation_eval_steps": 400,
    "table1": {"depth": 5, "width": 256, "optimizer": "sgd", "learning_rate": 0.05, "batch_size": 10},
    "table1_activations": ("tanh", "softsign"), "table1_steps": 4800, "table1_eval_steps": 400,
}
QUICK = {  # one depth for the deep and control cells, so quick mode compiles 8 small cells
    "init_depth": 6, "grad_depth": 4, "init_seeds": 4, "deep": 2, "control": 2, "train_steps": 62,
    "zero": {**BUDGET["zero"], "width": 8},
    "saturation": {**BUDGET["saturation"], "depth": 2, "width": 16}, "saturation_steps": 400,
    "table1": {**BUDGET["table1"], "depth": 2, "width": 16},
    "table1_activations": ("tanh",), "table1_steps": 400,
}
TRAIN_TARGET = 0.5  # C09: 50% train accuracy
RMS_LAYER = 30  # He et al. Fig. 4 depth: RMS(h_30)/RMS(x)
SLOPE_TOLERANCE = 0.1  # bits per layer
UNDERFLOW_RMS = 1e-30  # layers whose RMS fell below this in some seed are left out of the slope fit
SYMMETRY_TOLERANCE = 1e-6
SYMMETRY_FILE = "zero_init_symmetry.json"


# ----------------------------------------------------------------------------- helpers

def budget_config(cfg: Config, num_train: int, steps: int, eval_steps: int) -> Config:
    """`cfg` with num_epochs and eval_every_epochs giving about `steps` steps, evaluated every ~`eval_steps`."""
    per_epoch = max(1, num_train // cfg.batch_size)
    every = max(1, round(eval_steps / per_epoch))
    evals = max(1, round(steps / (every * per_epoch)))
    return cfg.replace(num_epochs=every * evals, eval_every_epochs=every)


# ----------------------------------------------------------------------------- part 1: statistics at init

def init_statistics(budget: dict, width: int, data, seeds) -> dict:
    """Per-layer activation RMS (depth `init_depth`) and kernel-gradient RMS (depth `grad_depth`) per scheme."""
    depth, grad_depth, n = budget["init_depth"], budget["grad_depth"], budget["probe"]
    x = jnp.asarray(data.x_train[:n]).reshape((min(n, data.num_train), -1))
    y = jnp.asarray(data.y_train[:n])
    sizes = (x.shape[1],) + (width,) * depth + (data.num_classes,)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    model = MLP(depth, width, data.num_classes, "relu", "he")  # apply does not depend on the initializer
    grad_model = MLP(grad_depth, width, data.num_classes, "relu", "he")
    loss = losses.get("cross_entropy")

    def forward(params):
        _, inter = model.apply({"params": params}, x, mutable=["intermediates"])
        return jnp.stack([robust_rms(inter["intermediates"][f"activation_{i}"][0]) for i in range(depth)])

    def gradients(params):
        sub = {name: params[name] for name in layer_names(grad_depth)[:-1]} | {"readout": params["readout"]}
        g = jax.grad(lambda p: loss(grad_model.apply({"params": p}, x), y, data.num_classes))(sub)
        return jnp.stack([robust_rms(g[name]["kernel"]) for name in layer_names(grad_depth)])

    forward, gradients = jax.jit(jax.vmap(forward)), jax.jit(jax.vmap(gradients))
    input_ms = float(jnp.mean(jnp.square(x)))
    out = {"input_rms": math.sqrt(input_ms), "rms": {}, "grad_rms": {}, "predicted_ms": {}, "typical_slope": {}}
    for scheme in SCHEMES:
        params = draw_params(scheme, sizes, keys)
        out["rms"][scheme] = np.asarray(forward(params), np.float64)
        out["grad_rms"][scheme] = np.asarray(gradients(params), np.float64)
        out["predicted_ms"][scheme] = predicted_mean_square(scheme, sizes[:-1], input_ms)
        out["typical_slope"][scheme] = typical_slope(scheme, width)
    return out


def _judge_init(stats: dict, budget: dict, quick: bool) -> list[dict]:
    layer = min(RMS_LAYER, budget["init_depth"]) - 1
    ratio = {s: stats["rms"][s][:, layer] / stats["input_rms"] for s in SCHEMES}
    slopes, flags = {}, []
    for s in SCHEMES:
        rms = stats["rms"][s]
        valid = np.all(rms > UNDERFLOW_RMS, axis=0)
        with np.errstate(divide="ignore"):
            slopes[s] = fitted_slope(2 * np.log2(rms), valid)
        flags.append(abs(slopes[s] - stats["typical_slope"][s]) <= SLOPE_TOLERANCE)
    he_ok = 0.25 <= np.median(ratio["he"]) <= 4
    small_ok = all(np.all(ratio[s] < 1e-3) for s in ("glorot", "lecun"))
    predicted = {s: math.sqrt(stats["predicted_ms"][s][layer]) / stats["input_rms"] for s in SCHEMES}
    underflow = {s: int(np.argmax(np.any(stats["rms"][s] == 0, axis=0))) + 1
                 if np.any(stats["rms"][s] == 0) else None for s in SCHEMES}
    a = claims.judge(
        "T4", "At init, ReLU activations keep their scale with He init and shrink geometrically with "
        "LeCun/Glorot (second moment halved per layer), std_uniform and small_normal (He et al. 2015, eq. 10)",
        f"fitted log2 second-moment slope within {SLOPE_TOLERANCE} bit/layer of the typical-value recursion "
        f"for every scheme; He's median RMS(h_{layer + 1})/RMS(x) in [0.25, 4]; Glorot's and LeCun's < 1e-3 "
        "in every seed",
        bool(all(flags) and he_ok and small_ok),
        "slopes (measured vs predicted bits/layer): "
        + ", ".join(f"{s} {slopes[s]:.3f} vs {stats['typical_slope'][s]:.3f}" for s in SCHEMES)
        + f"; RMS(h_{layer + 1})/RMS(x) median (mean-field prediction): "
        + ", ".join(f"{s} {claims.fmt(np.median(ratio[s]))} ({claims.fmt(predicted[s])})" for s in SCHEMES)
        + "; exact float32 zeros from layer: "
        + ", ".join(f"{s} {underflow[s]}" for s in SCHEMES if underflow[s]),
        {"slope": slopes, "predicted_slope": stats["typical_slope"],
         "rms_ratio": {s: ratio[s].tolist() for s in SCHEMES}, "predicted_rms_ratio": predicted,
         "first_zero_layer": underflow}, quick=quick)
    grads = {s: np.median(stats["grad_rms"][s], axis=0) for s in SCHEMES}
    he, glorot = grads["he"], grads["glorot"]
    vanish = bool(np.all(glorot < 1e-3 * he))
    he_flat = claims.ratio(he[0], he[-2])
    b = claims.judge(
        "T4", "At init of a deep ReLU MLP, He's gradients reach every layer while Glorot's are all "
        "diminished (He et al. 2015, Fig. 4: Xavier's gradients 'are all diminishing')",
        f"depth {budget['grad_depth']}: every layer's median Glorot kernel-gradient RMS < 1e-3 x He's; He's "
        "first/last hidden-layer gradient ratio in [0.1, 10]",
        bool(vanish and 0.1 <= he_flat <= 10),
        f"median kernel-gradient RMS, first hidden / last hidden / readout: he {claims.fmt(he[0])} / "
        f"{claims.fmt(he[-2])} / {claims.fmt(he[-1])}, glorot {claims.fmt(glorot[0])} / {claims.fmt(glorot[-2])} / "
        f"{claims.fmt(glorot[-1])}, lecun {claims.fmt(grads['lecun'][0])}, std_uniform "
        f"{claims.fmt(grads['std_uniform'][0])}, small_normal {claims.fmt(grads['small_normal'][0])}; "
        f"largest glorot/he layer ratio {claims.fmt(np.max(glorot / he))}; he first/last {claims.fmt(he_flat)}",
        {"median_grad_rms": {s: grads[s].tolist() for s in SCHEMES}}, quick=quick)
    return [a, b]


# ----------------------------------------------------------------------------- parts 2-5: training

def _judge_training(table: Table, budget: dict, quick: bool) -> list[dict]:
    deep, control = budget["deep"], budget["control"]
    cell = {(d, s): cell_id({"depth": d, "init": s}) for d in (deep, control) for s in TRAIN_SCHEMES}
    steps = {k: table.steps_to("train_accuracy", TRAIN_TARGET, cell=c) for k, c in cell.items()
             if c in table.cells()}
    final = {k: table.final("train_accuracy", cell=c) for k, c in cell.items() if c in table.cells()}
    he, glorot = steps[(deep, "he")], steps[(deep, "glorot")]
    ratio = claims.ratio(np.median(glorot), np.median(he))
    fmt_steps = lambda s: claims.fmt(s.tolist())
    c = claims.judge(
        "T4", f"He init trains a {deep}-layer ReLU MLP; Glorot init stalls or is much slower (He et al. 2015, Fig. 4)",
        f"He reaches {TRAIN_TARGET:.0%} train accuracy within 1000 steps in every seed; Glorot's median "
        "steps to it >= 2 x He's (never = inf)",
        bool(np.all(he <= 1000) and ratio >= 2),
        f"steps to {TRAIN_TARGET:.0%} train: he {fmt_steps(he)}, glorot {fmt_steps(glorot)} (median ratio "
        f"{claims.fmt(ratio)}); final train accuracy he {claims.fmt(final[(deep, 'he')])}, glorot "
        f"{claims.fmt(final[(deep, 'glorot')])}",
        {"steps_he": he.tolist(), "steps_glorot": glorot.tolist(), "ratio": ratio}, quick=quick)
    ctrl = [steps[(control, s)] for s in CONTROL_SCHEMES]
    d = claims.judge(
        "T4", f"Control: at depth {control} both He and Glorot train (the failure is one of depth)",
        f"He and Glorot reach {TRAIN_TARGET:.0%} train accuracy in every seed at depth {control}",
        bool(all(np.all(np.isfinite(s)) for s in ctrl)),
        "steps to target: " + ", ".join(f"{s} {fmt_steps(v)}" for s, v in zip(CONTROL_SCHEMES, ctrl)),
        {s: v.tolist() for s, v in zip(CONTROL_SCHEMES, ctrl)}, quick=quick)
    small = final[(deep, "small_normal")]
    grad0 = table.history("grad_norm", layer=0, cell=cell[(deep, "small_normal")])[:, 0]
    e = claims.judge(
        "T4", f"A fixed small init N(0, 0.01^2) stalls a {deep}-layer ReLU MLP (He et al. 2015: std 0.01 "
        "fails for > 8 layers)",
        "final train accuracy < 0.2 in every seed (chance 0.1)", bool(np.all(small < 0.2)),
        f"final train accuracy {claims.fmt(small)}; first-layer gradient norm at init {claims.fmt(grad0)}",
        {"final_train_accuracy": small.tolist(), "first_layer_grad_norm_at_init": grad0.tolist()}, quick=quick)
    return [c, d, e]


def _save_symmetry(ctx, depth: int):
    def save(cell, result):
        if cell.axes.get("init") != "zeros":
            return
        spreads, norms = [], []
        for name in layer_names(depth)[:-1]:
            kernel, bias = np.asarray(result.params[name]["kernel"]), np.asarray(result.params[name]["bias"])
            spreads.append([unit_spread(kernel[m], bias[m]) for m in range(kernel.shape[0])])
            norms.append(np.linalg.norm(kernel.reshape(kernel.shape[0], -1), axis=1).tolist())
        readout = np.asarray(result.params["readout"]["kernel"])  # (models, units, classes): rows = units
        rows = [float(np.max(np.abs(r - r[:1])) / max(np.abs(r).max(), 1e-30)) for r in readout]
        ctx.run_dir.file(SYMMETRY_FILE).write_text(json.dumps(
            {"spread": spreads, "kernel_norm": norms, "readout_row_spread": rows}))
    return save


def _judge_zero(ctx, table: Table, quick: bool) -> dict:
    sym = json.loads(ctx.run_dir.file(SYMMETRY_FILE).read_text())
    spread = np.max(np.array(sym["spread"]), axis=0)  # per seed, worst hidden layer
    moved = np.min(np.array(sym["kernel_norm"]), axis=0)
    zero = table.final("train_accuracy", cell="init=zeros")
    glorot = table.final("train_accuracy", cell="init=glorot")
    passed = bool(np.all(spread <= SYMMETRY_TOLERANCE) and np.all(moved > 1e-3) and np.all(zero <= glorot - 0.10))
    return claims.judge(
        "T4", "Zero init never breaks the symmetry: all hidden units of a layer stay identical after training",
        f"in every seed and hidden layer the units' incoming weights differ by <= {SYMMETRY_TOLERANCE:g} of their "
        "norm, the kernels moved (norm > 1e-3), and train accuracy is >= 10 points below glorot init's",
        passed,
        f"largest per-unit spread {claims.fmt(spread)} (readout rows {claims.fmt(sym['readout_row_spread'])}); "
        f"smallest hidden kernel norm {claims.fmt(moved)}; train accuracy zeros {claims.fmt(zero)} vs glorot "
        f"{claims.fmt(glorot)}",
        {"spread": spread.tolist(), "kernel_norm": moved.tolist(), "zeros_train_accuracy": zero.tolist(),
         "glorot_train_accuracy": glorot.tolist()}, quick=quick)


def _judge_saturation(table: Table, cell: str, depth: int, at_step: int, quick: bool) -> tuple[dict, dict]:
    steps = table.steps(cell=cell)
    index = int(np.argmax(steps >= at_step)) if np.any(steps >= at_step) else len(steps) - 1
    means = np.stack([table.history("activation_mean", layer=i, cell=cell)[:, index] for i in range(depth)], axis=1)
    acc = table.history("train_accuracy", cell=cell)[:, index]
    top, lower = means[:, -1], means[:, :-1]
    ordered = np.all(np.diff(lower, axis=1) > 0, axis=1)
    passed = bool(np.all(top < 0.15) and np.all(lower >= 0.49) and np.all(ordered) and np.all(acc < 0.2))
    verdict = claims.judge(
        "T1", "The top hidden layer of a deep sigmoid MLP with standard init saturates towards 0 while the "
        "lower layers stay near 0.5 (Glorot & Bengio 2010, Fig. 2)",
        f"at step {int(steps[index])}, in every seed: top-layer mean < 0.15, lower layers' means >= 0.49 and "
        "increasing with the layer, train accuracy < 0.2",
        passed,
        "mean activation per layer (input to output), seed-median: "
        + claims.fmt(np.median(means, axis=0)) + f"; top layer per seed {claims.fmt(top)}; train accuracy "
        f"{claims.fmt(acc)}",
        {"step": int(steps[index]), "layer_means": means.tolist(), "train_accuracy": acc.tolist()}, quick=quick)
    return verdict, {"step": int(steps[index]), "layer_means_median": np.median(means, axis=0).tolist()}


def _judge_table1(table: Table, acts, quick: bool) -> dict:
    flags, parts, numbers = [], [], {}
    for act in acts:
        std = table.final("test_accuracy", cell=cell_id({"activation": act, "init": "std_uniform"}))
        norm = table.final("test_accuracy", cell=cell_id({"activation": act, "init": "glorot"}))
        flags.append(bool(np.all(norm >= std + 0.05)))
        parts.append(f"{act}: N {claims.fmt(norm)} vs standard {claims.fmt(std)}")
        numbers[act] = {"normalized": norm.tolist(), "standard": std.tolist()}
    return claims.judge(
        "T4", "Normalized (Glorot) init beats the standard U(+-1/sqrt(n)) init for tanh and softsign at depth 5 "
        "(Glorot & Bengio 2010, Table 1)",
        "test accuracy with normalized init >= standard + 5 points in every seed, for each activation",
        all(flags), "test accuracy per seed: " + "; ".join(parts), numbers, quick=quick)


# ----------------------------------------------------------------------------- plots and run

def _init_figure(path, stats: dict, budget: dict) -> None:
    """Left: RMS(h_l)/RMS(x) per layer, measured (median, min-max band) and mean-field (dashed);
    right: kernel-gradient RMS per layer of the depth-`grad_depth` net."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    layers = np.arange(1, budget["init_depth"] + 1)
    for k, s in enumerate(SCHEMES):
        color = f"C{k}"
        ratio = stats["rms"][s] / stats["input_rms"]
        ratio = np.where(ratio > 0, ratio, np.nan)
        with np.errstate(all="ignore"):
            left.plot(layers, np.nanmedian(ratio, axis=0), color=color, label=s)
            left.fill_between(layers, np.nanmin(ratio, axis=0), np.nanmax(ratio, axis=0), color=color, alpha=0.2)
        left.plot(layers, np.sqrt(stats["predicted_ms"][s]) / stats["input_rms"], color=color, linestyle="--")
        grads = np.where(stats["grad_rms"][s] > 0, stats["grad_rms"][s], np.nan)
        with np.errstate(all="ignore"):
            right.plot(np.arange(1, grads.shape[1] + 1), np.nanmedian(grads, axis=0), color=color, marker=".",
                       label=s)
    left.set(yscale="log", ylim=(1e-40, 10), xlabel="hidden layer l", ylabel="RMS(h_l) / RMS(x)",
             title="ReLU MLP at init (solid: median of seeds, band: min-max;\ndashed: mean-field recursion)")
    right.set(yscale="log", xlabel="layer (last = readout)", ylabel="kernel-gradient RMS (median of seeds)",
              title=f"Depth {budget['grad_depth']} at init: gradient per layer (zeros not drawn)")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, format="png", dpi=120)


def _plots(ctx, stats, table, budget, sat_cell, table1_acts) -> None:
    _init_figure(ctx.run_dir.file("init_activation_and_gradient_rms.png"), stats, budget)
    deep = budget["deep"]
    cells = {s: cell_id({"depth": deep, "init": s}) for s in TRAIN_SCHEMES}
    plots.curves_with_bands(ctx.run_dir.file("train_accuracy_deep.png"), table["train"].steps(cell=cells["he"]),
                            {s: table["train"].history("train_accuracy", cell=c) for s, c in cells.items()},
                            "step", "train accuracy", f"Depth {deep} ReLU MLP: training accuracy by init")
    sat = table["saturation"]
    plots.curves_with_bands(ctx.run_dir.file("sigmoid_saturation.png"), sat.steps(cell=sat_cell),
                            {f"layer {i + 1}": sat.history("activation_mean", layer=i, cell=sat_cell)
                             for i in range(budget["saturation"]["depth"])},
                            "step", "mean activation", "Sigmoid MLP, standard init: mean activation per layer")
    t1 = table["table1"]
    plots.curves_with_bands(ctx.run_dir.file("normalized_init_test_accuracy.png"),
                            t1.steps(cell=cell_id({"activation": table1_acts[0], "init": "glorot"})),
                            {f"{a} {'N' if i == 'glorot' else 'standard'}":
                             t1.history("test_accuracy", cell=cell_id({"activation": a, "init": i}))
                             for a in table1_acts for i in ("std_uniform", "glorot")},
                            "step", "test accuracy", "Depth 5: normalized vs standard init")


def run(ctx: cli.Context) -> dict:
    budget = {**BUDGET, **QUICK} if ctx.quick else BUDGET
    cfg = ctx.cfg
    data = load(cfg.dataset, validation_fraction=cfg.validation_fraction, seed=cfg.seed)
    n = data.num_train

    train_cfg = budget_config(cfg, n, budget["train_steps"], budget["train_eval_steps"])
    zero_cfg = train_cfg.replace(**budget["zero"])
    sat_cfg = budget_config(cfg.replace(**budget["saturation"]), n, budget["saturation_steps"],
                            budget["saturation_eval_steps"])
    t1_cfg = budget_config(cfg.replace(**budget["table1"]), n, budget["table1_steps"], budget["table1_eval_steps"])
    sweeps = {
        "train": [Sweep(train_cfg, {"depth": (budget["deep"],), "init": TRAIN_SCHEMES})]
        + ([Sweep(train_cfg, {"depth": (budget["control"],), "init": CONTROL_SCHEMES})]
           if budget["control"] != budget["deep"] else []),
        "zero": [Sweep(zero_cfg, {"init": ("zeros", "glorot")})],
        "saturation": [Sweep(sat_cfg, {"activation": ("sigmoid",)})],
        "table1": [Sweep(t1_cfg, {"activation": budget["table1_activations"], "init": ("std_uniform", "glorot")})],
    }
    for group in sweeps.values():
        for sweep in group:
            sweep.cells()  # validate every cell before anything compiles

    init_seeds = list(range(budget["init_seeds"]))
    stats = init_statistics(budget, cfg.width if isinstance(cfg.width, int) else cfg.widths[0], data, init_seeds)

    tables = {}  # the parts' cell ids are distinct, so they share the run directory
    for name, group in sweeps.items():
        on_result = _save_symmetry(ctx, zero_cfg.depth) if name == "zero" else None
        rows = []
        for sweep in group:
            rows += run_sweep(sweep, data, ctx.seeds, ctx.run_dir, quiet=ctx.quiet, on_result=on_result).rows
        tables[name] = Table(rows)

    sat_cell = cell_id({"activation": "sigmoid"})
    verdicts = _judge_init(stats, budget, ctx.quick)
    verdicts += _judge_training(tables["train"], budget, ctx.quick)
    verdicts.append(_judge_zero(ctx, tables["zero"], ctx.quick))
    verdicts.append(_judge_table1(tables["table1"], budget["table1_activations"], ctx.quick))
    saturation, sat_metrics = _judge_saturation(tables["saturation"], sat_cell, budget["saturation"]["depth"],
                                                budget["saturation_steps"], ctx.quick)
    verdicts.append(saturation)
    _plots(ctx, stats, tables, budget, sat_cell, budget["table1_activations"])

    layer = min(RMS_LAYER, budget["init_depth"]) - 1
    train = tables["train"]
    metrics = {
        "init_rms_ratio_at_layer": layer + 1,
        "init_rms_ratio": {s: describe(stats["rms"][s][:, layer] / stats["input_rms"]) for s in SCHEMES},
        "init_rms_ratio_predicted": {s: math.sqrt(stats["predicted_ms"][s][layer]) / stats["input_rms"]
                                     for s in SCHEMES},
        "final_train_accuracy": {c: describe(train.final("train_accuracy", cell=c)) for c in train.cells()},
        "final_test_accuracy": {c: describe(train.final("test_accuracy", cell=c)) for c in train.cells()},
        "steps_to_50pct_train": {c: train.steps_to("train_accuracy", TRAIN_TARGET, cell=c).tolist()
                                 for c in train.cells()},
        "saturation": sat_metrics,
        "table1_test_accuracy": {c: describe(tables["table1"].final("test_accuracy", cell=c))
                                 for c in tables["table1"].cells()},
        "configs": {"train": train_cfg.to_dict(), "zero": zero_cfg.to_dict(), "saturation": sat_cfg.to_dict(),
                    "table1": t1_cfg.to_dict()},
    }
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    name="he2015_initialization", description=__doc__, base=BASE, default_seeds=3, run=run)
cli.script(__name__, EXPERIMENT)
