"""Pure training: `train_step`, `evaluate`, and `make_train(cfg)`, a whole run as one program.

Nothing here is jitted: `jax.jit` goes on the outermost call, for instance
    train = make_train(cfg)
    results = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, data)   # an ensemble of seeds
Epochs draw a fresh permutation of the training set and drop the last partial batch.
Evaluation runs at initialization and after every `eval_every_epochs` epochs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from flax.training import train_state

from dlfound import initializers, losses, metrics, optim
from dlfound.config import Config
from dlfound.data.dataset import Dataset
from dlfound.hyperparams import Hyperparams
from dlfound.models import choose, layer_names
from dlfound.packing import Pack

PROBE_EXAMPLES = 512  # fixed training examples for per-layer gradient and activation statistics
EVAL_CHUNK = 8192  # evaluation batch: bounds memory on large splits


class TrainState(train_state.TrainState):
    """Flax TrainState plus batch-norm statistics, a dropout key, the divergence step and, in a
    packed program, the member's structural `variant` (None otherwise)."""

    batch_stats: Any
    dropout_key: jax.Array
    dropout_rate: jax.Array
    diverged_step: jax.Array  # -1 until the first non-finite loss
    variant: Any
    loss: losses.Loss = struct.field(pytree_node=False)
    num_classes: int = struct.field(pytree_node=False)
    use_dropout: bool = struct.field(pytree_node=False, default=False)


@struct.dataclass
class TrainResult:
    """Final parameters, the metric history (leading axis T = evaluations) and divergence."""

    params: Any
    batch_stats: Any
    history: dict
    diverged_step: jax.Array


def _apply(state: TrainState, params, x, *, train: bool, key=None, capture=False):
    """Runs the model; returns (outputs, new batch_stats, intermediates)."""
    variables = {"params": params}
    mutable = []
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
        if train:
            mutable.append("batch_stats")
    if capture:
        mutable.append("intermediates")
    rngs = {"dropout": key} if key is not None and state.use_dropout else None
    kwargs = {"dropout_rate": state.dropout_rate} if train and state.use_dropout else {}
    out, updates = state.apply_fn(variables, x, train=train, rngs=rngs, mutable=mutable,
                                  variant=state.variant, **kwargs)
    return out, updates.get("batch_stats", state.batch_stats), updates.get("intermediates", {})


