"""The command line every experiment shares.

    python -m experiments.<name> [--quick] [--seeds N|A-B|A:B] [--out DIR] [--dataset NAME]
                                 [--set key=value ...] [--from RUN_DIR] [--quiet] [--no-params]

Bad input exits with status 2 and one line naming the value and the valid choices, before
anything compiles. Results land in the run directory as they finish (see results.py).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import errno
import os
import sys
from pathlib import Path
from typing import Callable, Optional

from dlfound import claims, data, packing, runtime
from dlfound import config as config_lib
from dlfound.config import Config
from dlfound.data import registry
from dlfound.environment import environment_info
from dlfound.errors import ConfigError
from dlfound.results import RunDir


@dataclasses.dataclass(frozen=True)
class Overrides:
    """What a mode changes: config fields, grid axes and the experiment's own settings (each
    replaces the named entries only). --quick's make a smoke test whose verdicts mean nothing;
    a dataset's adapt the budget to that dataset."""

    config: dict = dataclasses.field(default_factory=dict)
    axes: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment as data: name, docstring, base config, `run`, default seed count; `axes`
    its grid (config field -> values, which `--grid` may change), `settings` its other budget
    constants (widths, step counts, ...), `quick` what --quick changes in all three, `datasets`
    what `--dataset NAME` changes besides the data (the budget adapted to it; `dlfound reproduce`
    runs each experiment on its base dataset and on every dataset declared here), `paper` the
    source in short ("He et al. (2016)") and `claim_ids` the claims it judges ("T6",)."""

    name: str
    description: str
    base: Config
    run: Callable[["Context"], dict]
    default_seeds: int
    axes: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)
    quick: Overrides = Overrides()
    datasets: dict = dataclasses.field(default_factory=dict)
    paper: str = ""
    claim_ids: tuple = ()

    def main(self, argv: Optional[list] = None) -> int:
        """Runs the experiment with command-line arguments; returns the exit status."""
        return main(self, argv)


def script(module_name: str, experiment: Experiment) -> None:
    """An experiment file's last line, `cli.script(__name__, EXPERIMENT)`: runs it when executed."""
    if module_name == "__main__":
        raise SystemExit(experiment.main())


@dataclasses.dataclass
class Context:
    """What `run` gets: the validated config, seeds, the run directory and flags; `axes` the grid
    to sweep (the experiment's, or the user's --grid), `settings` the experiment's settings
    (quick ones under --quick), `user_set` the config fields the user --set."""

    cfg: Config
    seeds: list
    quick: bool
    run_dir: RunDir
    quiet: bool
    axes: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)
    user_set: tuple = ()


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors become one-line ConfigErrors (exit status 2)."""

    def error(self, message):
        raise ConfigError(f"{message} (see --help)")


MAX_SEEDS = 2**20  # seeds are listed in config.json and become uint32 keys


def _seeds(text: str) -> list[int]:
    """N (seeds 0..N-1), A-B (A to B inclusive) or A:B (A to B-1, as a Python range)."""
    allowed = (f"allowed: N (seeds 0..N-1, N from 1 to {MAX_SEEDS}), A-B (A to B inclusive) or A:B "
               "(A to B-1), with 0 <= A and B < 2**32")
    raw = text.strip()
    try:
        if "-" in raw[1:] or ":" in raw:
            first, last = (int(part) for part in raw.replace(":", "-", 1).split("-", 1))
            seeds = range(first, last + 1 if ":" not in raw else last)
        else:
            seeds = range(int(raw))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --seeds {text!r}; {allowed}") from None
    if not (1 <= len(seeds) <= MAX_SEEDS and seeds.start >= 0 and seeds.stop <= 2**32):
        raise argparse.ArgumentTypeError(f"invalid --seeds {text!r}; {allowed}")
    return list(seeds)


def _path(flag: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"invalid {flag} {text!r}; allowed: a directory path")
        return text

    return check


def one_line(message) -> str:
    """The message with its lines joined, for a single `error: ...` line."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def build_parser(experiment: Experiment) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"python -m experiments.{experiment.name}",
                     description=_first_line(experiment.description) or None, allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="tiny budget: a smoke test whose verdicts mean nothing")
    parser.add_argument("--seeds", type=_seeds, default=None,
                        help=f"N: seeds 0..N-1 (default {experiment.default_seeds}); A-B: seeds A to B; A:B: A to B-1")
    parser.add_argument("--out", type=_path("--out"), default=None, help="run directory (default ./runs/<name>, <name>-quick with --quick; root $DLFOUND_RUNS_DIR)")
    parser.add_argument("--dataset", default=None, help="dataset name (see `dlfound list`)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set depth=4 (repeatable)")
    parser.add_argument("--grid", dest="grid", action="append", default=[], metavar="AXIS=V1,V2",
                        help="sweep these values of a grid axis instead of the experiment's, e.g. "
                             "--grid depth=1,4 (repeatable)")
    parser.add_argument("--from", dest="from_dir", type=_path("--from"), default=None,
                        help="re-run the config and seeds of a run directory")
    parser.add_argument("--quiet", action="store_true", help="no progress output (also when $CI is set)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run already in --out (only files dlfound wrote) and start over")
    parser.add_argument("--no-params", dest="keep_models", action="store_false",
                        help="do not keep the trained models (by default each cell's final variables are "
                             "saved under models/, for dlfound.results.load_model)")
    return parser


