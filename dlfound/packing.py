"""Structural choices as per-member data: several configs trained by one compiled program.

A `Pack` is a tuple of configs (its variants) that agree on everything that fixes the
program's shapes and differ only in packable fields: the activation with its initializer,
residual connections, normalization on/off, and depth. One program trains them all; each
member carries the index of its variant, and the MLP picks its choices from it:

    activation, norm, residual   every option is computed and `lax.select_n` keeps the
                                 member's one, so its values are exactly those of a run alone
    depth                        a stack as deep as the deepest variant; a member's layers
                                 from its own depth on pass h through unchanged (h <- h), so
                                 they change nothing and receive zero gradient
    init                         each scheme initializes the stack from the same key, and the
                                 member keeps its own (Flax derives layer keys from layer names)

Packing trades compilation for arithmetic: every option costs every member its FLOPs, and
a depth-D stack costs every member D layers. `DEFAULT_AXES` says what each backend packs,
chosen by measurement (see the README's design notes); `DLFOUND_PACK` overrides it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np

from dlfound import config as config_lib
from dlfound.config import Config
from dlfound.errors import ConfigError
from dlfound.hyperparams import VMAPPABLE
from dlfound.models import MLP, Variant

PACKABLE = ("activation", "init", "residual", "norm", "depth")
# Measured on a 2-core CPU and taken from an H200's figures: see the README's design notes.
DEFAULT_AXES = {"cpu": ("activation", "init", "residual", "norm"), "gpu": PACKABLE, "tpu": PACKABLE}
PER_LAYER = ("grad_norm", "activation_mean", "activation_std")


def parse_axes(text: str) -> tuple[str, ...]:
    """Axes from 'none', 'all' or a comma-separated list such as 'activation,depth'."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if words in (["none"], []):
        return ()
    if words == ["all"]:
        return PACKABLE
    for word in words:
        if word not in PACKABLE:
            raise ConfigError(f"invalid pack axis {word!r}; valid choices: none, all, {', '.join(PACKABLE)}")
    return tuple(a for a in PACKABLE if a in words)


def default_axes(backend: str | None = None) -> tuple[str, ...]:
    """The axes this backend packs, or `$DLFOUND_PACK` when it is set."""
    if os.environ.get("DLFOUND_PACK"):
        return parse_axes(os.environ["DLFOUND_PACK"])
    return DEFAULT_AXES.get(backend or jax.default_backend(), PACKABLE)


def _packs_depth(cfg: Config, axes) -> bool:
    return "depth" in axes and cfg.depth >= 1 and isinstance(cfg.width, int)


def _key(cfg: Config, axes) -> tuple:
    """What must agree for two configs to share a program (numeric hyperparameters never matter)."""
    packed = set(axes) | ({"init"} if "activation" in axes else set())
    if not _packs_depth(cfg, axes):
        packed.discard("depth")
    return tuple((name, getattr(cfg, name)) for name in config_lib.field_names()
                 if name not in packed and name not in VMAPPABLE)


def plan(cfgs: Sequence[Config], axes: Sequence[str]) -> list[list[int]]:
    """Groups the indices of `cfgs` into programs, in order of first appearance.

    Configs share a program when they agree on everything but `axes` (packing "activation"
    packs its paired initializer too; depth packs only among depths >= 1 of one uniform width).
    Norm is packed on/off: a group holding both batch and layer norm is split by kind, the
    cells without norm joining the first kind.
    """
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(_key(cfg, axes), []).append(i)
    out = []
    for members in groups.values():
        kinds = [k for k in _unique(cfgs[i].norm for i in members) if k is not None]
        by_kind: dict = {}
        for i in members:
            by_kind.setdefault(cfgs[i].norm or (kinds[0] if kinds else None), []).append(i)
        out.extend(by_kind.values())
    return sorted(out, key=lambda g: g[0])


def _unique(values) -> tuple:
    return tuple(dict.fromkeys(values))


