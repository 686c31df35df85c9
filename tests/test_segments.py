"""A run in segments (make_segments) equals the run at once, bitwise."""

import jax
import numpy as np
import pytest

from dlfound.config import Config
from dlfound.data import load
from dlfound.hyperparams import Hyperparams
from dlfound.train import make_segments, make_train


@pytest.mark.parametrize("cfg", [
    Config(dataset="moons", depth=3, width=16, batch_size=32, num_epochs=6, eval_every_epochs=1,
           optimizer="adam", learning_rate=3e-3, dropout_rate=0.2, label_noise=0.1),
    Config(dataset="moons", depth=2, width=8, batch_size=64, num_epochs=12, eval_every_epochs=2,
           optimizer="sgd", momentum=0.9, learning_rate=0.1, norm="batch"),
])
def test_segmented_equals_unsegmented(cfg):
    data = load("moons")
    key, hparams = jax.random.key(7), Hyperparams.from_config(cfg)
    whole = jax.jit(make_train(cfg))(key, data, hparams)
    start, advance, finish = make_segments(cfg)
    num_evals = cfg.num_epochs // cfg.eval_every_epochs + 1
    advance = jax.jit(advance, static_argnums=5)
    state, pieces = jax.jit(start)(key, data, hparams), []
    for first, count in ((0, 2), (2, 2), (4, num_evals - 4)):
        state, history = advance(state, key, data, hparams, first, count)
        pieces.append(history)
    history = jax.tree.map(lambda *h: np.concatenate(h), *pieces)
    parts = finish(state, history)
    jax.tree.map(np.testing.assert_array_equal, parts.params, whole.params)
    jax.tree.map(np.testing.assert_array_equal, parts.batch_stats, whole.batch_stats)
    for name, values in whole.history.items():
        np.testing.assert_array_equal(parts.history[name], values, err_msg=name)
    assert int(parts.diverged_step) == int(whole.diverged_step)


SWEEP_BASE = Config(dataset="moons", depth=2, width=8, batch_size=32, num_epochs=12, eval_every_epochs=1,
                    optimizer="adam", learning_rate=3e-3, dropout_rate=0.1)
GRID = {"depth": (1, 3), "activation": ("relu", "tanh")}


def _sweep(path, seeds=(0, 1, 2)):
    from dlfound import sweep
    from dlfound.results import RunDir

    return sweep.run_sweep(sweep.Sweep(SWEEP_BASE, GRID), load("moons"), list(seeds),
                           RunDir(path) if path else None, quiet=True)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("whole"))


def test_a_sweep_in_segments_equals_one_in_one_program(whole, tmp_path, monkeypatch):
    from dlfound import files

    monkeypatch.setenv("DLFOUND_SEGMENT_SECONDS", "0")  # segments of two evaluations
    parts = _sweep(tmp_path)
    assert files.dumps(parts.rows) == files.dumps(whole.rows)
    for depth in (1, 3):
        jax.tree.map(np.testing.assert_array_equal, parts.models(depth=depth, activation="tanh").variables,
                     whole.models(depth=depth, activation="tanh").variables)
    assert not any((tmp_path / "segments").rglob("meta"))  # removed once the rows are committed


class _Killed(Exception):
    pass


def test_a_run_killed_between_segments_resumes_from_the_last(whole, tmp_path, monkeypatch):
    from dlfound import files, segmented

    monkeypatch.setenv("DLFOUND_SEGMENT_SECONDS", "0")
    saves, real_save = [], segmented.Store.save

    def save_then_die(self, chunk, evaluations, state, history):
        real_save(self, chunk, evaluations, state, history)
        saves.append(evaluations)
        if len(saves) == 3:
            raise _Killed
    monkeypatch.setattr(segmented.Store, "save", save_then_die)
    with pytest.raises(_Killed):
        _sweep(tmp_path)
    monkeypatch.setattr(segmented.Store, "save", real_save)
    counts = []
    real_programs = segmented.programs

    def recording_programs(*args):
        start, advance = real_programs(*args)
        return start, lambda count: (counts.append(count), advance(count))[1]
    monkeypatch.setattr(segmented, "programs", recording_programs)
    resumed = _sweep(tmp_path)
    assert files.dumps(resumed.rows) == files.dumps(whole.rows)
    total = SWEEP_BASE.num_epochs // SWEEP_BASE.eval_every_epochs + 1
    # the first program (depth 1) resumes after its last checkpoint; the second (depth 3) starts
    assert saves == [2, 4, 6] and sum(counts) == (total - saves[-1]) + total


def test_a_damaged_segment_checkpoint_is_trained_again_not_loaded(whole, tmp_path, monkeypatch):
    from dlfound import files, segmented

    monkeypatch.setenv("DLFOUND_SEGMENT_SECONDS", "0")
    real_save = segmented.Store.save

    def save_then_die(self, chunk, evaluations, state, history):
        real_save(self, chunk, evaluations, state, history)
        raise _Killed
    monkeypatch.setattr(segmented.Store, "save", save_then_die)
    with pytest.raises(_Killed):
        _sweep(tmp_path)
    monkeypatch.setattr(segmented.Store, "save", real_save)
    for data_file in (tmp_path / "segments").rglob("d/*"):
        data_file.write_bytes(data_file.read_bytes()[:-5])
    assert files.dumps(_sweep(tmp_path).rows) == files.dumps(whole.rows)


def _checkpointed(out) -> bool:
    """Whether a segment checkpoint is committed (Orbax renames its temporary folders meanwhile)."""
    try:
        return any((out / "segments").glob("*/chunk-*/meta"))
    except OSError:
        return False


def test_sigkill_inside_a_long_cell_then_resume_gives_identical_files(tmp_path):
    """A real kill -9 after a segment checkpoint, mid-program; the resumed run's files are those of a
    run in one piece."""
    import json
    import signal
    import time

    import tiny_support

    tiny = tiny_support.write(tmp_path, "tiny_long", widths=(8, 16))
    args = ("--quiet", "--set", "num_epochs=24", "--set", "eval_every_epochs=2")
    reference = tiny_support.run(tiny, tmp_path / "reference", *args)
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "run"
    proc = tiny_support.start(tiny, out, *args, DLFOUND_SEGMENT_SECONDS="0")
    deadline = time.time() + 300
    while not _checkpointed(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    metas = (out / "segments").glob("*/chunk-*/meta/metadata")
    checkpointed = [json.loads(p.read_text())["evaluations"] for p in metas]
    # (a kill while a chunk's checkpoint is being replaced can leave none: the chunk starts over)
    resumed = tiny_support.run(tiny, out, *args, DLFOUND_SEGMENT_SECONDS="0")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.jsonl").read_bytes() == (tmp_path / "reference" / "results.jsonl").read_bytes()
    assert (out / "summary.json").read_bytes() == (tmp_path / "reference" / "summary.json").read_bytes()
    print(f"killed with checkpoints at evaluations {sorted(checkpointed)} of 13; the resume trained the rest")
