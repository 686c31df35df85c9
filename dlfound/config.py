"""The run config: a frozen dataclass, validated up front with errors that name the field and the choices."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Optional, Union

from dlfound.errors import ConfigError

Width = Union[int, tuple[int, ...]]


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines one training run except the seed's key.

    `depth` counts hidden layers (0 is multinomial logistic regression); `width` is one
    int for every hidden layer or a tuple with one entry per layer; `init="auto"` picks
    the activation's intended scheme (He for the ReLU family, Glorot otherwise).
    Each epoch draws a fresh permutation and drops the last partial batch.
    """

    dataset: str = "mnist1d"
    depth: int = 2
    width: Width = 128
    activation: str = "relu"
    init: str = "auto"
    norm: Optional[str] = None
    dropout_rate: float = 0.0
    residual: bool = False
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    grad_clip_norm: float = 0.0
    batch_size: int = 64
    num_epochs: int = 5
    eval_every_epochs: int = 1
    init_scale: float = 1.0
    label_noise: float = 0.0
    train_fraction: float = 1.0
    validation_fraction: float = 0.1
    seed: int = 0  # draws the data's validation split and train subsets; model keys come from the seeds

    def replace(self, **changes) -> "Config":
        """Returns a copy with `changes` applied (unknown fields raise ConfigError)."""
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            raise ConfigError(
                f"unknown config field {unknown[0]!r}; valid fields: {', '.join(field_names())}"
            )
        return dataclasses.replace(self, **changes)

    @property
    def widths(self) -> tuple[int, ...]:
        """The width of each hidden layer."""
        if isinstance(self.width, int):
            return (self.width,) * self.depth
        return tuple(self.width)

    @property
    def resolved_init(self) -> str:
        """The initializer actually used (resolves "auto" from the activation)."""
        if self.init != "auto":
            return self.init
        from dlfound.initializers import intended_init

        return intended_init(self.activation)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["width"] = list(self.width) if isinstance(self.width, tuple) else self.width
        out["resolved_init"] = self.resolved_init
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        values = {k: v for k, v in values.items() if k != "resolved_init"}
        if isinstance(values.get("width"), list):
            values["width"] = tuple(values["width"])
        return cls().replace(**values)


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Config))