@dataclasses.dataclass(frozen=True)
class Pack:
    """Configs (variants) trained by one program: equal in everything but packable fields."""

    variants: tuple[Config, ...]

    def __post_init__(self):
        if not self.variants:
            raise ValueError("a Pack needs at least one config")
        keys = {tuple(kv for kv in _key(cfg, PACKABLE) if kv[0] != "depth") for cfg in self.variants}
        if len(keys) > 1:
            raise ValueError("configs of one Pack may differ only in " + ", ".join(PACKABLE)
                             + " and numeric hyperparameters")
        if len(self.depths) > 1 and not all(_packs_depth(cfg, PACKABLE) for cfg in self.variants):
            raise ValueError("depth packs only depths >= 1 with one integer width")
        if len(set(self.norms) - {None}) > 1:
            raise ValueError("a Pack packs norm on/off, not two kinds of norm")

    @classmethod
    def of(cls, cfg: Union[Config, "Pack"]) -> "Pack":
        """`cfg` itself if it is a Pack, else the Pack of that one config."""
        return cfg if isinstance(cfg, Pack) else cls((cfg,))

    @property
    def base(self) -> Config:
        """The first variant: the settings every variant shares."""
        return self.variants[0]

    @property
    def depths(self) -> tuple[int, ...]:
        return _unique(c.depth for c in self.variants)

    @property
    def activations(self) -> tuple[str, ...]:
        return _unique(c.activation for c in self.variants)

    @property
    def inits(self) -> tuple[str, ...]:
        return _unique(c.resolved_init for c in self.variants)

    @property
    def norms(self) -> tuple:
        return _unique(c.norm for c in self.variants)

    @property
    def residuals(self) -> tuple[bool, ...]:
        return _unique(c.residual for c in self.variants)

    @property
    def depth(self) -> int:
        """Hidden layers of the program's stack (the deepest variant's)."""
        return max(self.depths)

    def index(self, cfg: Config) -> int:
        """The variant index of `cfg`."""
        return self.variants.index(cfg)

    def make_model(self, num_outputs: int) -> MLP:
        """The MLP of the whole pack; with one variant, exactly `models.make_model` of it."""

        def field(options):
            return options if len(options) > 1 else options[0]

        base = self.base
        return MLP(depth=field(self.depths), width=base.widths if len(self.depths) == 1 else base.width,
                   num_outputs=num_outputs, activation=field(self.activations), initializer=self.inits[0],
                   norm=field(self.norms), dropout_rate=base.dropout_rate,
                   residual=field(self.residuals))

    def variant(self, index) -> Variant:
        """The Variant (choice indices) of variant `index`; `index` may be traced."""
        table = [[choices.index(getattr(cfg, name)) for cfg in self.variants]
                 for name, choices in (("depth", self.depths), ("activation", self.activations),
                                       ("resolved_init", self.inits), ("norm", self.norms),
                                       ("residual", self.residuals))]
        depth, activation, init, norm, residual = (jnp.asarray(np.array(t, np.int32))[index] for t in table)
        return Variant(depth=depth, activation=activation, init=init, norm=norm, residual=residual)

    def own(self, result, index: int):
        """One member's TrainResult restricted to its variant's own layers (as if trained alone)."""
        cfg, stack = self.variants[index], self.depth
        hidden = list(range(cfg.depth))
        keep = {f"hidden_{i}" for i in hidden} | {"readout"}
        keep |= {f"norm_{i}" for i in hidden} if cfg.norm else set()
        history = dict(result.history)
        if cfg.depth != stack:
            columns = {"grad_norm": hidden + [stack], "activation_mean": hidden, "activation_std": hidden}
            for name, cols in columns.items():
                if name in history:
                    history[name] = np.asarray(history[name])[..., cols]
        return result.replace(
            params={k: v for k, v in result.params.items() if k in keep},
            batch_stats={k: v for k, v in result.batch_stats.items() if k in keep},
            history=history)
