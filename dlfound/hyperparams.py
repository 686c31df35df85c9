"""Numeric hyperparameters that may differ between the models of one compiled program.

`Hyperparams` is the one declaration: `VMAPPABLE` (the config fields a sweep may vmap) is
read off its fields, so adding a field here makes it sweepable everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dlfound.errors import unknown_name


@struct.dataclass
class Hyperparams:
    """Per-model numeric settings, traced (so `jax.vmap` stacks many in one program)."""

    learning_rate: jax.Array
    weight_decay: jax.Array
    init_scale: jax.Array
    dropout_rate: jax.Array
    label_noise: jax.Array

    @classmethod
    def from_config(cls, cfg, **overrides) -> "Hyperparams":
        """The config's values with `overrides` applied; an override outside VMAPPABLE raises ConfigError."""
        return jax.tree.map(jnp.asarray, cls.stacked([cfg], [overrides])[0])

    @classmethod
    def stacked(cls, cfgs: Sequence, overrides: Sequence[dict]) -> "Hyperparams":
        """One row per model (its config's values with its overrides applied) as float32 numpy
        arrays with a leading model axis; an override outside VMAPPABLE raises ConfigError."""
        for row in overrides:
            for name in row:
                if name not in VMAPPABLE:
                    raise unknown_name("hyperparameter", name, VMAPPABLE)

        def column(name):
            values = [row.get(name, getattr(cfg, name)) for cfg, row in zip(cfgs, overrides)]
            return np.asarray(values, np.float32)

        return cls(**{name: column(name) for name in VMAPPABLE})

    def __getitem__(self, index) -> "Hyperparams":
        """The rows at `index` of a stacked Hyperparams."""
        return jax.tree.map(lambda x: x[index], self)


# The config fields a sweep may vmap (one program for all values), in declaration order.
VMAPPABLE = tuple(f.name for f in dataclasses.fields(Hyperparams))
