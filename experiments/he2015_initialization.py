"""Initialization decides whether depth trains: variance propagation, He vs Glorot vs small init.

Papers: X. Glorot and Y. Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010 (eq. 1 "standard" and eq. 16 "normalized" init); K. He, X. Zhang, S.
        Ren and J. Sun, "Delving deep into rectifiers: surpassing human-level performance on ImageNet
        classification", ICCV 2015 (Sec. 2.2, eq. 10, Fig. 3-4); the seeds' "better initialization".
Claims: T4: with ReLU, Var(W) = 2/fan_in (He) keeps the signal's second moment constant through
        the layers, while 1/fan_in (LeCun; Glorot for square layers) halves it at every layer (an
        RMS factor 2^-15 ~ 3e-5 after 30 layers) and the gradients shrink with it; a 30-layer
        ReLU MLP trains with He init, while Glorot's "completely stalls" (He et al. Fig. 4) and a
        fixed std of 0.01 does not converge for deep models; zero init never breaks the symmetry
        between hidden units. (Glorot & Bengio's saturation and Table 1: glorot2010_saturation.)
Setup:  MNIST-1D with all 4000 training examples (no validation carve), inputs standardized.
        (1) At init (no training; 32 seeds vmapped): a depth-50, width-64 ReLU MLP per scheme (he,
        glorot, lecun, std_uniform, small_normal), zero biases; the RMS of every hidden layer's
        output on 512 training inputs, which for a net of depth L are its first L layers, against
        the recursion E[h_l^2] = fan_in Var(W_l) E[h_{l-1}^2] / 2 and its typical (median) value,
        whose log2 falls by a further 5/(2 n ln 2) bits per layer at width n (Hanin 2018); and the
        kernel-gradient RMS of every layer of the depth-30 net on the same batch (cross-entropy).
        (2) Training (C09): depth 30 (and 10 as the control), width 64, ReLU, SGD with momentum 0.9,
        lr 0.01, batch 128, ~1500 steps, 8 seeds vmapped, init he / glorot / small_normal.
        (3) Zero init: a 2 x 64 sigmoid MLP with init "zeros" vs glorot, lr 0.1, same budget; the
        per-unit incoming weight vectors after training.
        Budgets are set in steps: num_epochs follows from the dataset size and batch size. Parts 2-3
        are one sweep, its cells named by depth, activation and init; part 3 reads the trained models
        the sweep keeps (a resume of a --no-params run cannot). Longer than most experiments: three
        parts with their own criteria (part 1's statistics: dlfound.propagation.layer_statistics).
Run:    python -m experiments.he2015_initialization            # 47 s on 2 CPU cores (measured)
        python -m experiments.he2015_initialization --quick    # seconds; smoke test only
        python -m experiments.he2015_initialization --dataset fashion_mnist   # full size: the same
            step budgets, but every evaluation passes 70k images (~3x longer on CPU; fine on a GPU)
Expect: (CLAIMS.md C08/C09 calibrations) RMS(h_30)/RMS(x) ~0.5-2 for He vs ~2e-5 for Glorot and
        LeCun; fitted log2 slopes 0 / -1 / -1 / -2.6 / -8.3 bits per layer (he, glorot, lecun,
        std_uniform, small_normal); small_normal's signal underflows to exactly 0 near layer 30.
        He reaches 50% train accuracy at depth 30 in ~400 steps; Glorot stays at chance in most
        seeds; small_normal stays at chance; zero init keeps all units identical.
Pass:   every judged quantity's 95% paired-bootstrap interval over seeds (part 1: its 32 init
        seeds; parts 2-3: the sweep's seeds) clears its threshold; "in every seed" became the mean
        over seeds (the median for step counts; a target never reached counts as infinitely many
        steps). T4 (a) at init, |fitted slope of the mean log2 second moment per layer - the
        typical-value recursion| < 0.1 bit for every scheme, |log2 He's median RMS(h_30)/RMS(x)| < 2
        (the median in [0.25, 4]) and Glorot's and LeCun's mean < 1e-3 (C09 (a); CLAIMS asked for He
        in [0.25, 4] in 3/3 seeds at width 128: at width 64 and 32 seeds the finite-width spread puts
        single seeds below 0.25, so the criterion is on the median); (b) at depth 30 the largest over
        layers of median Glorot kernel gradient / He's < 1e-3, and |log10 He's median first/last
        hidden-layer gradient ratio| < 1; (c) He's median steps to 50% train accuracy < 1000 and
        Glorot's median / He's > 2 (C09 (b), (c)); (d) control: at depth 10 both median steps to 50%
        within the 1500-step budget (C09 (d)); (e) small_normal's mean final train accuracy at depth
        30 < 0.2; (f) zero init: in every seed and hidden layer the units' incoming weight vectors
        differ by <= 1e-6 of their norm (an identity, checked exactly on every model), the mean
        smallest kernel norm > 1e-3 (the weights moved), and mean(glorot - zero train accuracy) >
        0.10.
"""

