"""`dlfound reproduce`: every claim, each experiment at its default budget, in one table.

Each experiment that judges a claim (`Experiment.claim_ids`) runs in its own process into
OUT/<name> on its base dataset (MNIST-1D or synthetic data) and, with `--dataset NAME`, into
OUT/<name>-<NAME> on a dataset it declares (`Experiment.datasets`, its budget adapted there).
A run resumes like any run, so re-running the command trains only what is missing. The table,
OUT/REPRODUCE.md and OUT/reproduce.json, is rebuilt from every run directory in OUT: one row per
claim, the datasets side by side, each with its verdict, its effects with their 95% paired-
bootstrap intervals, the seed count and the wall time of the run that trained it.
Reproductions of different claims into the same OUT may run at the same time.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from dlfound import catalog
from dlfound.claims import count_verdicts, effect_text
from dlfound.errors import ConfigError
from dlfound.files import read_json, write_bytes_atomic, write_json_atomic
from dlfound.report import claim_sort_key

BASE = "base"  # the column of each experiment's own dataset
TABLE_FILE, STATE_FILE, TIMES_DIR = "REPRODUCE.md", "reproduce.json", "wall_times"
README_BEGIN = "<!-- claims table: written by `dlfound reproduce --readme README.md`; do not edit -->"
README_END = "<!-- end of claims table -->"


def declared() -> list:
    """Every experiment that judges a claim, as its `cli.Experiment`, by name."""
    found = [catalog.load(name).EXPERIMENT for name, _ in catalog.experiments()]
    return [e for e in found if e.claim_ids]


def select(experiments: list, only: str | None) -> list:
    """The experiments judging any claim id in the comma-separated `only` (all when None)."""
    if not only:
        return experiments
    wanted = [c.strip() for c in only.split(",") if c.strip()]
    valid = sorted({c for e in experiments for c in e.claim_ids}, key=claim_sort_key)
    unknown = [c for c in wanted if c not in valid]
    if unknown or not wanted:
        raise ConfigError(f"invalid --only {only!r}: no claim {unknown[0] if unknown else ''!r}; "
                          f"valid claim ids: {', '.join(valid)}")
    return [e for e in experiments if set(wanted) & set(e.claim_ids)]


def run_dir(out: Path, experiment, dataset: str) -> Path:
    """Where one experiment's run on one dataset column lives."""
    return out / (experiment.name if dataset == BASE else f"{experiment.name}-{dataset}")


def read_times(out: Path) -> dict:
    """{run directory name: {"experiment", "dataset", "exit", "wall_seconds"}} of the runs made here."""
    times = {}
    for path in sorted((out / TIMES_DIR).glob("*.json")):
        try:
            times[path.stem] = read_json(path)
        except (OSError, ValueError):
            continue  # a lost time is shown as unknown; the run's results are elsewhere
    return times


def _children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children (the runs), which other load on
    the machine does not inflate the way it inflates wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(out: Path, experiment, dataset: str, quick: bool) -> int:
    """Runs (or resumes) one experiment in its own process; records its exit and wall time.

    A resume of a finished run keeps the times of the run that trained it. Each run's time is its own
    file (OUT/wall_times/<run>.json), so reproductions of different claims may run at once.
    """
    path = run_dir(out, experiment, dataset)
    args = [sys.executable, "-m", "dlfound", "run", experiment.name, "--out", str(path)]
    args += (["--dataset", dataset] if dataset != BASE else []) + (["--quick"] if quick else [])
    finished_before = (path / "summary.json").is_file()
    print(f"reproduce: {experiment.name} ({dataset}) -> {path}", file=sys.stderr, flush=True)
    start, cpu_start = time.perf_counter(), _children_cpu_seconds()
    code = subprocess.run(args).returncode
    entry = read_times(out).get(path.name, {})
    if not (finished_before and "wall_seconds" in entry):
        entry["wall_seconds"] = round(time.perf_counter() - start, 1)
        entry["cpu_seconds"] = round(_children_cpu_seconds() - cpu_start, 1)
    entry.update(experiment=experiment.name, dataset=dataset, exit=code)
    (out / TIMES_DIR).mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / TIMES_DIR / f"{path.name}.json", entry)
    return code


def _summary(path: Path) -> dict | None:
    try:
        return read_json(path / "summary.json")
    except (OSError, ValueError):
        return None


def _revision_of(environment: dict) -> tuple[str, bool]:
    """(the git revision's first 12 characters or "unknown", whether the tree had local changes)."""
    return (environment.get("git_revision") or "unknown")[:12], bool(environment.get("git_dirty"))


def _revision(path: Path) -> str:
    """The git revision a run was made at (from its config.json; + with local changes)."""
    try:
        environment = read_json(path / "config.json").get("environment", {})
    except (OSError, ValueError):
        return "unknown"
    revision, dirty = _revision_of(environment)
    return revision + ("+" if dirty else "")


def column_times(records: list[dict]) -> str:
    """Each column's total wall and CPU minutes over its runs (made one after another)."""
    parts = []
    for column in dict.fromkeys(r["column"] for r in records):
        runs = [r for r in records if r["column"] == column and r["wall_seconds"] is not None]
        wall, cpu = (sum(r[k] or 0.0 for r in runs) / 60 for k in ("wall_seconds", "cpu_seconds"))
        name = "MNIST-1D / synthetic" if column == BASE else column
        parts.append(f"{name} {wall:.1f} min ({cpu:.1f} CPU min, {len(runs)} runs)")
    return ", ".join(parts)


