"""Packed programs: structural choices as per-member data give the results of each cell trained alone.

The reference for every packed member is its own cell trained by a per-cell program
(`pack=()`). With five seeds, as in the main sweep, both fill CPU_LANES members per device, so
XLA compiles the same arithmetic for
every member's training: its final parameters and batch statistics are bitwise equal. The
recorded metrics are means and norms, reductions whose summation order XLA picks per program
from the operands' layout, so they agree to float32 rounding (within 1e-5 relative; in these
tests almost all are bitwise equal).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dlfound import ensemble, packing, sweep, train
from dlfound.config import Config
from dlfound.data import load
from dlfound.data.dataset import Dataset
from dlfound.errors import ConfigError
from dlfound.models import MLP
from dlfound.packing import PER_LAYER, Pack
from experiments import depth_activation

METRICS = ("step", "batch_loss", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
           "test_accuracy") + PER_LAYER


def _toy(n=256, d=8, classes=3, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 64, d)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(d, classes)), axis=1).astype(np.int32)
    return Dataset(x[:n], y[:n], x[n:n + 32], y[n:n + 32], x[n + 32:], y[n + 32:], name="toy",
                   num_classes=classes)


def _run(sweeps, data, seeds, pack) -> tuple[sweep.Table, dict]:
    """The sweeps' rows and every cell's final variables (parameters and batch statistics)."""
    final = {}

    def keep(cell, result):
        final[cell.id] = {"params": result.params, "batch_stats": result.batch_stats}

    return sweep.run_sweeps(sweeps, data, seeds, quiet=True, pack=pack, on_result=keep), final


def _assert_same(packed: tuple, alone: tuple, skip_members=(), bitwise: bool = True) -> tuple[float, float]:
    """Every cell's members have the same member fields and are the same models (bitwise, or
    within 1e-5 relative where a reduction's order may differ), and their metrics agree within
    1e-5 relative; returns the fraction of metric values that are bitwise equal and the worst
    relative deviation."""
    (table, final), (ref_table, ref_final) = packed, alone
    assert table.cells() == ref_table.cells() and set(final) == set(ref_final) == set(ref_table.cells())
    models = len(ref_table.member_values("seed", cell=ref_table.cells()[0]))
    keep = [m for m in range(models) if m not in skip_members]
    equal, count, worst = 0, 0, 0.0
    for cell in ref_table.cells():
        for field in ("seed", "status", "diverged_step", "init"):
            np.testing.assert_array_equal(table.member_values(field, cell=cell),
                                          ref_table.member_values(field, cell=cell))
        def same(a, b):
            a, b = np.asarray(a)[keep], np.asarray(b)[keep]
            if bitwise:
                np.testing.assert_array_equal(a, b, err_msg=cell)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=cell)

        jax.tree.map(same, final[cell], ref_final[cell])
        rows = [r for r in table.rows if r["cell"] == cell and r["model"] in keep]
        ref_rows = [r for r in ref_table.rows if r["cell"] == cell and r["model"] in keep]
        assert [(r["model"], r["eval"]) for r in rows] == [(r["model"], r["eval"]) for r in ref_rows]
        for metric in METRICS:
            for m in keep:
                a = np.array([r[metric] for r in rows if r["model"] == m], float)
                b = np.array([r[metric] for r in ref_rows if r["model"] == m], float)
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=f"{cell} model {m} {metric}")
                finite = np.isfinite(b)
                equal += int(np.sum(a[finite] == b[finite]) + np.sum(~finite))
                count += b.size
                scale = np.maximum(np.abs(b[finite]), 1e-3)
                worst = max(worst, float(np.max(np.abs(a[finite] - b[finite]) / scale, initial=0.0)))
    return equal / count, worst


def test_main_sweep_packed_equals_every_cell_alone_on_its_quick_budget():
    """Every activation and depth of the main sweep, each packed two ways, against its own cell."""
    exp = depth_activation
    base = exp.BASE.replace(**exp.EXPERIMENT.quick.config)
    data = load(base.dataset, validation_fraction=base.validation_fraction, seed=base.seed)
    # the depth x activation grid at the C10 design's rate (packing does not depend on the rate grid)
    sweeps = exp.sweeps(base, exp.DEPTHS, exp.ACTIVATIONS, rates=(base.learning_rate,))[1:]
    seeds = [0, 1, 2, 3, 4]  # the main sweep's: a cell alone fills its lanes, as a packed program does
    alone = _run(sweeps, data, seeds, ())
    for axes in (packing.PACKABLE, ("activation", "init")):
        programs = sweep.plan_programs(sweeps, data, seeds, axes)
        assert len(programs) == (1 if "depth" in axes else len(exp.DEPTHS))
        equal, worst = _assert_same(_run(sweeps, data, seeds, axes), alone)
        print(f"pack {axes}: models bitwise equal; {equal:.1%} of metric values bitwise, worst {worst:.2g}")


def test_a_diverging_member_does_not_disturb_its_program():
    """One member blows up (learning rate 1e4); every other member equals its own cell."""
    base = Config(dataset="xor", depth=1, width=16, batch_size=32, num_epochs=3, optimizer="sgd",
                  learning_rate=0.1, activation="relu")
    grid = {"depth": (1, 3), "activation": ("relu", "tanh")}
    sw = [sweep.Sweep(base, grid, {"learning_rate": (0.1, 1e4)})]
    data = _toy()
    seeds = [0, 1, 2]  # 6 models a cell: a cell alone fills its lanes too
    alone = _run(sw, data, seeds, ())
    packed = _run(sw, data, seeds, packing.PACKABLE)
    table = alone[0]
    assert "diverged" in table.member_values("status", cell="depth=3,activation=relu")
    rates = table.member_values("learning_rate", cell="depth=1,activation=relu")
    diverged = [m for m, lr in enumerate(rates) if lr > 1]
    _assert_same(packed, alone, skip_members=diverged)  # status and divergence step of all members too


@pytest.mark.parametrize("grid", [
    {"depth": (2, 4), "residual": (False, True)},
    {"depth": (1, 2), "norm": (None, "batch")},
    {"norm": (None, "layer"), "activation": ("gelu", "sigmoid")},
    {"init": ("he", "glorot", "orthogonal", "small_normal"), "depth": (1, 3)},
])
def test_other_structural_axes_pack_with_the_same_results(grid):
    """Residual on/off, norm on/off and initializers, packed with depth: the same models, to
    float32 rounding (a member without norm sums its bias gradient in another order). SGD, as
    Adam would scale the rounding noise of a bias that batch norm makes irrelevant (its exact
    gradient is 0) into full-size steps."""
    base = Config(dataset="xor", depth=2, width=16, batch_size=32, num_epochs=2, optimizer="momentum",
                  learning_rate=0.05, dropout_rate=0.1)
    sw = [sweep.Sweep(base, grid)]
    data, seeds = _toy(), [0, 1, 2, 3, 4, 5]  # a cell alone fills its lanes too
    programs = sweep.plan_programs(sw, data, seeds, packing.PACKABLE)
    assert len(programs) == 1
    _assert_same(_run(sw, data, seeds, packing.PACKABLE), _run(sw, data, seeds, ()), bitwise=False)


def test_packed_initial_parameters_are_bitwise_those_of_each_variant_alone():
    data = _toy()
    variants = tuple(Config(dataset="xor", depth=d, width=16, activation=a)
                     for d in (1, 3) for a in ("relu", "tanh", "identity"))
    pack = Pack(variants)
    for i, cfg in enumerate(variants):
        key = jax.random.key(7)
        packed = jax.jit(lambda k, i=i: train.init_state(pack, k, data, variant=i))(key)
        alone = jax.jit(lambda k, cfg=cfg: train.init_state(cfg, k, data))(key)
        own = pack.own(train.TrainResult(packed.params, packed.batch_stats, {}, packed.diverged_step), i)
        jax.tree.map(np.testing.assert_array_equal, own.params, alone.params)


def test_plan_groups_by_what_fixes_the_shapes():
    base = Config(dataset="xor", depth=2, width=16)
    cfgs = [base.replace(depth=0), base.replace(depth=1), base.replace(depth=4, activation="tanh"),
            base.replace(width=32), base.replace(depth=3, width=(8, 8, 8)), base.replace(norm="batch"),
            base.replace(norm="layer"), base.replace(optimizer="sgd")]
    assert packing.plan(cfgs, packing.PACKABLE) == [[0], [1, 2, 5], [3], [4], [6], [7]]
    assert packing.plan(cfgs, ("activation", "init")) == [[0], [1], [2], [3], [4], [5], [6], [7]]
    assert packing.plan(cfgs, ()) == [[i] for i in range(len(cfgs))]


def test_a_pack_refuses_configs_whose_shapes_differ():
    base = Config(dataset="xor", depth=2, width=16)
    with pytest.raises(ValueError, match="differ only"):
        Pack((base, base.replace(width=32)))
    with pytest.raises(ValueError, match="depth packs"):
        Pack((base, base.replace(depth=0)))
    with pytest.raises(ValueError, match="two kinds"):
        Pack((base.replace(norm="batch"), base.replace(norm="layer")))


def test_a_packed_mlp_needs_a_variant():
    model = MLP(depth=(1, 2), width=4, num_outputs=2)
    with pytest.raises(ValueError, match="variant"):
        model.init(jax.random.key(0), np.zeros((1, 3), np.float32))


@pytest.mark.parametrize("text, axes", [("none", ()), ("", ()), ("all", packing.PACKABLE),
                                        ("depth, activation", ("activation", "depth"))])
def test_pack_axes_parse(text, axes):
    assert packing.parse_axes(text) == axes


def test_bad_pack_axis_names_the_choices(monkeypatch):
    monkeypatch.setenv("DLFOUND_PACK", "activation,width")
    with pytest.raises(ConfigError, match="'width'.*none, all, activation"):
        packing.default_axes()


def test_default_policy_is_per_backend(monkeypatch):
    monkeypatch.delenv("DLFOUND_PACK", raising=False)
    assert "depth" in packing.default_axes("gpu") and "depth" not in packing.default_axes("cpu")
    assert "activation" in packing.default_axes("cpu")


def test_lanes_come_from_the_backend_and_the_devices_memory(monkeypatch):
    cfg, data, devices = Config(dataset="xor", depth=2, width=64), _toy(), jax.device_count()
    per_model = ensemble.estimate_bytes_per_model(cfg, data)
    full = ensemble.CPU_LANES * devices
    assert ensemble.lanes(cfg, data, full) == ensemble.lanes(cfg, data, 10_000) == ensemble.CPU_LANES  # on CPU
    assert ensemble.lanes(cfg, data, 1) == 1  # one model alone is not padded to a full call
    assert ensemble.lanes(cfg, data, 10_000, budget=devices * per_model) == 1  # unless memory allows fewer
    monkeypatch.setattr(ensemble, "device_memory_bytes", lambda: 40 * per_model)  # an accelerator's report
    assert ensemble.memory_budget_bytes() == int(ensemble.DEVICE_MEMORY_FRACTION * 40 * per_model * devices)
    monkeypatch.setattr(ensemble.jax, "default_backend", lambda: "gpu")
    assert ensemble.lanes(cfg, data, 6 * devices) == 6  # a device's whole share in one call
    assert ensemble.lanes(cfg, data, 1000 * devices) == 20  # as many as half its memory holds
    assert ensemble.lanes(cfg, data, 30 * devices) == 15  # two calls of 15 rather than 20 + 10
    assert ensemble.chunk_size(cfg, data, 1000 * devices) == 20 * devices
    monkeypatch.setattr(ensemble, "device_memory_bytes", lambda: None)
    assert ensemble.memory_budget_bytes() == int(ensemble.HOST_MEMORY_FRACTION * ensemble.host_memory_bytes())


def test_the_late_divergence_rule_is_in_the_pure_program():
    """A single jitted run (no ensemble, no host code) flags a blow-up that only its last evaluation saw."""
    data = load("moons", validation_fraction=0.1)
    cfg = Config(dataset="moons", depth=1, width=8, activation="identity", batch_size=data.num_train,
                 num_epochs=1, optimizer="sgd", learning_rate=1e20)  # one step in all
    result = jax.jit(train.make_train(cfg))(jax.random.key(0), data)
    assert int(result.diverged_step) == 1
