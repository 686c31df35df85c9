"""`dlfound report RUN_DIR...` renders reports; `dlfound list` lists the experiments; `dlfound export RUN_DIR`
writes a run's results as one table."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import sys
from pathlib import Path

from dlfound.cli import _Parser, one_line
from dlfound.errors import ConfigError


def _first_doc_line(path: Path) -> str:
    """The first line of a module's docstring, read from its source without importing it."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, ValueError) as e:
        return f"(unreadable: {e})"
    lines = doc.strip().splitlines()
    return lines[0] if lines else ""


def list_experiments() -> list[tuple[str, str]]:
    """(module name, first docstring line) for each experiment script in the `experiments` package."""
    spec = importlib.util.find_spec("experiments")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("no `experiments` package found; run from the repository root or install dlfound")
    out = []
    for info in pkgutil.iter_modules(spec.submodule_search_locations):
        if info.name.startswith("_") or info.ispkg:
            continue
        path = Path(info.module_finder.path) / f"{info.name}.py"
        out.append((info.name, _first_doc_line(path)))
    return sorted(out)


def build_parser() -> _Parser:
    parser = _Parser(prog="dlfound", description=__doc__, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{report,list,export}")
    rep = sub.add_parser("report", help="render REPORT.md for run directories (or a folder of them)",
                         allow_abbrev=False)
    rep.add_argument("paths", nargs="+", metavar="RUN_DIR")
    rep.add_argument("--output", default=None, metavar="FILE",
                     help="write the report (or index) here instead of inside the run directory")
    sub.add_parser("list", help="list the experiments", allow_abbrev=False)
    exp = sub.add_parser("export", help="write a run's results as one tidy table (csv or parquet)",
                         allow_abbrev=False)
    exp.add_argument("path", metavar="RUN_DIR")
    exp.add_argument("--format", default="csv", help="csv (default) or parquet")
    exp.add_argument("--output", default=None, metavar="FILE", help="default: RUN_DIR/results.<format>")
    return parser


def main(argv=None) -> int:
    """Runs `dlfound report|list`; returns the exit status (2 with one line for bad input)."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help prints and exits 0
            return done.code if isinstance(done.code, int) else 0
        if args.command == "list":
            found = list_experiments()
            if not found:
                print("no experiments yet")
            width = max((len(name) for name, _ in found), default=0)
            for name, line in found:
                print(f"{name:{width}s}  {line}")
            return 0
        if args.command == "export":
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
