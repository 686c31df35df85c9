"""TensorBoard export: every recorded metric of every model reads back from the event files."""

import struct

import numpy as np
import pytest

from dlfound import __main__ as dlfound_main
from dlfound import sweep, tensorboard
from dlfound.config import Config
from dlfound.data import load
from dlfound.results import RunDir

pytest.importorskip("tensorboardX")
from tensorboardX.proto import event_pb2  # noqa: E402


def _events(directory):
    """Every Event in the TFRecord files of `directory` (length, crc, data, crc per record)."""
    out = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[offset + 12:offset + 12 + length])
            out.append(event)
            offset += 12 + length + 4
    return out


def test_every_metric_of_every_model_reads_back(tmp_path):
    cfg = Config(dataset="moons", depth=1, width=4, batch_size=32, num_epochs=2, eval_every_epochs=1,
                 optimizer="sgd", learning_rate=0.1)
    run = tmp_path / "run"
    table = sweep.run_sweep(sweep.Sweep(cfg, {"depth": (1, 2)}, {"learning_rate": (0.1, 0.3)}), load("moons"),
                            [0, 1], RunDir(run), quiet=True)
    assert dlfound_main.main(["export", str(run), "--format", "tensorboard"]) == 0
    names = tensorboard.run_names(table)
    assert names[("depth=2", 3)] == "depth=2/seed=1,learning_rate=0.3"
    scalars = {}
    for event in _events(run / "tensorboard" / "depth=2" / "seed=1,learning_rate=0.3"):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
            if value.tag == "_hparams_/session_start_info":
                assert b"learning_rate" in value.metadata.plugin_data.content
    steps = table.steps(depth=2, seed=1, learning_rate=0.3)
    for metric in ("train_loss", "test_accuracy", "val_loss"):
        recorded = table.history(metric, depth=2, seed=1, learning_rate=0.3)[0]
        np.testing.assert_array_equal([scalars[metric][int(s)] for s in steps], recorded.astype(np.float32))
    grad = table.history("grad_norm", layer=1, depth=2, seed=1, learning_rate=0.3)[0]
    np.testing.assert_array_equal([scalars["grad_norm/layer_1"][int(s)] for s in steps],
                                  grad.astype(np.float32))
    assert len([p for p in (run / "tensorboard").glob("*/*") if p.is_dir()]) == 8  # 2 cells x 4 models
    assert "tensorboard" in RunDir(run).marker()["files"]
