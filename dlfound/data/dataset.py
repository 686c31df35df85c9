"""The container every loader returns: device-ready arrays plus static facts about the task."""

from __future__ import annotations

import numpy as np
from flax import struct


@struct.dataclass
class Dataset:
    """Train/validation/test splits as arrays; `num_classes` is 0 for regression targets.

    Inputs are float32 of shape (N, *input_shape); classification labels are int32 of
    shape (N,), regression targets float32 of shape (N, T). It is a pytree, so a whole
    dataset is passed to a jitted training run as an argument (never captured).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = struct.field(pytree_node=False, default="data")
    num_classes: int = struct.field(pytree_node=False, default=0)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def is_classification(self) -> bool:
        return self.num_classes > 0

    def describe(self) -> str:
        """One line: name, split sizes, input shape and classes."""
        sizes = f"{len(self.x_train)}/{len(self.x_val)}/{len(self.x_test)}"
        task = f"{self.num_classes} classes" if self.is_classification else "regression"
        return f"{self.name}: train/val/test {sizes}, input {self.input_shape}, {task}"
