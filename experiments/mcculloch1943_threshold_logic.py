"""McCulloch & Pitts (1943): threshold units compute AND, OR, NOT; two layers compute XOR and parity.

Paper:  W. S. McCulloch and W. Pitts, "A logical calculus of the ideas immanent in nervous
        activity", Bulletin of Mathematical Biophysics 5(4):115-133, 1943.
Claim:  F2: binary threshold neurons y = 1[w . x >= theta] with hand-set weights realise the
        logical connectives AND, OR and NOT; a second layer makes XOR (not computable by one
        unit, see F1), and n-bit parity needs only n hidden units. The paper uses absolute
        inhibition rather than negative weights and does not name XOR; the two-layer XOR and the
        parity net are the standard corollaries (CLAIMS.md C01).
Setup:  `dlfound.perceptron` gates with hand-set weights, applied to every one of the 2^n
        inputs: n-input AND 1[sum x >= n] and OR 1[sum x >= 1] for n = 1..8, NOT 1[-x >= 0],
        XOR h = (OR, AND), y = 1[h1 - h2 >= 1], and parity with n hidden units
        h_j = 1[sum x >= j], y = 1[sum_j (-1)^(j+1) h_j >= 1] for n = 2..8 (`max_bits`). The same
        parity weights are also loaded into the library's `dlfound.models.MLP` with the `step`
        activation (readout thresholded at 0), which must give identical outputs. No training,
        no randomness: `--seeds` is ignored.
Run:    python -m experiments.mcculloch1943_threshold_logic           # 7 s on 2 CPU cores (measured)
        python -m experiments.mcculloch1943_threshold_logic --quick   # parity up to 3 bits
Expect: every truth table exact (2^n of 2^n rows); the truth tables of AND, OR, NOT and XOR are
        printed (unless --quiet).
Pass:   as CLAIMS.md C01: exact outputs on all 2^n inputs for AND, OR, NOT and XOR, and for
        parity with n <= 8 using exactly n hidden units (deterministic, so "every row" is the
        criterion; one wrong row is a failure).
"""

from __future__ import annotations

import numpy as np

from dlfound import claims, cli, plots
from dlfound import perceptron as pc
from dlfound.config import Config
from dlfound.models import MLP

BASE = Config(dataset="xor", depth=1, width=2, activation="step", num_epochs=1, batch_size=4,
              validation_fraction=0.0)


def reference(name: str, x_NxD: np.ndarray) -> np.ndarray:
    """The Boolean function `name` (and, or, not, xor, parity) of each row of 0/1 inputs."""
    x = np.asarray(x_NxD).astype(int)
    if name == "and":
        return x.all(axis=1).astype(int)
    if name == "or":
        return x.any(axis=1).astype(int)
    if name == "not":
        return 1 - x[:, 0]
    if name in ("xor", "parity"):
        return x.sum(axis=1) % 2
    raise ValueError(f"unknown Boolean function {name!r}; valid choices: and, or, not, xor, parity")


def check_gate(gate, name: str, bits: int) -> dict:
    """Applies a hand-set threshold network to all 2^bits inputs and compares with the reference."""
    module, variables = gate
    x = np.asarray(pc.truth_table(bits))
    out = np.asarray(module.apply(variables, x)).reshape(len(x), -1)[:, 0].astype(int)
    want = reference(name, x)
    return {"x": x, "out": out, "want": want, "rows": len(x), "correct": int(np.sum(out == want))}


def hidden_units(gate) -> int:
    """Number of units in the first layer of a two-layer threshold network."""
    _, variables = gate
    return int(np.asarray(variables["params"]["layer_0"]["weights"]).shape[1])


def parity_as_step_mlp(n: int) -> np.ndarray:
    """The parity network's weights in `dlfound.models.MLP(activation="step")`; outputs on all 2^n inputs.

    Threshold theta becomes bias -theta (1[w.x - theta >= 0] is step(w.x + b)); the MLP's
    linear readout is thresholded the same way.
    """
    _, variables = pc.parity_network(n)
    hidden, readout = variables["params"]["layer_0"], variables["params"]["layer_1"]
    params = {"hidden_0": {"kernel": hidden["weights"], "bias": -hidden["threshold"]},
              "readout": {"kernel": readout["weights"][:, None], "bias": -readout["threshold"][None]}}
    model = MLP(depth=1, width=n, num_outputs=1, activation="step")
    z = model.apply({"params": params}, pc.truth_table(n))
    return (np.asarray(z)[:, 0] >= 0).astype(int)


def _print_table(title: str, check: dict) -> None:
    print(f"{title}:")
    bits = check["x"].shape[1]
    print("  " + " ".join(f"x{i + 1}" for i in range(bits)) + " | y  (expected)")
    for row, y, want in zip(check["x"].astype(int), check["out"], check["want"]):
        flag = "" if y == want else "  WRONG"
        print("  " + " ".join(f"{v:2d}" for v in row) + f" | {y}  ({want}){flag}")


