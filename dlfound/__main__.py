"""`dlfound report RUN_DIR...` renders reports; `dlfound list` lists the experiments."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from dlfound.errors import ConfigError


def list_experiments() -> list[tuple[str, str]]:
    """(module name, first docstring line) for each experiment script."""
    import experiments

    out = []
    for info in sorted(pkgutil.iter_modules(experiments.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"experiments.{info.name}")
        doc = (module.__doc__ or "").strip().splitlines()
        out.append((info.name, doc[0] if doc else ""))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dlfound", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="render REPORT.md for run directories (or a folder of them)")
    rep.add_argument("paths", nargs="+")
    sub.add_parser("list", help="list the experiments")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for name, line in list_experiments():
                print(f"{name:40s} {line}")
            return 0
        from dlfound import report

        for path in args.paths:
            print(report.render_index(path))
        return 0
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
