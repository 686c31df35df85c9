"""The seeds' recipe: learning is forward, loss, backward, update; hand-written backprop equals autodiff.

Source: the seeds (002: "initialize; loop: forward propagation, compute cost, backward
        propagation, update parameters", in numpy; 003: "forward pass, compute loss,
        backpropagate gradients, update parameters"); the delta recursion is the generalised
        delta rule of D. E. Rumelhart, G. E. Hinton and R. J. Williams, "Learning
        representations by back-propagating errors", Nature 323:533-536, 1986.
Claim:  F4: the from-scratch recipe (`dlfound.backprop`: forward pass, hand-written output
        delta, delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l), dW_l = a_{l-1}^T delta_l, SGD update;
        no autodiff) computes the true gradient, so it trains exactly like `jax.grad`.
Setup:  MNIST-1D (4000 train, no validation carve, 1000 test), the seed's MLP shape scaled to
        40 inputs: 40-128-64-10 ReLU (He init), softmax cross-entropy, plain SGD lr 0.05,
        batch 64, 25 epochs (1550 steps), 32 seeds vmapped. (1) Training: `backprop.train`'s run
        twice from the same key, once with the hand-written gradients and once with `jax.value_and_grad`
        of the same loss: same init, same batches; in float64 (inside a `jax.enable_x64`
        context) and in float32. (2) Gradients at initialisation on 256 training examples for
        ReLU, tanh, sigmoid and GELU hidden units, and for ReLU also at the first seed's trained
        parameters: relative error ||g - g_ref|| / ||g_ref|| per layer tensor (W and b of each
        layer) against jax.grad (float32 and float64) and, in float64, against central finite
        differences (h = 1e-6) on 16 random coordinates of each tensor.
Run:    python -m experiments.scratch_backprop           # 41 s on 2 CPU cores (measured)
        python -m experiments.scratch_backprop --quick   # seconds; smoke test only
Expect: float64 loss curves equal to ~1e-15 at every step; float32 curves agree to ~5e-7
        (rounding level; the two sum in different orders) for ~1100 steps, after which training
        amplifies the rounding differences to ~1e-2 by step 1550, while the seed-to-seed spread
        is ~0.5 and test accuracies agree within half a point; relative gradient errors ~1e-7
        (float32) and ~1e-15 (float64) against jax.grad, and 1e-9..2e-7 against finite
        differences.
Pass:   training, by 95% paired-bootstrap intervals over seeds: (1) float64: the interval of
        the mean over seeds of each seed's max |loss_scratch - loss_autodiff| over every step lies
        below 1e-10; (2) float32: the same over the first epoch below 1e-5, and that of the mean
        |final test accuracy difference| below 0.01 (1e-5 is ~20x the measured first-epoch
        difference). Gradients, exact (fixed keys and data, every tensor and activation): (3)
        relative error against jax.grad < 1e-5 in float32 (DESIGN.md) and < 1e-10 in float64;
        (4) relative error against central differences < 1e-6 in float64 (truncation h^2 plus
        rounding eps/h).
Length: longer than most: it carries its own gradient checks (per-tensor relative error against
        jax.grad and central finite differences), which `dlfound.backprop` does not provide, and
        its own epoch loop (`backprop.train` sorts a fresh permutation at every step, ~95% of
        its time on CPU).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from dlfound import backprop as bp
from dlfound import claims, cli, plots
from dlfound.config import Config
from dlfound.data import load
from dlfound.stats import describe

BASE = Config(dataset="mnist1d", depth=2, width=(128, 64), activation="relu", optimizer="sgd",
              learning_rate=0.05, batch_size=64, num_epochs=25, validation_fraction=0.0)
CHECK_BATCH = 256
FD_STEP = 1e-6
LOSS_TOL = {"float32": 1e-5, "float64": 1e-10}
TEST_TOL = 0.01
AUTODIFF_TOL = {"float32": 1e-5, "float64": 1e-10}
FD_TOL = 1e-6


def rel_err(a, b) -> float:
    """||a - b|| / ||b|| in float64 (the absolute error when b = 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / den) if den > 0 else float(np.linalg.norm(a - b))


def tensor_names(num_layers: int) -> list[str]:
    """W1, b1, ..., WL, bL in the order of `backprop` params."""
    return [f"{kind}{l}" for l in range(1, num_layers + 1) for kind in ("W", "b")]


@functools.partial(jax.jit, static_argnames=("activation", "loss"))
def _gradients(params, x, y, activation: str, loss: str):
    """(hand-written gradients, jax.grad gradients), each as params-shaped lists of (W, b)."""
    _, scratch = bp.loss_and_grads(params, x, y, activation, loss)
    return scratch, jax.grad(bp.loss_value)(params, x, y, activation, loss)