def _score(gate):
    """Continuous-input score for plotting: the unit's output minus 1/2 (class 1 where it fires)."""
    module, variables = gate
    return lambda p: np.asarray(module.apply(variables, p.astype(np.float32))).reshape(len(p), -1)[:, 0] - 0.5


def _plots(ctx) -> None:
    x, xor_net = np.asarray(pc.truth_table(2)), pc.xor_network()
    layer_0 = xor_net[1]["params"]["layer_0"]
    h = np.asarray(pc.ThresholdUnit(layer_0["weights"], layer_0["threshold"]).apply({"params": layer_0}, x))
    panels = [("AND 1[x1 + x2 >= 2]", x, reference("and", x), _score(pc.and_gate(2))),
              ("OR 1[x1 + x2 >= 1]", x, reference("or", x), _score(pc.or_gate(2))),
              ("XOR in hidden space (h1 = OR, h2 = AND)", h, reference("xor", x),
               lambda p: p @ np.array([1.0, -1.0]) - 0.5),
              ("XOR: 1[h1 - h2 >= 1]", x, reference("xor", x), _score(xor_net))]
    plots.decision_regions(ctx.run_dir.file("threshold_units.png"), panels,
                           "McCulloch-Pitts units on [0,1]^2 (orange: output 1)")


def _parity(n: int) -> dict:
    """The parity network's check on all 2^n inputs, its hidden units and the step MLP's correct rows."""
    check = check_gate(pc.parity_network(n), "parity", n)
    return {**check, "hidden_units": hidden_units(pc.parity_network(n)),
            "step_mlp_correct": int(np.sum(parity_as_step_mlp(n) == check["want"]))}


def _exact(c) -> bool:
    return c["correct"] == c["rows"]


def _rows(c) -> str:
    return f"{c['correct']}/{c['rows']}"


def _judge(gates, xor, parity, max_bits, quick) -> list[dict]:
    return [
        claims.judge(
            "F2", "Single threshold units compute AND, OR and NOT (McCulloch & Pitts 1943)",
            f"exact output on every one of the 2^n inputs for n-input AND and OR (n = 1..{max_bits}) "
            "and for NOT",
            all(_exact(c) for c in gates.values()),
            "rows correct: " + ", ".join(f"{k} {_rows(c)}" for k, c in gates.items()),
            {k: [c["correct"], c["rows"]] for k, c in gates.items()}, quick=quick),
        claims.judge(
            "F2", "Two layers of threshold units compute XOR: y = 1[OR - AND >= 1]",
            "exact output on all 4 inputs", _exact(xor),
            f"XOR rows correct {_rows(xor)}; outputs {xor['out'].tolist()} for inputs 00, 01, 10, 11",
            {"outputs": xor["out"].tolist(), "correct": xor["correct"]}, quick=quick),
        claims.judge(
            "F2", "n-bit parity is computed by two layers with n hidden threshold units",
            f"exact output on all 2^n inputs with exactly n hidden units, n = 2..{max_bits}, and the "
            "same weights in the library MLP with the step activation give the same outputs",
            all(_exact(c) and c["hidden_units"] == n and c["step_mlp_correct"] == c["rows"]
                for n, c in parity.items()),
            "; ".join(f"n={n}: {_rows(c)} with {c['hidden_units']} hidden units "
                      f"(step MLP {c['step_mlp_correct']}/{c['rows']})" for n, c in parity.items()),
            {"correct": {n: c["correct"] for n, c in parity.items()},
             "hidden_units": {n: c["hidden_units"] for n, c in parity.items()},
             "step_mlp_correct": {n: c["step_mlp_correct"] for n, c in parity.items()}}, quick=quick),
    ]


def run(ctx: cli.Context) -> dict:
    max_bits = ctx.settings["max_bits"]
    gates = {f"{kind}{n}": check_gate(gate(n), kind, n)
             for kind, gate in (("and", pc.and_gate), ("or", pc.or_gate)) for n in range(1, max_bits + 1)}
    gates["not"] = check_gate(pc.not_gate(), "not", 1)
    xor = check_gate(pc.xor_network(), "xor", 2)
    parity = {n: _parity(n) for n in range(2, max_bits + 1)}
    if not ctx.quiet:
        for title, check in (("AND", gates["and2"]), ("OR", gates["or2"]), ("NOT", gates["not"]),
                             ("XOR", xor)):
            _print_table(title, check)
    _plots(ctx)
    metrics = {
        "gates": {k: {"correct": c["correct"], "rows": c["rows"]} for k, c in gates.items()},
        "xor_outputs": xor["out"].tolist(),
        "parity": {n: {k: c[k] for k in ("correct", "rows", "hidden_units", "step_mlp_correct")}
                   for n, c in parity.items()},
    }
    return {"metrics": metrics, "claims": _judge(gates, xor, parity, max_bits, ctx.quick)}


EXPERIMENT = cli.Experiment(
    paper="McCulloch & Pitts (1943)", claim_ids=("F2",),
    name="mcculloch1943_threshold_logic", description=__doc__, base=BASE, run=run, default_seeds=1,
    settings={"max_bits": 8}, quick=cli.Overrides(settings={"max_bits": 3}))
cli.script(__name__, EXPERIMENT)