def _default_out(name: str, from_dir: Optional[str], quick: bool = False) -> Path:
    if from_dir:
        source = Path(from_dir).expanduser().resolve()  # "." has no name of its own
        return source.with_name(source.name + "-rerun")
    root = os.environ.get("DLFOUND_RUNS_DIR")
    name = f"{name}-quick" if quick else name  # a smoke test never blocks the full run's directory
    return Path(root) / name if root else Path("runs") / name


def _read_run_config(path: str) -> dict:
    """The config.json of run directory `path`, checked enough to re-run it."""
    from dlfound.files import read_json

    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"--from {path!r} is not a run directory (no config.json there)")
    try:
        stored = read_json(config_file)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--from {path!r}: config.json is unreadable ({e})") from None
    if not (isinstance(stored, dict) and isinstance(stored.get("config"), dict)
            and {"seeds", "quick"} <= set(stored)):
        raise ConfigError(f"--from {path!r}: config.json is not a dlfound run config "
                          "(needs experiment, config, seeds and quick)")
    seeds = stored["seeds"]
    if not (isinstance(seeds, list) and seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in seeds)):
        raise ConfigError(f"--from {path!r}: invalid seeds={seeds!r} in config.json; "
                          "allowed: a non-empty list of integers in [0, 2**32)")
    repeated = sorted(s for s, n in collections.Counter(seeds).items() if n > 1)
    if repeated:
        raise ConfigError(f"--from {path!r}: config.json lists seed {repeated[0]} more than once; "
                          "each seed must appear once")
    return stored


def modes(experiment: Experiment, dataset: str, quick: bool) -> list[Overrides]:
    """The overrides in force, in order: the dataset's adapted budget, then --quick's."""
    return [o for o in (experiment.datasets.get(dataset), experiment.quick if quick else None) if o]


def resolve_axes(experiment: Experiment, cfg: Config, quick: bool, grid: list, stored=None) -> dict:
    """The grid to sweep: the experiment's axes (as its dataset and --quick change them, or a
    --from run's), with each `--grid AXIS=V1,V2` replacing an axis's values; every value validated."""
    axes = dict(experiment.axes)
    for mode in modes(experiment, cfg.dataset, quick):
        axes.update(mode.axes)
    if stored:
        axes.update({k: tuple(v) for k, v in stored.items() if k in axes})
    given = set()
    for item in grid:
        name, _, text = item.partition("=")
        name = name.strip()
        if not experiment.axes:
            raise ConfigError(f"{experiment.name} has no grid axes to --grid; change its config with --set")
        if name not in experiment.axes:
            raise ConfigError(f"invalid --grid {item!r}: {experiment.name} has no grid axis {name!r}; "
                              f"its axes: {', '.join(experiment.axes)}")
        if name in given:
            raise ConfigError(f"--grid {name} is given twice; give each axis once")
        values = tuple(dict.fromkeys(config_lib.parse_value(name, v) for v in text.split(",") if v.strip()))
        if not values:
            raise ConfigError(f"invalid --grid {item!r}; expected {name}=V1,V2,... e.g. --grid {name}=1,4")
        for value in values:
            config_lib.validate(cfg.replace(**{name: value}))
        axes[name], given = values, given | {name}
    return axes


