"""`dlfound run NAME [flags]` runs an experiment, `dlfound list` lists them; `dlfound reproduce` runs
every claim's experiment into one table; `dlfound report RUN_DIR...` renders reports; `dlfound export
RUN_DIR` writes a run's results as one table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dlfound import catalog
from dlfound.cli import _Parser, one_line
from dlfound.errors import ConfigError


def build_parser() -> _Parser:
    parser = _Parser(prog="dlfound", description=__doc__, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,list,reproduce,report,export}")
    run = sub.add_parser("run", help="run an experiment: dlfound run NAME [--quick] [--help] ...",
                         allow_abbrev=False, add_help=False)
    run.add_argument("name", metavar="NAME")
    run.add_argument("flags", nargs=argparse.REMAINDER)
    rep = sub.add_parser("report", help="render REPORT.md for run directories (or a folder of them)",
                         allow_abbrev=False)
    rep.add_argument("paths", nargs="+", metavar="RUN_DIR")
    rep.add_argument("--output", default=None, metavar="FILE",
                     help="write the report (or index) here instead of inside the run directory")
    sub.add_parser("list", help="list the experiments", allow_abbrev=False)
    rpr = sub.add_parser("reproduce", help="run every claim's experiment at its default budget and write "
                         "one table (REPRODUCE.md, reproduce.json); resumable", allow_abbrev=False)
    rpr.add_argument("--only", default=None, metavar="T1,T3",
                     help="only the experiments judging these claims")
    rpr.add_argument("--dataset", dest="datasets", action="append", default=[], metavar="NAME",
                     help="the column to run: base (each experiment's own dataset, the default) or a "
                          "dataset the experiments declare, e.g. fashion_mnist (repeatable)")
    rpr.add_argument("--quick", action="store_true",
                     help="every experiment's smoke test (verdicts mean nothing)")
    rpr.add_argument("--out", default=None, metavar="DIR",
                     help="default: runs/reproduce (runs/reproduce-quick with --quick; "
                          "root $DLFOUND_RUNS_DIR)")
    rpr.add_argument("--readme", default=None, metavar="FILE",
                     help="also write the table between the claims-table markers of FILE (README.md)")
    exp = sub.add_parser("export", help="write a run's results as one tidy table (csv or parquet) or as "
                         "TensorBoard event files", allow_abbrev=False)
    exp.add_argument("path", metavar="RUN_DIR")
    exp.add_argument("--format", default="csv", help="csv (default), parquet or tensorboard")
    exp.add_argument("--output", default=None, metavar="PATH",
                     help="default: RUN_DIR/results.<format>, or RUN_DIR/tensorboard/")
    return parser


def main(argv=None) -> int:
    """Runs `dlfound run|list|report|export`; returns the exit status (2 with one line for bad input)."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help prints and exits 0
            return done.code if isinstance(done.code, int) else 0
        if args.command == "run":
            return catalog.load(args.name).EXPERIMENT.main(args.flags)
        if args.command == "list":
            found = catalog.experiments()
            width = max((len(name) for name, _ in found), default=0)
            for name, line in found:
                print(f"{name:{width}s}  {line}")
            print("\nrun one with: dlfound run NAME [--quick] (its flags: dlfound run NAME --help)")
            return 0
        if args.command == "reproduce":
            from dlfound import reproduce

            name = "reproduce-quick" if args.quick else "reproduce"
            out = args.out or str(Path(os.environ.get("DLFOUND_RUNS_DIR", "runs")) / name)
            return reproduce.main(out, args.only, args.datasets, args.quick, args.readme)
        if args.command == "export":
            if args.format == "tensorboard":
                from dlfound import tensorboard

                print(tensorboard.export(args.path, args.output))
                return 0
            from dlfound import analysis

            print(analysis.export(args.path, args.format, args.output))
            return 0
        from dlfound import report

        if args.output and len(args.paths) > 1:
            raise ConfigError(f"--output names one file but {len(args.paths)} paths were given; pass one")
        skipped = []
        for path in args.paths:
            if (Path(path) / report.SUMMARY_FILE).is_file():
                report.render_report(path, args.output)
                print(args.output or Path(path) / report.REPORT_FILE)
            else:
                index, left_out = report.render_index(path, args.output)
                print(index)
                skipped += left_out
        for line in skipped:
            print(f"warning: {one_line(line)}", file=sys.stderr)
        return 1 if skipped else 0
    except ConfigError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
