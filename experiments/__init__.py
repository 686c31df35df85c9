"""Experiment scripts, one per claim: `python -m experiments.<name> [--quick] [--help]`.

Importing the package first gives JAX one CPU device per usable core (so ensembles are
sharded over every core) and a persistent compilation cache.
"""

from dlfound import runtime

runtime.configure()
