"""A tiny experiment for the fault, reproducibility and distributed tests: two moons, one cell per width.

`TINY_STALL_AFTER=k` makes it sleep after training cell k+1, before committing it (a kill point).
"""
# ruff: noqa: E402  (the dlfound imports below must follow runtime.configure())
import os
import time

from dlfound import runtime

runtime.configure()  # before any JAX computation: the device count is set here

from dlfound import cli
from dlfound.config import Config
from dlfound.data import load
from dlfound.stats import describe
from dlfound.sweep import Sweep, run_sweep

BASE = Config(dataset="moons", depth=1, width=8, batch_size=32, num_epochs=4, eval_every_epochs=2,
              optimizer="sgd", learning_rate=0.2)
WIDTHS = tuple(int(w) for w in os.environ.get("TINY_WIDTHS", "4,8,12,16").split(","))
STALL_AFTER = int(os.environ.get("TINY_STALL_AFTER", "-1"))
_trained = []


def _stall(cell, result):
    _trained.append(cell.id)
    if len(_trained) == STALL_AFTER + 1:  # trained, not yet committed
        time.sleep(3600)


def run(ctx):
    data = load(ctx.cfg.dataset, validation_fraction=ctx.cfg.validation_fraction, seed=ctx.cfg.seed)
    table = run_sweep(Sweep(ctx.cfg, {"width": WIDTHS}), data, ctx.seeds, ctx.run_dir, quiet=ctx.quiet,
                      on_result=_stall)
    metrics = {c: {"test_loss": table.history("test_loss", cell=c).tolist(),
                   "test_accuracy": describe(table.final("test_accuracy", cell=c))} for c in table.cells()}
    return {"metrics": metrics, "claims": []}


EXPERIMENT = cli.Experiment(name="tiny", description=__doc__, base=BASE, run=run, default_seeds=3,
                            quick=cli.Overrides(config={"num_epochs": 2}))
main = EXPERIMENT.main
cli.script(__name__, EXPERIMENT)