from __future__ import annotations

import math

import numpy as np

from dlfound import claims, cli, plots
from dlfound.checkpoints import Models
from dlfound.config import Config, step_budget
from dlfound.data import load
from dlfound.models import layer_names
from dlfound.propagation import fitted_slope, layer_statistics, unit_spread
from dlfound.stats import describe
from dlfound.sweep import Sweep, axes_of, labelled, run_sweeps
from dlfound.table import Table

BASE = Config(dataset="mnist1d", depth=30, width=64, activation="relu", init="he", optimizer="momentum",
              learning_rate=0.01, momentum=0.9, batch_size=128, num_epochs=48, eval_every_epochs=2,
              validation_fraction=0.0)
SCHEMES = ("he", "glorot", "lecun", "std_uniform", "small_normal")
TRAIN_SCHEMES = ("he", "glorot", "small_normal")
CONTROL_SCHEMES = ("he", "glorot")
AXES = ("depth", "activation", "init")  # every cell names them: the parts are told apart in one table
# Budgets per part; "*steps" become num_epochs / eval_every_epochs per dataset (config.step_budget).
SETTINGS = {
    "init_depth": 50, "grad_depth": 30, "init_seeds": 32, "probe": 512,
    "deep": 30, "control": 10, "train_steps": 1500, "train_eval_steps": 62,
    "zero": {"depth": 2, "width": 64, "activation": "sigmoid", "learning_rate": 0.1},
}
TRAIN_TARGET = 0.5  # C09: 50% train accuracy
RMS_LAYER = 30  # He et al. Fig. 4 depth: RMS(h_30)/RMS(x)
SLOPE_TOLERANCE = 0.1  # bits per layer
UNDERFLOW_RMS = 1e-30  # layers whose RMS fell below this in some seed are left out of the slope fit
SYMMETRY_TOLERANCE = 1e-6


# ----------------------------------------------------------------------------- part 1: statistics at init