def train_step(state: TrainState, batch: tuple[jax.Array, jax.Array]):
    """One update: forward, loss, backward (`jax.value_and_grad`), optimizer step.

    Returns the new state and metrics {loss, accuracy, grad_norm (per dense layer)}.
    """
    x, y = batch
    key = jax.random.fold_in(state.dropout_key, state.step)

    def loss_fn(params):
        out, batch_stats, _ = _apply(state, params, x, train=True, key=key)
        return state.loss(out, y, state.num_classes), (out, batch_stats)

    (loss, (out, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
    finite = jnp.isfinite(loss)
    diverged = jnp.where((state.diverged_step < 0) & ~finite, state.step - 1, state.diverged_step)
    state = state.replace(diverged_step=diverged)
    names = [n for n in grads if n.startswith(("hidden_", "readout"))]
    return state, {
        "loss": loss,
        "accuracy": state.loss.accuracy(out, y, state.num_classes),
        "grad_norm": metrics.layer_norms(grads, sorted(names, key=_layer_order)),
    }


def _layer_order(name: str) -> tuple[int, int]:
    return (1, 0) if name == "readout" else (0, int(name.split("_")[1]))


def per_example_scores(state: TrainState, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Loss and correctness (NaN for regression) of every example, in chunks of EVAL_CHUNK."""
    n = x.shape[0]
    chunk = max(1, min(n, EVAL_CHUNK))
    num_chunks = -(-n // chunk)
    pad = num_chunks * chunk - n

    def score(xb, yb):
        out, _, _ = _apply(state, state.params, xb, train=False)
        per_loss = state.loss.per_example(out, yb, state.num_classes)
        if not state.num_classes:
            return per_loss, jnp.full(per_loss.shape, jnp.nan)
        return per_loss, state.loss.correct(out, yb).astype(jnp.float32)

    if num_chunks == 1:
        return score(x, y)
    xs = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape((num_chunks, chunk) + x.shape[1:])
    ys = jnp.pad(y, [(0, pad)] + [(0, 0)] * (y.ndim - 1)).reshape((num_chunks, chunk) + y.shape[1:])
    per_loss, correct = jax.lax.map(lambda xy: score(*xy), (xs, ys))
    return per_loss.reshape(-1)[:n], correct.reshape(-1)[:n]


def evaluate(state: TrainState, x: jax.Array, y: jax.Array) -> dict:
    """Mean loss and accuracy over a whole split (inference mode); NaN for an empty split."""
    if x.shape[0] == 0:
        nan = jnp.full((), jnp.nan)
        return {"loss": nan, "accuracy": nan}
    per_loss, correct = per_example_scores(state, x, y)
    return {"loss": jnp.mean(per_loss), "accuracy": jnp.mean(correct)}


def evaluate_splits(state: TrainState, splits: dict) -> dict:
    """`evaluate` on several splits in one pass over their concatenation (one compiled graph)."""
    sizes = [x.shape[0] for x, _ in splits.values()]
    x_all = jnp.concatenate([x for x, _ in splits.values()])
    y_all = jnp.concatenate([y for _, y in splits.values()])
    per_loss, correct = per_example_scores(state, x_all, y_all)
    row, start = {}, 0
    for name, size in zip(splits, sizes):
        for metric, values in (("loss", per_loss), ("accuracy", correct)):
            part = values[start:start + size]
            row[f"{name}_{metric}"] = jnp.mean(part) if size else jnp.full((), jnp.nan)
        start += size
    return row


def probe(state: TrainState, x: jax.Array, y: jax.Array, depth: int) -> dict:
    """Per-layer gradient norms and activation statistics on a fixed batch (inference mode)."""

    def loss_fn(params):
        out, _, inter = _apply(state, params, x, train=False, capture=True)
        return state.loss(out, y, state.num_classes), inter

    grads, inter = jax.grad(loss_fn, has_aux=True)(state.params)
    mean, std = metrics.activation_stats(inter, depth)
    return {
        "grad_norm": metrics.layer_norms(grads, layer_names(depth)),
        "activation_mean": mean,
        "activation_std": std,
    }


def corrupt_labels(key: jax.Array, y: jax.Array, fraction, num_classes: int) -> jax.Array:
    """Replaces each label, with probability `fraction`, by a uniformly random class (Zhang et al. 2017)."""
    if num_classes == 0:
        return y
    flip_key, label_key = jax.random.split(key)
    flip = jax.random.uniform(flip_key, y.shape) < fraction
    return jnp.where(flip, jax.random.randint(label_key, y.shape, 0, num_classes), y)


@dataclasses.dataclass(frozen=True)
class Features:
    """What a training program compiles in beyond the plain update: dropout layers, the label-noise
    draw, the weight-decay term. Members whose value of a feature's hyperparameter is 0 train the
    same with it or without; leaving it out saves compile and run time."""

    with_dropout: bool = False
    with_label_noise: bool = False
    with_weight_decay: bool = False

    @classmethod
    def of(cls, cfg: Config) -> "Features":
        """One run of `cfg`: dropout when its rate is above 0; label noise and weight decay in."""
        return cls(with_dropout=cfg.dropout_rate > 0, with_label_noise=True, with_weight_decay=True)

    @classmethod
    def needed(cls, hparams: Hyperparams) -> "Features":
        """The features that members with these (stacked) hyperparameters need: each where some
        member's value is above 0."""
        def any_positive(name):
            return bool(np.any(np.asarray(getattr(hparams, name)) > 0))

        return cls(any_positive("dropout_rate"), any_positive("label_noise"), any_positive("weight_decay"))


def init_state(
    cfg: Union[Config, Pack], key: jax.Array, data: Dataset, hparams: Optional[Hyperparams] = None,
    variant=0, features: Optional[Features] = None,
) -> TrainState:
    """The state a run starts from: model, optimizer and initial parameters for `key`.

    `cfg` may be a Pack, with `variant` (traced or not) choosing the member's structure.
    `features` says whether dropout layers and the weight-decay term are compiled in (default
    `Features.of` the config).
    Kernels are scaled by `hparams.init_scale`.
    """
    pack = Pack.of(cfg)
    base = pack.base
    hparams = Hyperparams.from_config(base) if hparams is None else hparams
    features = Features.of(base) if features is None else features
    loss = losses.get(base.loss)
    target_dim = 1 if data.y_train.ndim == 1 else data.y_train.shape[-1]
    model = pack.make_model(loss.num_outputs(data.num_classes, target_dim))
    tx = optim.make_optimizer(
        base.optimizer, hparams.learning_rate, hparams.weight_decay, momentum=base.momentum,
        schedule=base.schedule,
        total_steps=base.num_epochs * steps_per_epoch(base, data.x_train.shape[0]),
        warmup_steps=base.warmup_steps, grad_clip_norm=base.grad_clip_norm, decay=features.with_weight_decay,
    )
    member = pack.variant(variant) if len(pack.variants) > 1 else None
    init_key, dropout_key = jax.random.split(key)
    # Every initializer the pack uses draws from the same key; the member keeps its own.
    candidates = [model.clone(initializer=name).init(init_key, data.x_train[:1], variant=member)
                  for name in pack.inits]
    variables = jax.tree.map(lambda *xs: choose(xs, None if member is None else member.init), *candidates)
    params = initializers.scale_kernels(variables["params"], hparams.init_scale)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        apply_fn=model.apply,
        params=params,
        tx=tx,
        opt_state=tx.init(params),
        batch_stats=variables.get("batch_stats", {}),
        dropout_key=dropout_key,
        dropout_rate=hparams.dropout_rate,
        diverged_step=jnp.asarray(-1, jnp.int32),
        variant=member,
        loss=loss,
        num_classes=data.num_classes,
        use_dropout=features.with_dropout,
    )


def steps_per_epoch(cfg: Config, num_train: int) -> int:
    return num_train // cfg.batch_size


def permutation(key: jax.Array, n: int) -> jax.Array:
    """A uniformly random permutation of range(n): the indices sorted by two independent 32-bit keys.

    One sort, where `jax.random.permutation` sorts twice for n = 60000; a tie between 64-bit
    keys (probability below n^2 / 2^65) is broken by index.
    """
    high, low = jax.random.bits(key, (2, n), jnp.uint32)
    return jax.lax.sort((high, low, jnp.arange(n, dtype=jnp.int32)), num_keys=2)[2]


def train_epoch(state: TrainState, x: jax.Array, y: jax.Array, key: jax.Array, batch_size: int):
    """One epoch: a fresh permutation of (x, y), then `train_step` on each full batch.

    The last partial batch is dropped. Returns the state and the mean minibatch loss.
    """
    n = x.shape[0]
    num_steps = n // batch_size
    batches = permutation(key, n)[: num_steps * batch_size].reshape(num_steps, batch_size)

    def step(state, idx):
        state, step_metrics = train_step(state, (x[idx], y[idx]))
        return state, step_metrics["loss"]

    state, batch_losses = jax.lax.scan(step, state, batches)
    return state, jnp.mean(batch_losses)


def make_train(cfg: Union[Config, Pack], features: Optional[Features] = None):
    """Returns `train(key, data, hparams=None, variant=0) -> TrainResult`, a pure function of its inputs.

    `hparams` (a Hyperparams of scalars, defaulting to the config's values) carries the
    numeric settings so `jax.vmap` can sweep them; `features` (default `Features.of` the
    config) says what the program compiles in: dropout for an ensemble whose rates vary and may
    be zero for some members; without label noise the corruption draw is left out (about a tenth
    of a small cell's compile time), without weight decay the decay term (3% of an epoch), each
    only for runs whose `hparams` value of it is 0. With a `Pack` for `cfg`,
    `variant` (an index into its variants, vmappable) picks each member's structure; the
    history's per-layer entries then cover the pack's whole stack (`Pack.own` trims them).
    """
    segments = make_segments(cfg, features)
    num_evals = Pack.of(cfg).base.num_epochs // Pack.of(cfg).base.eval_every_epochs

    def train(key: jax.Array, data: Dataset, hparams: Optional[Hyperparams] = None, variant=0) -> TrainResult:
        state = segments.start(key, data, hparams, variant)
        state, history = segments.advance(state, key, data, hparams, 0, num_evals + 1)
        return segments.finish(state, history)

    return train


class Segments(NamedTuple):
    """A run split at its evaluations (`make_segments`)."""

    start: Callable
    advance: Callable
    finish: Callable


def make_segments(cfg: Union[Config, Pack], features: Optional[Features] = None) -> Segments:
    """`make_train`'s run in pieces, so a long run can be checkpointed between them.

        state = start(key, data, hparams=None, variant=0)            # the model before training
        state, history = advance(state, key, data, hparams, first, count)   # evaluations first..first+count-1
        result = finish(state, history)                               # history: all evaluations, in order

    Evaluation 0 measures the initial model; evaluation i > 0 follows `eval_every_epochs` more
    epochs. Every random draw is a function of `key` and the evaluation index, so advancing
    0..k-1 and then k..n gives the numbers of advancing 0..n at once, bit for bit on a CPU, for
    segments of at least two evaluations (XLA inlines a loop of one iteration and fuses its
    reductions differently, a last-digit change; `advance` refuses count < 2).
    """
    pack = Pack.of(cfg)
    cfg = pack.base
    features = Features.of(cfg) if features is None else features

    def start(key: jax.Array, data: Dataset, hparams: Optional[Hyperparams] = None, variant=0) -> TrainState:
        hparams = Hyperparams.from_config(cfg) if hparams is None else hparams
        init_key, _, _ = jax.random.split(key, 3)
        return init_state(pack, init_key, data, hparams, variant, features)

    def advance(state: TrainState, key: jax.Array, data: Dataset, hparams: Optional[Hyperparams], first,
                count: int):
        if count < 2:
            raise ValueError(f"a segment advances at least 2 evaluations, got count={count}")
        hparams = Hyperparams.from_config(cfg) if hparams is None else hparams
        _, data_key, noise_key = jax.random.split(key, 3)
        y_train = data.y_train
        if features.with_label_noise:
            y_train = corrupt_labels(noise_key, y_train, hparams.label_noise, data.num_classes)
        x_probe, y_probe = data.x_train[:PROBE_EXAMPLES], y_train[:PROBE_EXAMPLES]

        splits = {"train": (data.x_train, y_train), "val": (data.x_val, data.y_val),
                  "test": (data.x_test, data.y_test)}

        def measure(state, batch_loss):
            row = {"step": state.step, "batch_loss": batch_loss, **evaluate_splits(state, splits)}
            row.update(probe(state, x_probe, y_probe, pack.depth))
            return row

        def epoch(state, epoch_index):
            key = jax.random.fold_in(data_key, epoch_index)
            return train_epoch(state, data.x_train, y_train, key, cfg.batch_size)

        def train_chunk(state, chunk_index):
            epochs = chunk_index * cfg.eval_every_epochs + jnp.arange(cfg.eval_every_epochs)
            state, epoch_losses = jax.lax.scan(epoch, state, epochs)
            return state, jnp.mean(epoch_losses)

        def chunk(state, index):
            # Index 0 only measures the initial model; the predicate is unbatched under vmap,
            # so this stays a real branch and the evaluation graph is compiled once.
            state, batch_loss = jax.lax.cond(
                index > 0, train_chunk, lambda s, _: (s, jnp.full((), jnp.nan)), state, index - 1
            )
            return state, measure(state, batch_loss)

        return jax.lax.scan(chunk, state, first + jnp.arange(count))

    def finish(state: TrainState, history: dict) -> TrainResult:
        diverged = late_divergence(state.diverged_step, history)
        return TrainResult(state.params, state.batch_stats, history, diverged)

    return Segments(start, advance, finish)


def late_divergence(diverged_step: jax.Array, history: dict) -> jax.Array:
    """The divergence step, counting a non-finite evaluated training loss that no minibatch saw.

    `train_step` sees a blow-up in the loss of the step after it, so an update that breaks a
    model in the last step before an evaluation shows first in that evaluation; its step is
    then the one recorded (the step whose loss `train_step` would have found non-finite).
    """
    bad = ~jnp.isfinite(history["train_loss"])
    late = (diverged_step < 0) & jnp.any(bad)
    return jnp.where(late, history["step"][jnp.argmax(bad)], diverged_step).astype(diverged_step.dtype)