def resolve(experiment: Experiment, args) -> tuple[Config, list, bool, dict]:
    """The config, seeds, quick flag and grid axes from the flags (or from `--from RUN_DIR`)."""
    stored_axes = None
    if args.from_dir:
        stored = _read_run_config(args.from_dir)
        if stored.get("experiment") != experiment.name:
            raise ConfigError(f"--from {args.from_dir!r} holds a run of {stored.get('experiment')!r}, "
                              f"not {experiment.name!r}")
        cfg = Config.from_dict(stored["config"])
        seeds, quick, stored_axes = list(stored["seeds"]), bool(stored["quick"]), stored.get("axes")
    else:
        cfg, quick = experiment.base, args.quick
        if args.dataset is not None:
            registry.check_name(args.dataset)
            cfg = cfg.replace(dataset=args.dataset)
        for mode in modes(experiment, cfg.dataset, quick):
            cfg = cfg.replace(**mode.config)
        seeds = args.seeds or list(range(experiment.default_seeds))
    if args.dataset is not None and args.from_dir:
        cfg = cfg.replace(dataset=args.dataset)
    if args.seeds and args.from_dir:
        seeds = args.seeds
    cfg = config_lib.apply_overrides(cfg, args.overrides)  # a bad value is named as such first
    for item in args.overrides:
        name = item.partition("=")[0].strip()
        if name in experiment.axes:
            raise ConfigError(f"--set {item!r}: {name} is a grid axis of {experiment.name}, which sweeps it; "
                              f"use --grid {name}=V1,V2 to choose its values")
    cfg = config_lib.validate(cfg)
    return cfg, seeds, quick, resolve_axes(experiment, cfg, quick, args.grid, stored_axes)


def main(experiment: Experiment, argv: Optional[list] = None) -> int:
    """Runs the experiment; returns the exit status (2 for bad input, with one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = build_parser(experiment).parse_args(argv)
        except SystemExit as done:  # --help prints and exits 0
            return done.code if isinstance(done.code, int) else 0
        runtime.check_environment()
        cfg, seeds, quick, axes = resolve(experiment, args)
        packing.default_axes()  # a bad $DLFOUND_PACK is refused here, before anything compiles
        data.check_contents(cfg.dataset, validation_fraction=cfg.validation_fraction, seed=cfg.seed)
        quiet = args.quiet or bool(os.environ.get("CI"))
        run_dir = RunDir(args.out or _default_out(experiment.name, args.from_dir, quick),
                         writer=runtime.is_writer(), keep_models=args.keep_models)
        info = {"experiment": experiment.name, "config": cfg.to_dict(), "seeds": seeds, "quick": quick,
                "axes": {k: list(v) for k, v in axes.items()}}
        with contextlib.ExitStack() as held:
            refusal = None
            if runtime.is_writer():
                try:
                    held.enter_context(run_dir.lock())
                    run_dir.write_config({**info, "environment": environment_info()}, overwrite=args.overwrite)
                except ConfigError as err:
                    refusal = err
            if not runtime.all_processes_agree(refusal is None):
                raise refusal or ConfigError("process 0 refused to start this run; its message says why")
            user_set = tuple(item.partition("=")[0].strip() for item in args.overrides)
            settings = dict(experiment.settings)
            for mode in modes(experiment, cfg.dataset, quick):
                settings.update(mode.settings)
            ctx = Context(cfg, seeds, quick, run_dir, quiet, axes, settings, user_set)
            return _run(experiment, ctx, write=runtime.is_writer())
    except ConfigError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:
        advice = "free space" if err.errno in (errno.ENOSPC, errno.EDQUOT) else "fix that"
        print(f"error: {one_line(err)}; finished cells are saved: {advice} and re-run the same command "
              "to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished cells are saved; re-run the same command to resume", file=sys.stderr)
        return 130


def _run(experiment: Experiment, ctx: Context, write: bool) -> int:
    from dlfound import report

    outcome = experiment.run(ctx)
    if not isinstance(outcome, dict) or not set(outcome) <= {"metrics", "claims"}:
        raise TypeError(f"{experiment.name}.run must return {{'metrics': dict, 'claims': list}}, "
                        f"got {outcome!r:.200}")
    summary = {"experiment": experiment.name, "description": _first_line(experiment.description),
               "config": ctx.cfg.to_dict(), "seeds": ctx.seeds, "quick": ctx.quick,
               "axes": {k: list(v) for k, v in ctx.axes.items()},
               "metrics": outcome.get("metrics", {}), "claims": outcome.get("claims", [])}
    if write:
        ctx.run_dir.write_summary(summary)
        report.render_report(ctx.run_dir.path)
    claims.print_verdicts(summary["claims"])
    if write and not ctx.quiet:
        print(f"results: {ctx.run_dir.path}", file=sys.stderr)
    return 0