def collect(out: Path, experiments: list) -> list[dict]:
    """One record per (experiment, dataset column) that has a run in `out`."""
    records, state = [], read_times(out)
    for experiment in experiments:
        for dataset in (BASE, *experiment.datasets):
            path = run_dir(out, experiment, dataset)
            summary = _summary(path)
            entry = state.get(path.name, {})
            if summary is None and "exit" not in entry:
                continue
            records.append({
                "experiment": experiment.name, "paper": experiment.paper, "column": dataset,
                "revision": _revision(path),
                "dataset": (summary or {}).get("config", {}).get("dataset", dataset),
                "seeds": len((summary or {}).get("seeds", [])), "quick": bool((summary or {}).get("quick")),
                "wall_seconds": entry.get("wall_seconds"), "cpu_seconds": entry.get("cpu_seconds"),
                "exit": entry.get("exit", 0),
                "claims": (summary or {}).get("claims", [])})
    return records


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _column_cells(record: dict | None, index: int) -> list[str]:
    if record is None:
        return ["not run", "", "", ""]
    if index >= len(record["claims"]):
        return [f"failed (exit {record['exit']})" if record["exit"] else "missing", "", "", ""]
    claim = record["claims"][index]
    effects = "; ".join(effect_text(e) for e in claim.get("effects") or []) or "—"
    minutes = "" if record["wall_seconds"] is None else f"{record['wall_seconds'] / 60:.1f} min"
    if record.get("cpu_seconds") is not None:
        minutes += f" ({record['cpu_seconds'] / 60:.1f} CPU)"
    return [f"**{claim['verdict']}**", _cell(effects), str(record["seeds"]), minutes]


def table(records: list[dict]) -> list[str]:
    """The Markdown table: one row per claim, each dataset column's verdict, effects, seeds, time
    (wall minutes, and CPU minutes of the run's process, which other load does not inflate)."""
    columns = [BASE] + sorted({r["column"] for r in records} - {BASE})
    by_key = {(r["experiment"], r["column"]): r for r in records}
    head = ["claim", "paper", "experiment"]
    for column in columns:
        name = "MNIST-1D / synthetic" if column == BASE else column
        head += [f"{name}: verdict", "effects, 95% interval", "seeds", "time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = []
    for experiment in dict.fromkeys(r["experiment"] for r in records):
        reference = max((by_key.get((experiment, c)) for c in columns),
                        key=lambda r: len(r["claims"]) if r else -1)
        for index, claim in enumerate(reference["claims"]):
            cells = [f"{claim['id']}: {_cell(claim['claim'])}", _cell(reference["paper"]), experiment]
            for column in columns:
                cells += _column_cells(by_key.get((experiment, column)), index)
            rows.append((claim_sort_key(claim["id"]), "| " + " | ".join(cells) + " |"))
    return lines + [row for _, row in sorted(rows, key=lambda r: r[0])]


def write(out: Path, records: list[dict]) -> str:
    """Writes OUT/REPRODUCE.md and OUT/reproduce.json; returns the Markdown."""
    from dlfound.environment import environment_info

    claims = [c for r in records for c in r["claims"]]
    counts = ", ".join(f"{n} {v}" for v, n in count_verdicts(claims).items())
    revision, dirty = _revision_of(environment_info())
    revision += " (with local changes)" if dirty else ""
    quick = " Quick runs: tiny budgets, verdicts not meaningful." if any(r["quick"] for r in records) else ""
    made = ", ".join(f"{rev} ({n})" for rev, n in Counter(r["revision"] for r in records).most_common())
    text = "\n".join([
        "# Reproduction of every claim", "",
        f"{len(claims)} verdicts from {len(records)} runs: {counts}. Time per column, runs one after "
        f"another: {column_times(records)}. Runs made at revision (runs): {made} (+: with local "
        f"changes); table written at {revision}.{quick}", "",
        "A verdict is *reproduced* when the 95% paired-bootstrap interval over seeds of every judged "
        "quantity clears its criterion, *not reproduced* when one excludes it, *inconclusive* "
        "otherwise (dlfound.stats.paired_bootstrap).", "", *table(records), ""])
    write_json_atomic(out / STATE_FILE, {"revision": revision, "runs": records})
    write_bytes_atomic(out / TABLE_FILE, text.encode())
    return text


def update_readme(readme: Path, markdown: str) -> None:
    """Replaces the claims table between README's markers with the table in `markdown`."""
    text = readme.read_text(encoding="utf-8")
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ConfigError(f"{str(readme)!r} has no claims-table markers; add the lines {README_BEGIN!r} "
                          f"and {README_END!r} where the table goes")
    lines = markdown.splitlines()
    summary = next(line for line in lines if "verdicts from" in line)
    method = next(line for line in lines if line.startswith("A verdict"))
    rows = [line for line in lines if line.startswith("|")]
    new = "\n".join([README_BEGIN, summary, "", method, "", *rows, README_END])
    write_bytes_atomic(readme, (text[:begin] + new + text[end + len(README_END):]).encode())


def main(out: str, only: str | None, datasets: list[str], quick: bool, readme: str | None) -> int:
    """Runs the selected experiments on the chosen columns, then writes the table; the exit status."""
    experiments = select(declared(), only)
    columns = datasets or [BASE]
    for column in columns:
        offered = sorted({d for e in experiments for d in e.datasets})
        if column != BASE and column not in offered:
            raise ConfigError(f"invalid --dataset {column!r}; valid: {BASE} (each experiment's own "
                              f"dataset) or one the experiments declare: {', '.join(offered) or 'none'}")
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    failed = 0
    for column in columns:
        for experiment in experiments:
            if column == BASE or column in experiment.datasets:
                failed += run_one(path, experiment, column, quick) != 0
                write(path, collect(path, declared()))  # the table grows as runs finish
    text = write(path, collect(path, declared()))
    if readme:
        update_readme(Path(readme), text)
    print(path / TABLE_FILE)
    return 1 if failed else 0