def autodiff_errors(params, x, y, activation: str, loss: str) -> list[float]:
    """Relative error of the hand-written gradient against jax.grad, per tensor (dtype of params)."""
    scratch, reference = _gradients(params, x, y, activation, loss)
    return [rel_err(g, r) for g, r in zip(jax.tree.leaves(scratch), jax.tree.leaves(reference))]


def finite_difference_errors(params, x, y, activation: str, loss: str, num_coords: int, step: float = FD_STEP,
                             seed: int = 0) -> list[float]:
    """Relative error of the hand-written gradient against central differences on random coordinates.

    For each tensor, `num_coords` coordinates i (fixed rng `seed`) give
    (L(theta + h e_i) - L(theta - h e_i)) / 2h.
    Use float64 params (inside `jax.enable_x64`): in float32 rounding (eps/h) swamps the difference.
    """
    scratch, _ = _gradients(params, x, y, activation, loss)
    theta, unravel = ravel_pytree(params)
    grad_flat, _ = ravel_pytree(scratch)
    sizes = [t.size for t in jax.tree.leaves(params)]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    rng = np.random.default_rng(seed)
    coords = [offsets[i] + rng.choice(size, min(num_coords, size), replace=False)
              for i, size in enumerate(sizes)]

    @jax.jit
    def central(index):
        e = jnp.zeros_like(theta).at[index].set(step)
        plus = bp.loss_value(unravel(theta + e), x, y, activation, loss)
        minus = bp.loss_value(unravel(theta - e), x, y, activation, loss)
        return (plus - minus) / (2 * step)

    all_coords = np.concatenate(coords)
    fd = np.asarray(jax.vmap(central)(jnp.asarray(all_coords)))
    fd_by_coord = dict(zip(all_coords.tolist(), fd.tolist()))
    grad_flat = np.asarray(grad_flat)
    return [rel_err([fd_by_coord[i] for i in c.tolist()], grad_flat[c]) for c in coords]