def _check(condition: bool, field: str, value, allowed: str) -> None:
    if not condition:
        raise ConfigError(f"invalid {field}={value!r}; allowed: {allowed}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Upper bounds on sizes: far beyond any MLP this project trains, low enough that a typo such as
# depth=1000000000 is refused in one line instead of exhausting memory while building layers.
MAX_DEPTH, MAX_WIDTH, MAX_BATCH, MAX_EPOCHS = 1024, 2**16, 2**24, 10**5


def validate(cfg: Config) -> Config:
    """Raises ConfigError naming the first bad field, its value and what is allowed."""
    from dlfound import activations, initializers, losses, optim
    from dlfound.data import registry

    registry.check_name(cfg.dataset)
    _check(_is_int(cfg.depth) and 0 <= cfg.depth <= MAX_DEPTH, "depth", cfg.depth,
           f"an integer from 0 to {MAX_DEPTH}")
    widths = f"an integer from 1 to {MAX_WIDTH}"
    if isinstance(cfg.width, tuple):
        _check(
            len(cfg.width) == cfg.depth and all(_is_int(w) and 1 <= w <= MAX_WIDTH for w in cfg.width),
            "width", cfg.width, f"{widths}, or a tuple of {cfg.depth} such integers",
        )
    else:
        _check(_is_int(cfg.width) and 1 <= cfg.width <= MAX_WIDTH, "width", cfg.width, widths)
    activations.get(cfg.activation)
    if cfg.init != "auto":
        initializers.get(cfg.init)
    _check(cfg.norm in (None, "batch", "layer"), "norm", cfg.norm, "none, batch, layer")
    _check(isinstance(cfg.residual, bool), "residual", cfg.residual, "true or false")
    losses.get(cfg.loss)
    optim.check(cfg.optimizer, cfg.schedule)
    _check(_is_real(cfg.learning_rate) and cfg.learning_rate > 0, "learning_rate",
           cfg.learning_rate, "a finite number > 0")
    _check(_is_real(cfg.momentum) and 0 <= cfg.momentum < 1, "momentum", cfg.momentum, "0 <= momentum < 1")
    _check(_is_real(cfg.weight_decay) and cfg.weight_decay >= 0, "weight_decay", cfg.weight_decay, "a number >= 0")
    _check(_is_int(cfg.warmup_steps) and 0 <= cfg.warmup_steps < 2**31, "warmup_steps", cfg.warmup_steps,
           "an integer from 0 to 2**31 - 1")
    _check(_is_real(cfg.grad_clip_norm) and cfg.grad_clip_norm >= 0, "grad_clip_norm",
           cfg.grad_clip_norm, "a number >= 0 (0 disables clipping)")
    _check(_is_real(cfg.dropout_rate) and 0 <= cfg.dropout_rate < 1, "dropout_rate", cfg.dropout_rate, "0 <= rate < 1")
    _check(_is_int(cfg.batch_size) and 1 <= cfg.batch_size <= MAX_BATCH, "batch_size", cfg.batch_size,
           f"an integer from 1 to {MAX_BATCH}")
    _check(_is_int(cfg.num_epochs) and 1 <= cfg.num_epochs <= MAX_EPOCHS, "num_epochs", cfg.num_epochs,
           f"an integer from 1 to {MAX_EPOCHS}")
    _check(_is_int(cfg.eval_every_epochs) and cfg.eval_every_epochs >= 1
           and cfg.num_epochs % cfg.eval_every_epochs == 0, "eval_every_epochs", cfg.eval_every_epochs,
           f"a divisor of num_epochs={cfg.num_epochs}")
    _check(_is_real(cfg.init_scale) and cfg.init_scale > 0, "init_scale", cfg.init_scale, "a number > 0")
    _check(_is_real(cfg.label_noise) and 0 <= cfg.label_noise <= 1, "label_noise", cfg.label_noise, "0 <= fraction <= 1")
    _check(_is_real(cfg.train_fraction) and 0 < cfg.train_fraction <= 1, "train_fraction",
           cfg.train_fraction, "0 < fraction <= 1")
    _check(_is_real(cfg.validation_fraction) and 0 <= cfg.validation_fraction < 1,
           "validation_fraction", cfg.validation_fraction, "0 <= fraction < 1")
    _check(_is_int(cfg.seed) and cfg.seed >= 0, "seed", cfg.seed, "an integer >= 0")
    return cfg


def check_batch_size(cfg: Config, num_train: int) -> None:
    """A batch larger than the training set would give zero steps per epoch."""
    _check(cfg.batch_size <= num_train, "batch_size", cfg.batch_size,
           f"at most the {num_train} training examples of {cfg.dataset!r}")


def step_budget(cfg: Config, num_train: int, steps: int, eval_steps: int) -> Config:
    """`cfg` with num_epochs and eval_every_epochs giving about `steps` training steps, evaluated
    about every `eval_steps` (whole epochs: budgets in steps, as papers state them)."""
    per_epoch = max(1, num_train // cfg.batch_size)
    every = max(1, round(eval_steps / per_epoch))
    evals = max(1, round(steps / (every * per_epoch)))
    return cfg.replace(num_epochs=every * evals, eval_every_epochs=every)


def _field_type(name: str):
    hints = typing.get_type_hints(Config)
    return hints[name]


def parse_value(name: str, text: str):
    """Parses the string `text` for config field `name` into its declared type."""
    if name not in field_names():
        raise ConfigError(f"unknown config field {name!r}; valid fields: {', '.join(field_names())}")
    kind = _field_type(name)
    raw = text.strip()
    if kind is bool:
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"invalid {name}={text!r}; allowed: true or false")
    optional = typing.get_origin(kind) in (Union, types.UnionType) and type(None) in typing.get_args(kind)
    if optional and raw.lower() in ("none", "null", ""):
        return None
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"invalid {name}={text!r}; allowed: an integer") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"invalid {name}={text!r}; allowed: a number") from None
    if name == "width":
        try:
            parts = [int(p) for p in raw.strip("()[]").split(",") if p.strip()]
        except ValueError:
            raise ConfigError(f"invalid width={text!r}; allowed: an integer or comma-separated integers") from None
        if not parts:
            raise ConfigError(f"invalid width={text!r}; allowed: an integer or comma-separated integers")
        return parts[0] if len(parts) == 1 and "," not in raw else tuple(parts)
    return raw


def apply_overrides(cfg: Config, assignments: list[str]) -> Config:
    """Applies `key=value` strings (the `--set` flag) and validates the result."""
    changes, given = {}, {}
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"invalid --set {item!r}; expected key=value, e.g. depth=4")
        key, value = item.split("=", 1)
        key = key.strip()
        if key in given:
            raise ConfigError(f"--set {key} is given twice ({given[key]} and {value.strip()}); "
                              "give each field once")
        given[key] = value.strip()
        changes[key] = parse_value(key, value)
    return validate(cfg.replace(**changes))
