"""A run's results as one tidy table: one row per model x evaluation, with the cell's config and
axis values as columns (pandas, an optional extra: `pip install "dlfound[analysis]"`).

    frame = dlfound.results.load("runs/depth_activation")
    frame[frame.step == frame.step.max()].groupby(["depth", "activation"]).test_accuracy.mean()

Per-layer statistics (grad_norm, activation_mean, activation_std) become one column per layer,
`grad_norm_0`, `grad_norm_1`, ... (0 is the first hidden layer; the last grad_norm is the readout).
"""

from __future__ import annotations

from pathlib import Path

from dlfound.errors import ConfigError
from dlfound.results import RESULTS_FILE, RunDir

FORMATS = ("csv", "parquet", "tensorboard")  # tensorboard: dlfound.tensorboard
INTEGER_COLUMNS = ("model", "seed", "eval", "step", "diverged_step")


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ConfigError('reading results as a table needs pandas: pip install "dlfound[analysis]"') from None
    return pandas


def load(run_dir):
    """The finished cells of `run_dir` as a pandas DataFrame (see the module docstring)."""
    pandas = _pandas()
    run = RunDir(run_dir, writer=False)
    if not (run.path / RESULTS_FILE).is_file():
        raise ConfigError(f"{str(run.path)!r} holds no {RESULTS_FILE}; is it a dlfound run directory?")
    from dlfound.stored import read_table

    records = []
    for row in read_table(run.path).rows:  # every finished seed once, `model` numbered per cell
        stored = run.cell_identity(row["cell"])
        record = dict(stored["config"]) if isinstance(stored, dict) else {}
        for key, value in row.items():
            if isinstance(value, list):
                record.update({f"{key}_{i}": v for i, v in enumerate(value)})
            else:
                record[key] = value
        records.append(record)
    frame = pandas.DataFrame.from_records(records)
    for column in INTEGER_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype("int64")
    return frame


def export(run_dir, fmt: str, output=None) -> Path:
    """Writes `load(run_dir)` as CSV or Parquet to `output` (default RUN_DIR/results.<fmt>)."""
    if fmt not in FORMATS[:2]:
        raise ConfigError(f"invalid --format {fmt!r}; valid choices: {', '.join(FORMATS)}")
    frame = load(run_dir)
    if output is None:
        run = RunDir(run_dir, min_free_bytes=0)
        if run.marker() is None:
            raise ConfigError(f"{str(run.path)!r} is not a run directory dlfound marked; pass --output FILE")
        path = run.file(f"results.{fmt}")  # listed as the run's, so --overwrite removes it
    else:
        path = Path(output)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        try:
            frame.to_parquet(path, index=False)
        except ImportError:
            raise ConfigError('Parquet needs pyarrow: pip install "dlfound[analysis]"') from None
    return path