def _train_fn(cfg: Config, sizes, autodiff: bool):
    activation, loss = cfg.activation, cfg.loss
    grad_fn = None
    if autodiff:
        def grad_fn(p, xb, yb):
            return jax.value_and_grad(bp.loss_value)(p, xb, yb, activation, loss)

    def train(key, x, y):
        return bp.train(key, x, y, sizes, activation, loss, cfg.learning_rate,
                        cfg.num_epochs * (x.shape[0] // cfg.batch_size), cfg.batch_size,
                        scheme=cfg.resolved_init, grad_fn=grad_fn)

    return jax.jit(jax.vmap(train, in_axes=(0, None, None)))


def _accuracy(params, x, y, activation: str) -> float:
    out, _ = bp.forward(params, x, activation)
    return float(np.mean(np.argmax(np.asarray(out), axis=-1) == np.asarray(y)))


def _gradient_checks(cfg: Config, sizes, data, trained, activations, num_coords: int) -> dict:
    """Errors per tensor vs jax.grad (float32, float64) and vs finite differences (float64).

    One row per activation at initialisation, plus the experiment's activation at the trained params.
    """
    x32, y = jnp.asarray(data.x_train[:CHECK_BATCH]), jnp.asarray(data.y_train[:CHECK_BATCH])
    points = {a: (a, bp.init_params(jax.random.key(0), sizes, Config(activation=a).resolved_init))
              for a in activations}
    points[f"{cfg.activation} (trained)"] = (cfg.activation, trained)
    out = {}
    for name, (activation, params) in points.items():
        row = {"autodiff_float32": autodiff_errors(params, x32, y, activation, cfg.loss)}
        with jax.enable_x64(True):
            p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
            x64 = jnp.asarray(data.x_train[:CHECK_BATCH], jnp.float64)
            row["autodiff_float64"] = autodiff_errors(p64, x64, y, activation, cfg.loss)
            row["finite_difference_float64"] = finite_difference_errors(p64, x64, y, activation, cfg.loss,
                                                                        num_coords)
        out[name] = row
    return out


def _training(cfg: Config, sizes, data, seeds, precision: str) -> dict:
    """Trains every seed twice (hand-written gradients, then jax.grad) from the same keys in `precision`."""
    out = {}
    with jax.enable_x64(precision == "float64"):
        dtype = jnp.float64 if precision == "float64" else jnp.float32
        x = jnp.asarray(data.x_train.reshape(len(data.x_train), -1), dtype)
        x_test = jnp.asarray(data.x_test.reshape(len(data.x_test), -1), dtype)
        keys = jax.vmap(jax.random.key)(jnp.asarray(list(seeds), jnp.uint32))
        for kind, autodiff in (("scratch", False), ("autodiff", True)):
            params, losses = _train_fn(cfg, sizes, autodiff)(keys, x, jnp.asarray(data.y_train))
            out[kind] = np.asarray(losses, np.float64)
            out[f"test_{kind}"] = [_accuracy(jax.tree.map(lambda a, i=i: a[i], params), x_test, data.y_test,
                                             cfg.activation) for i in range(len(seeds))]
            out[f"params_{kind}"] = jax.tree.map(np.asarray, params)
    out["diff"] = np.abs(out["scratch"] - out["autodiff"])
    return out


def _curve_evidence(run: dict) -> str:
    diff = run["diff"]
    at = int(np.unravel_index(diff.argmax(), diff.shape)[1])
    return (f"max |loss_scratch - loss_autodiff| {diff.max():.2e} over {diff.shape[0]} seeds x "
            f"{diff.shape[1]} steps (at step {at}); final loss {claims.fmt(run['scratch'][:, -1].mean())} vs "
            f"{claims.fmt(run['autodiff'][:, -1].mean())}; mean test accuracy "
            f"{claims.fmt(np.mean(run['test_scratch']))} vs {claims.fmt(np.mean(run['test_autodiff']))}")


def mean_below(name: str, per_seed, threshold: float) -> dict:
    """The effect mean over seeds of `per_seed` (S,), which must lie below `threshold`."""
    return claims.effect(f"mean over seeds of {name}", claims.mean_of("x"), {"x": per_seed}, threshold,
                         higher_passes=False)


def _judge_training(runs, steps_per_epoch, quick) -> list[dict]:
    f32, f64 = runs["float32"], runs["float64"]
    spread = (float(np.abs(f32["scratch"][0] - f32["scratch"][-1]).max()) if len(f32["scratch"]) > 1
              else float("nan"))
    first_epoch = f32["diff"][:, :steps_per_epoch].max(axis=1)
    test_gap = np.abs(np.subtract(f32["test_scratch"], f32["test_autodiff"]))
    whole64 = mean_below("float64 max |loss difference|", f64["diff"].max(axis=1), LOSS_TOL["float64"])
    first32 = mean_below("float32 first-epoch max |loss difference|", first_epoch, LOSS_TOL["float32"])
    test32 = mean_below("float32 |test accuracy difference|", test_gap, TEST_TOL)
    return [
        claims.judge(
            "F4", "The from-scratch recipe and jax.grad train the same network to the same loss curve",
            "same key, same batches, float64: the 95% interval over seeds of the mean of each seed's max "
            f"|loss difference| over every step lies below {LOSS_TOL['float64']:g}",
            claims.outcome([whole64]), _curve_evidence(f64),
            {"max_abs_loss_difference": float(f64["diff"].max()),
             "test_accuracy_scratch": f64["test_scratch"], "test_accuracy_autodiff": f64["test_autodiff"]},
            quick=quick, effects=[whole64]),
        claims.judge(
            "F4", "In float32 the two implementations differ only by rounding",
            "float32, 95% intervals over seeds: the mean of each seed's max |loss difference| over the first "
            f"epoch ({steps_per_epoch} steps; later, SGD amplifies rounding differences) below "
            f"{LOSS_TOL['float32']:g}, and the mean |final test accuracy difference| below {TEST_TOL}",
            claims.outcome([first32, test32]),
            f"first epoch max |difference| {first_epoch.max():.2e}; whole run: " + _curve_evidence(f32)
            + f"; largest seed-to-seed loss gap {claims.fmt(spread)}",
            {"first_epoch_max_abs_difference": float(first_epoch.max()),
             "max_abs_loss_difference": float(f32["diff"].max()),
             "max_test_accuracy_gap": float(test_gap.max()), "seed_spread": spread},
            quick=quick, effects=[first32, test32]),
    ]


def _judge_gradients(grads, names, quick) -> list[dict]:
    def worst(kind):
        return max(max(row[kind]) for row in grads.values())

    def table(kind):
        return "; ".join(f"{name}: " + ", ".join(f"{t} {v:.1e}" for t, v in zip(names, row[kind]))
                         for name, row in grads.items())

    return [
        claims.judge(
            "F4", "Hand-written backprop gradients equal jax.grad, layer by layer",
            f"relative error < {AUTODIFF_TOL['float32']:g} (float32) and < {AUTODIFF_TOL['float64']:g} "
            "(float64) for every tensor and activation",
            worst("autodiff_float32") < AUTODIFF_TOL["float32"]
            and worst("autodiff_float64") < AUTODIFF_TOL["float64"],
            f"worst float32 {worst('autodiff_float32'):.1e}, worst float64 {worst('autodiff_float64'):.1e}; "
            f"float32 per tensor: {table('autodiff_float32')}",
            {name: {k: dict(zip(names, v)) for k, v in row.items() if k.startswith("autodiff")}
             for name, row in grads.items()}, quick=quick),
        claims.judge(
            "F4", "Hand-written backprop gradients equal central finite differences",
            f"float64, h = {FD_STEP:g}: relative error < {FD_TOL:g} for every tensor and activation",
            worst("finite_difference_float64") < FD_TOL,
            f"worst {worst('finite_difference_float64'):.1e}; per tensor: "
            f"{table('finite_difference_float64')}",
            {name: dict(zip(names, row["finite_difference_float64"])) for name, row in grads.items()},
            quick=quick),
    ]


def _plots(ctx, runs, grads, names) -> None:
    f32 = runs["float32"]
    steps = np.arange(f32["scratch"].shape[1])
    plots.curves_with_bands(ctx.run_dir.file("loss_curves.png"), steps,
                            {"from scratch (hand-written backward)": f32["scratch"],
                             "jax.grad": f32["autodiff"]},
                            "step", "minibatch loss", "Same key, same batches (float32): the curves coincide",
                            logy=True)
    plots.curves_with_bands(ctx.run_dir.file("loss_difference.png"), steps,
                            {f"|scratch - autodiff|, {p}": np.maximum(r["diff"], 1e-17)
                             for p, r in runs.items()},
                            "step", "absolute loss difference (floored at 1e-17)",
                            "Loss difference between the two implementations", logy=True)
    for kind in ("autodiff_float32", "finite_difference_float64"):
        errors = np.array([row[kind] for row in grads.values()])
        plots.heatmap(ctx.run_dir.file(f"gradient_error_{kind}.png"), np.log10(np.maximum(errors, 1e-17)),
                      None, list(grads), names, f"log10 relative gradient error: {kind.replace('_', ' ')}",
                      "{:.1f}", xlabel="tensor", ylabel="hidden activation")


def run(ctx: cli.Context) -> dict:
    cfg = ctx.cfg
    data = load(cfg.dataset, validation_fraction=cfg.validation_fraction, seed=cfg.seed)
    sizes = [int(np.prod(data.x_train.shape[1:])), *cfg.widths, data.num_classes]
    steps_per_epoch = len(data.x_train) // cfg.batch_size
    num_steps = cfg.num_epochs * steps_per_epoch
    runs = {p: _training(cfg, sizes, data, ctx.seeds, p) for p in ("float32", "float64")}
    trained = jax.tree.map(lambda a: jnp.asarray(a[0]), runs["float32"]["params_scratch"])
    grads = _gradient_checks(cfg, sizes, data, trained, ctx.settings["grad_activations"],
                             ctx.settings["fd_coords"])
    names = tensor_names(len(sizes) - 1)
    _plots(ctx, runs, grads, names)
    metrics = {
        "sizes": sizes, "num_steps": num_steps, "init": cfg.resolved_init,
        **{p: {"max_abs_loss_difference": float(r["diff"].max()),
               "final_loss": {k: describe(r[k][:, -50:].mean(axis=1)) for k in ("scratch", "autodiff")},
               "test_accuracy": {k: describe(r[f"test_{k}"]) for k in ("scratch", "autodiff")},
               "final_param_max_rel_difference": max(rel_err(a, b) for a, b in zip(
                   jax.tree.leaves(r["params_scratch"]), jax.tree.leaves(r["params_autodiff"])))}
           for p, r in runs.items()},
        "gradient_errors": {name: {k: dict(zip(names, v)) for k, v in row.items()}
                            for name, row in grads.items()},
    }
    verdicts = _judge_training(runs, steps_per_epoch, ctx.quick) + _judge_gradients(grads, names, ctx.quick)
    return {"metrics": metrics, "claims": verdicts}


EXPERIMENT = cli.Experiment(
    paper="the seeds; Rumelhart, Hinton & Williams (1986)", claim_ids=("F4",),
    name="scratch_backprop", description=__doc__, base=BASE, run=run, default_seeds=32,
    settings={"grad_activations": ("relu", "tanh", "sigmoid", "gelu"), "fd_coords": 16},
    quick=cli.Overrides(config={"num_epochs": 1}, settings={"grad_activations": ("relu",), "fd_coords": 4}))
cli.script(__name__, EXPERIMENT)
