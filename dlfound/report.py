"""Markdown reports: one per run directory, and one index over many runs listing every claim."""

from __future__ import annotations

from pathlib import Path

from dlfound.errors import ConfigError
from dlfound.results import read_json

SUMMARY = "summary.json"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_table(rows: list[tuple[str, dict]]) -> list[str]:
    """Markdown table of (experiment, claim) pairs sorted by claim id."""
    lines = ["| id | experiment | claim | verdict | evidence |", "|---|---|---|---|---|"]
    for experiment, claim in sorted(rows, key=lambda r: (r[1].get("id", ""), r[0])):
        lines.append(f"| {claim.get('id', '')} | {experiment} | {_cell(claim.get('claim', ''))} | "
                     f"**{claim.get('verdict', '')}** | {_cell(claim.get('evidence', ''))} |")
    return lines


def _metrics_lines(metrics: dict, prefix: str = "") -> list[str]:
    lines = []
    for key, value in metrics.items():
        if isinstance(value, dict) and not {"mean", "std"} <= set(value):
            lines += _metrics_lines(value, f"{prefix}{key}.")
        elif isinstance(value, dict):
            lines.append(f"- `{prefix}{key}`: {value['mean']:.4g} ± {value['std']:.4g} (n={value.get('n')})")
        else:
            lines.append(f"- `{prefix}{key}`: {value}")
    return lines


def render_report(run_dir) -> str:
    """Writes REPORT.md for one run directory from its summary.json; returns the text."""
    path = Path(run_dir)
    if not (path / SUMMARY).is_file():
        raise ConfigError(f"{str(path)!r} has no {SUMMARY}; is it a finished dlfound run directory?")
    summary = read_json(path / SUMMARY)
    name = summary.get("experiment", path.name)
    lines = [f"# {name}", ""]
    if summary.get("quick"):
        lines += ["*Quick run: tiny budget, verdicts not meaningful.*", ""]
    lines += ["## Claims", "", *claims_table([(name, c) for c in summary.get("claims", [])]), ""]
    lines += ["## Metrics", "", *_metrics_lines(summary.get("metrics", {})), ""]
    lines += ["## Config", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in summary.get("config", {}).items()]
    lines += ["", f"Seeds: {summary.get('seeds')}", ""]
    for png in sorted(path.glob("*.png")):
        lines += [f"![{png.stem}]({png.name})", ""]
    text = "\n".join(lines)
    (path / "REPORT.md").write_text(text)
    return text


def find_runs(root) -> list[Path]:
    """Run directories at or below `root` (those holding a summary.json)."""
    root = Path(root)
    if (root / SUMMARY).is_file():
        return [root]
    return sorted(p.parent for p in root.rglob(SUMMARY))


def render_index(root) -> Path:
    """Writes REPORT.md at `root` with every claim of every run below it; returns its path."""
    runs = find_runs(root)
    if not runs:
        raise ConfigError(f"no dlfound runs (summary.json) found under {str(root)!r}")
    rows, links = [], []
    for run in runs:
        summary = read_json(run / SUMMARY)
        render_report(run)
        name = summary.get("experiment", run.name) + (" (quick)" if summary.get("quick") else "")
        rows += [(name, c) for c in summary.get("claims", [])]
        links.append(f"- [{name}]({run.relative_to(root) / 'REPORT.md'})" if run != Path(root) else f"- {name}")
    text = "\n".join(["# dlfound claims", "", *claims_table(rows), "", "## Runs", "", *links, ""])
    out = Path(root) / ("INDEX.md" if (Path(root) / SUMMARY).is_file() else "REPORT.md")
    out.write_text(text)
    return out
