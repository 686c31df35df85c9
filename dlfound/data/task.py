"""The raw output of a synthetic task generator, before validation carving and normalization."""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from dlfound.data.options import positive_int


class Task(NamedTuple):
    """Generated train/test arrays; `num_classes` 0 means regression targets of shape (N, 1)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    carve_validation: bool = True


def sizes(num_examples, num_test: Optional[int]) -> tuple[int, int]:
    """Train and test sizes; the test size defaults to the train size."""
    n = positive_int("num_examples", num_examples)
    return n, n if num_test is None else positive_int("num_test", num_test)
