"""A run's recorded metrics as TensorBoard event files, written without TensorFlow (tensorboardX,
an optional extra: `pip install "dlfound[tensorboard]"`).

    dlfound export RUN_DIR --format tensorboard     # then: tensorboard --logdir RUN_DIR/tensorboard

One TensorBoard run per cell x model, named `<cell>/seed=<s>` (plus the member's vmapped values),
with every recorded metric against the training step (per-layer statistics as
`<metric>/layer_<i>`, 0 the first hidden layer) and, in the HPARAMS tab, the cell's axis values,
the member's values and its final metrics.
"""

from __future__ import annotations

from pathlib import Path

from dlfound.errors import ConfigError
from dlfound.results import RunDir
from dlfound.stored import read_table

OUTPUT_DIR = "tensorboard"
NOT_HPARAMS = ("cell", "model", "status", "diverged_step")  # fixed per model, but not settings


def _summary_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ConfigError('TensorBoard export needs tensorboardX: pip install "dlfound[tensorboard]"'
                          ) from None
    return SummaryWriter


def _hparam(value):
    """A value TensorBoard's HPARAMS tab takes (bool, str, int or float)."""
    return value if isinstance(value, (bool, str, int, float)) else str(value)


def run_names(table) -> dict[tuple, str]:
    """(cell, model) -> the TensorBoard run's name: the cell, the seed and the values that vary
    between the cell's members."""
    names, by_cell = {}, {}
    for row in table.rows:
        by_cell.setdefault(row["cell"], {}).setdefault(row["model"], row)
    for cell, models in by_cell.items():
        firsts = list(models.values())
        varying = [k for k in table.fields if k not in NOT_HPARAMS + ("seed",)
                   and len({repr(r.get(k)) for r in firsts}) > 1]
        for model, row in models.items():
            extra = "".join(f",{k}={row[k]:g}" if isinstance(row[k], float) else f",{k}={row[k]}"
                            for k in varying)
            names[(cell, model)] = f"{cell}/seed={row['seed']}{extra}"
    return names


def export(run_dir, output=None) -> Path:
    """Writes event files for every model of `run_dir` under `output` (default RUN_DIR/tensorboard)."""
    summary_writer = _summary_writer()
    table = read_table(run_dir)
    if output is None:
        run = RunDir(run_dir, min_free_bytes=0)
        if run.marker() is None:
            raise ConfigError(f"{str(run.path)!r} is not a run directory dlfound marked; pass --output DIR")
        root = run.file(OUTPUT_DIR)  # listed as the run's, so --overwrite removes it
    else:
        root = Path(output)
    groups: dict[tuple, list[dict]] = {}
    for row in table.rows:
        groups.setdefault((row["cell"], row["model"]), []).append(row)
    names = run_names(table)
    fixed = set(table.fields) | {"eval", "step"}
    for key, rows in groups.items():
        metrics = [k for k in rows[0] if k not in fixed and isinstance(rows[0][k], (int, float, list))]
        hparams = {k: _hparam(rows[0][k]) for k in table.fields if k not in NOT_HPARAMS}
        with summary_writer(logdir=str(root / names[key])) as writer:
            for row in rows:
                for metric in metrics:
                    value = row[metric]
                    if isinstance(value, list):
                        for layer, v in enumerate(value):
                            writer.add_scalar(f"{metric}/layer_{layer}", v, global_step=row["step"])
                    else:
                        writer.add_scalar(metric, value, global_step=row["step"])
            final = {f"final/{m}": rows[-1][m] for m in metrics if not isinstance(rows[-1][m], list)}
            writer.add_hparams(hparams, final, name=".", global_step=rows[-1]["step"])
    return root