def log2_second_moment(rms_SxL: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log2 of each layer's second moment per seed, and the layers whose RMS stayed above UNDERFLOW_RMS."""
    with np.errstate(divide="ignore"):
        return 2 * np.log2(rms_SxL), np.all(rms_SxL > UNDERFLOW_RMS, axis=0)


def seed_slopes(log2_ms_SxL: np.ndarray, valid_L: np.ndarray) -> np.ndarray:
    """Per seed, the least-squares slope (bits per layer) of log2 second moment over the valid layers; a fit
    is linear in its data, so their mean is the slope of the seed-mean (`propagation.fitted_slope`)."""
    layers = np.arange(1, log2_ms_SxL.shape[1] + 1)[valid_L]
    if layers.size < 2:
        return np.full(log2_ms_SxL.shape[0], np.nan)
    return np.polyfit(layers, log2_ms_SxL[:, valid_L].T, 1)[0]


def _init_effects(stats: dict, ratio: dict, layer: int) -> list[dict]:
    effects = [claims.effect(
        f"|fitted slope - recursion| (bits/layer), {s}",
        lambda v, s=s: np.abs(v[s].mean(-1) - stats["typical_slope"][s]),
        {s: seed_slopes(*log2_second_moment(stats["rms"][s]))}, SLOPE_TOLERANCE, higher_passes=False)
        for s in SCHEMES]
    effects.append(claims.effect(f"|log2 median He RMS(h_{layer + 1})/RMS(x)|",
                                 lambda v: np.abs(np.log2(np.median(v["he"], -1))), {"he": ratio["he"]}, 2.0,
                                 higher_passes=False))
    effects += [claims.effect(f"mean {s} RMS(h_{layer + 1})/RMS(x)", lambda v, s=s: v[s].mean(-1),
                              {s: ratio[s]}, 1e-3, higher_passes=False) for s in ("glorot", "lecun")]
    return effects


def _judge_init(stats: dict, budget: dict, quick: bool) -> list[dict]:
    layer = min(RMS_LAYER, budget["init_depth"]) - 1
    ratio = {s: stats["rms"][s][:, layer] / stats["input_rms"] for s in SCHEMES}
    slopes = {s: fitted_slope(*log2_second_moment(stats["rms"][s])) for s in SCHEMES}
    predicted = {s: math.sqrt(stats["predicted_ms"][s][layer]) / stats["input_rms"] for s in SCHEMES}
    underflow = {s: int(np.argmax(np.any(stats["rms"][s] == 0, axis=0))) + 1
                 if np.any(stats["rms"][s] == 0) else None for s in SCHEMES}
    effects = _init_effects(stats, ratio, layer)
    a = claims.judge(
        "T4", "At init, ReLU activations keep their scale with He init and shrink geometrically with "
        "LeCun/Glorot (second moment halved per layer), std_uniform and small_normal (He et al. 2015, "
        "eq. 10)",
        f"95% intervals over {budget['init_seeds']} init seeds: |fitted log2 second-moment slope (seed mean) "
        f"- the typical-value recursion| below {SLOPE_TOLERANCE} bit/layer for every scheme; |log2 He's "
        f"median RMS(h_{layer + 1})/RMS(x)| below 2 (the median in [0.25, 4]); Glorot's and LeCun's mean "
        "below 1e-3",
        claims.outcome(effects),
        "slopes (measured vs predicted bits/layer): "
        + ", ".join(f"{s} {slopes[s]:.3f} vs {stats['typical_slope'][s]:.3f}" for s in SCHEMES)
        + f"; RMS(h_{layer + 1})/RMS(x) median (mean-field prediction): "
        + ", ".join(f"{s} {claims.fmt(np.median(ratio[s]))} ({claims.fmt(predicted[s])})" for s in SCHEMES)
        + "; exact float32 zeros from layer: "
        + ", ".join(f"{s} {underflow[s]}" for s in SCHEMES if underflow[s]),
        {"slope": slopes, "predicted_slope": stats["typical_slope"],
         "rms_ratio": {s: ratio[s].tolist() for s in SCHEMES}, "predicted_rms_ratio": predicted,
         "first_zero_layer": underflow}, quick=quick, effects=effects)
    grads = {s: np.median(stats["grad_rms"][s], axis=0) for s in SCHEMES}
    he, glorot = grads["he"], grads["glorot"]
    he_flat = claims.ratio(he[0], he[-2])
    rows = {s: stats["grad_rms"][s] for s in ("he", "glorot")}
    with np.errstate(divide="ignore", invalid="ignore"):
        effects = [
            claims.effect_of_rows("largest layer's median Glorot / He kernel-gradient RMS",
                        lambda v: np.max(np.median(v["glorot"], -2) / np.median(v["he"], -2), -1), rows, 1e-3,
                        higher_passes=False),
            claims.effect("|log10 He median gradient RMS, first / last hidden layer|",
                          lambda v: np.abs(np.log10(np.median(v["first"], -1) / np.median(v["last"], -1))),
                          {"first": rows["he"][:, 0], "last": rows["he"][:, -2]}, 1.0, higher_passes=False)]
    b = claims.judge(
        "T4", "At init of a deep ReLU MLP, He's gradients reach every layer while Glorot's are all "
        "diminished (He et al. 2015, Fig. 4: Xavier's gradients 'are all diminishing')",
        f"depth {budget['grad_depth']}, 95% intervals over init seeds: the largest over layers of median "
        "Glorot kernel-gradient RMS / He's below 1e-3; |log10 He's median first / last hidden-layer gradient "
        "RMS| below 1 (the ratio in [0.1, 10])",
        claims.outcome(effects),
        "median kernel-gradient RMS, first hidden / last hidden / readout: "
        + ", ".join(f"{s} " + " / ".join(claims.fmt(grads[s][i]) for i in (0, -2, -1))
                    for s in ("he", "glorot"))
        + ", " + ", ".join(f"{s} {claims.fmt(grads[s][0])}" for s in SCHEMES[2:])
        + f"; largest glorot/he layer ratio {claims.fmt(np.max(glorot / he))}; he first/last "
        f"{claims.fmt(he_flat)}",
        {"median_grad_rms": {s: grads[s].tolist() for s in SCHEMES}}, quick=quick, effects=effects)
    return [a, b]


# ----------------------------------------------------------------------------- parts 2-3: training

def configs(cfg: Config, budget: dict, num_train: int) -> dict[str, Config]:
    """The config of each trained part, with its step budget."""
    def part(name, changes):
        steps, eval_steps = budget[f"{name}_steps"], budget[f"{name}_eval_steps"]
        return step_budget(cfg.replace(**changes), num_train, steps, eval_steps)

    train = part("train", {})
    return {"train": train, "zero": train.replace(**budget["zero"])}


def at(cfg: Config, **axes) -> dict:
    """A cell's axes: the part's depth, activation and init unless `axes` names others."""
    return axes_of(cfg, AXES, **axes)


def sweeps(cfgs: dict, budget: dict) -> list[Sweep]:
    """Parts 2-3 as one sweep: every cell carries depth, activation and init, so they are told apart."""
    train, deep, control = cfgs["train"], budget["deep"], budget["control"]
    return ([labelled(train, AXES, depth=(deep,), init=TRAIN_SCHEMES)]
            + ([labelled(train, AXES, depth=(control,), init=CONTROL_SCHEMES)] if control != deep else [])
            + [labelled(cfgs["zero"], AXES, init=("zeros", "glorot"))])


def _train_runs(budget: dict) -> list[tuple[int, str]]:
    """(depth, init) of part 2's cells."""
    runs = [(budget["deep"], s) for s in TRAIN_SCHEMES] + [(budget["control"], s) for s in CONTROL_SCHEMES]
    return list(dict.fromkeys(runs))


def _judge_training(table: Table, cfg: Config, budget: dict, quick: bool) -> list[dict]:
    deep, control, limit = budget["deep"], budget["control"], budget["train_steps"]
    steps = {k: table.steps_to("train_accuracy", TRAIN_TARGET, **at(cfg, depth=k[0], init=k[1]))
             for k in _train_runs(budget)}
    final = {k: table.final("train_accuracy", **at(cfg, depth=k[0], init=k[1])) for k in _train_runs(budget)}
    he, glorot = steps[(deep, "he")], steps[(deep, "glorot")]
    ratio = claims.ratio(np.median(glorot), np.median(he))
    fmt_steps = lambda s: claims.fmt(s.tolist())
    effects = [claims.effect(f"He median steps to {TRAIN_TARGET:.0%} train, depth {deep}",
                             claims.median_of("he"), {"he": he}, 1000, higher_passes=False),
               claims.effect(f"median steps to {TRAIN_TARGET:.0%} train, Glorot / He, depth {deep}",
                             claims.median_ratio("glorot", "he"), {"he": he, "glorot": glorot}, 2.0)]
    c = claims.judge(
        "T4", f"He init trains a {deep}-layer ReLU MLP; Glorot init stalls or is much slower (He et al. "
        "2015, Fig. 4)",
        f"95% intervals over seeds: He's median steps to {TRAIN_TARGET:.0%} train accuracy below 1000; "
        "median Glorot steps / median He steps above 2 (a target never reached counts as infinitely many "
        "steps)",
        claims.outcome(effects),
        f"steps to {TRAIN_TARGET:.0%} train: he {fmt_steps(he)}, glorot {fmt_steps(glorot)} (median ratio "
        f"{claims.fmt(ratio)}); final train accuracy he {claims.fmt(final[(deep, 'he')])}, glorot "
        f"{claims.fmt(final[(deep, 'glorot')])}",
        {"steps_he": he.tolist(), "steps_glorot": glorot.tolist(), "ratio": ratio}, quick=quick,
        effects=effects)
    ctrl = [steps[(control, s)] for s in CONTROL_SCHEMES]
    effects = [claims.effect(f"{s} median steps to {TRAIN_TARGET:.0%} train, depth {control}",
                             claims.median_of(s), {s: v}, limit, higher_passes=False)
               for s, v in zip(CONTROL_SCHEMES, ctrl)]
    d = claims.judge(
        "T4", f"Control: at depth {control} both He and Glorot train (the failure is one of depth)",
        f"95% intervals over seeds of He's and Glorot's median steps to {TRAIN_TARGET:.0%} train accuracy at "
        f"depth {control} below the {limit}-step budget (never reached = infinitely many)",
        claims.outcome(effects),
        "steps to target: " + ", ".join(f"{s} {fmt_steps(v)}" for s, v in zip(CONTROL_SCHEMES, ctrl)),
        {s: v.tolist() for s, v in zip(CONTROL_SCHEMES, ctrl)}, quick=quick, effects=effects)
    small = final[(deep, "small_normal")]
    grad0 = table.history("grad_norm", layer=0, **at(cfg, depth=deep, init="small_normal"))[:, 0]
    effects = [claims.effect(f"small_normal mean final train accuracy, depth {deep}", claims.mean_of("small"),
                             {"small": small}, 0.2, higher_passes=False)]
    e = claims.judge(
        "T4", f"A fixed small init N(0, 0.01^2) stalls a {deep}-layer ReLU MLP (He et al. 2015: std 0.01 "
        "fails for > 8 layers)",
        "95% interval over seeds of the mean final train accuracy below 0.2 (chance 0.1)",
        claims.outcome(effects),
        f"final train accuracy {claims.fmt(small)}; first-layer gradient norm at init {claims.fmt(grad0)}",
        {"final_train_accuracy": small.tolist(), "first_layer_grad_norm_at_init": grad0.tolist()},
        quick=quick, effects=effects)
    return [c, d, e]


def symmetry(models: Models) -> dict:
    """Per hidden layer and model: the largest spread between units' incoming weights, the kernel's
    norm; per model: the readout rows' spread (one row per unit of the last hidden layer)."""
    params, spreads, norms = models.variables["params"], [], []
    for name in layer_names(models.cfg.depth)[:-1]:
        kernel, bias = np.asarray(params[name]["kernel"]), np.asarray(params[name]["bias"])
        spreads.append([unit_spread(kernel[m], bias[m]) for m in range(kernel.shape[0])])
        norms.append(np.linalg.norm(kernel.reshape(kernel.shape[0], -1), axis=1).tolist())
    readout = np.asarray(params["readout"]["kernel"])  # (models, units, classes): rows = units
    rows = [float(np.max(np.abs(r - r[:1])) / max(np.abs(r).max(), 1e-30)) for r in readout]
    return {"spread": spreads, "kernel_norm": norms, "readout_row_spread": rows}


def _judge_zero(table: Table, cfg: Config, quick: bool) -> dict:
    sym = symmetry(table.models(**at(cfg, init="zeros")))
    spread = np.max(np.array(sym["spread"]), axis=0)  # per seed, worst hidden layer
    moved = np.min(np.array(sym["kernel_norm"]), axis=0)
    zero = table.final("train_accuracy", **at(cfg, init="zeros"))
    glorot = table.final("train_accuracy", **at(cfg, init="glorot"))
    effects = [claims.effect("mean smallest hidden kernel norm, zero init", claims.mean_of("norm"),
                             {"norm": moved}, 1e-3),
               claims.effect("glorot - zero-init train accuracy", claims.mean_difference("glorot", "zeros"),
                             {"glorot": glorot, "zeros": zero}, 0.10)]
    return claims.judge(
        "T4", "Zero init never breaks the symmetry: all hidden units of a layer stay identical after "
        "training",
        f"in every seed and hidden layer the units' incoming weights differ by <= {SYMMETRY_TOLERANCE:g} of "
        "their norm (an identity, checked on every model); 95% intervals over seeds: the mean smallest "
        "hidden kernel norm above 1e-3 (the kernels moved) and mean(glorot - zero-init train accuracy) above "
        "+0.10",
        claims.outcome(effects, bool(np.all(spread <= SYMMETRY_TOLERANCE))),
        f"largest per-unit spread {claims.fmt(spread)} (readout rows "
        f"{claims.fmt(sym['readout_row_spread'])}); smallest hidden kernel norm {claims.fmt(moved)}; train "
        f"accuracy zeros {claims.fmt(zero)} vs glorot "
        f"{claims.fmt(glorot)}",
        {"spread": spread.tolist(), "kernel_norm": moved.tolist(), "zeros_train_accuracy": zero.tolist(),
         "glorot_train_accuracy": glorot.tolist()}, quick=quick, effects=effects)


# ----------------------------------------------------------------------------- plots and run

def _plots(ctx, stats, table: Table, cfgs: dict, budget: dict) -> None:
    plots.signal_propagation(ctx.run_dir.file("init_activation_and_gradient_rms.png"), stats,
                             budget["grad_depth"])
    deep = {s: at(cfgs["train"], depth=budget["deep"], init=s) for s in TRAIN_SCHEMES}
    plots.curves_with_bands(
        ctx.run_dir.file("train_accuracy_deep.png"), table.steps(**deep["he"]),
        {s: table.history("train_accuracy", **axes) for s, axes in deep.items()},
        "step", "train accuracy", f"Depth {budget['deep']} ReLU MLP: training accuracy by init",
        hlines={f"T4 target {TRAIN_TARGET:.0%}": TRAIN_TARGET})


def _metrics(stats: dict, table: Table, cfgs: dict, budget: dict) -> dict:
    """Metrics keyed as in earlier summaries ("depth=30,init=he")."""
    layer = min(RMS_LAYER, budget["init_depth"]) - 1
    train = {f"depth={d},init={s}": at(cfgs["train"], depth=d, init=s) for d, s in _train_runs(budget)}
    return {
        "init_rms_ratio_at_layer": layer + 1,
        "init_rms_ratio": {s: describe(stats["rms"][s][:, layer] / stats["input_rms"]) for s in SCHEMES},
        "init_rms_ratio_predicted": {s: math.sqrt(stats["predicted_ms"][s][layer]) / stats["input_rms"]
                                     for s in SCHEMES},
        "final_train_accuracy": {k: describe(table.final("train_accuracy", **a)) for k, a in train.items()},
        "final_test_accuracy": {k: describe(table.final("test_accuracy", **a)) for k, a in train.items()},
        "steps_to_50pct_train": {k: table.steps_to("train_accuracy", TRAIN_TARGET, **a).tolist()
                                 for k, a in train.items()},
        "configs": {name: cfg.to_dict() for name, cfg in cfgs.items()},
    }


def run(ctx: cli.Context) -> dict:
    budget, cfg = ctx.settings, ctx.cfg
    data = load(cfg.dataset, validation_fraction=cfg.validation_fraction, seed=cfg.seed)
    cfgs = configs(cfg, budget, data.num_train)
    table = run_sweeps(sweeps(cfgs, budget), data, ctx.seeds, ctx.run_dir, quiet=ctx.quiet)
    width = cfg.width if isinstance(cfg.width, int) else cfg.widths[0]
    stats = layer_statistics(SCHEMES, data, width, budget["init_depth"], budget["grad_depth"],
                             budget["probe"], list(range(budget["init_seeds"])))
    quick = ctx.quick
    verdicts = (_judge_init(stats, budget, quick) + _judge_training(table, cfgs["train"], budget, quick)
                + [_judge_zero(table, cfgs["zero"], quick)])
    _plots(ctx, stats, table, cfgs, budget)
    return {"metrics": _metrics(stats, table, cfgs, budget), "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="Glorot & Bengio (2010); He et al. (2015)", claim_ids=("T4",),
    name="he2015_initialization", description=__doc__, base=BASE, run=run, default_seeds=8,
    settings=SETTINGS, quick=cli.Overrides(settings={  # one depth for deep and control: 8 small cells
        "init_depth": 6, "grad_depth": 4, "init_seeds": 4, "deep": 2, "control": 2, "train_steps": 62,
        "zero": {**SETTINGS["zero"], "width": 8}}))
cli.script(__name__, EXPERIMENT)
