"""Datasets: `load(name, ...)` returns a Dataset of numpy arrays; see registry.names() for the names."""

from dlfound.data.dataset import Dataset
from dlfound.data.errors import DataIntegrityError, DatasetUnavailable
from dlfound.data.registry import check_contents, check_name, load, names
from dlfound.data.splits import subset_train

__all__ = [
    "Dataset", "DataIntegrityError", "DatasetUnavailable", "check_contents", "check_name", "load", "names",
    "subset_train",
]
