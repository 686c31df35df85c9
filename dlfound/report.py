"""Markdown reports: one per run directory, and one index over many runs listing every claim."""

from __future__ import annotations

import re
from pathlib import Path

from dlfound.claims import count_verdicts, effect_text, fmt
from dlfound.errors import ConfigError
from dlfound.files import read_json, write_bytes_atomic
from dlfound.results import CONFIG_FILE, SUMMARY_FILE, RunDir

REPORT_FILE = "REPORT.md"
SIGNATURE = "<!-- written by dlfound report: regenerated from summary.json, edits are overwritten -->"
ENVIRONMENT_KEYS = ("python", "jax", "jaxlib", "flax", "optax", "numpy", "backend", "device_count",
                    "device_kinds", "process_count", "git_revision", "git_dirty", "hostname", "utc_time")


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claim_sort_key(claim_id) -> tuple:
    """Natural order of claim ids: F1 < F2 < T2 < T10 < T10a."""
    parts = re.split(r"(\d+)", str(claim_id))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def claims_table(rows: list[tuple[str, dict]]) -> list[str]:
    """Markdown table of (experiment, claim) pairs sorted by claim id."""
    lines = ["| id | experiment | claim | verdict | effects, 95% paired-bootstrap interval | evidence |",
             "|---|---|---|---|---|---|"]
    for experiment, claim in sorted(rows, key=lambda r: (claim_sort_key(r[1].get("id", "")), r[0])):
        effects = "; ".join(effect_text(e) for e in claim.get("effects") or []) or "—"
        cells = [_cell(claim.get("id", "")), _cell(experiment), _cell(claim.get("claim", "")),
                 f"**{claim.get('verdict', '')}**", _cell(effects), _cell(claim.get("evidence", ""))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _verdict_counts(claims: list[dict]) -> str:
    counts = count_verdicts([c for c in claims if "verdict" in c])
    return ", ".join(f"{n} {verdict}" for verdict, n in counts.items())


def _value(value) -> str:
    if isinstance(value, (int, float, list, tuple)) and not isinstance(value, bool):
        return fmt(value)
    return str(value)


def _metrics_lines(metrics: dict, prefix: str = "") -> list[str]:
    lines = []
    for key, value in metrics.items():
        if isinstance(value, dict) and {"mean", "std"} <= set(value):
            lines.append(f"- `{prefix}{key}`: {_value(value['mean'])} ± {_value(value['std'])} "
                         f"(n={value.get('n', '?')})")
        elif isinstance(value, dict):
            lines += _metrics_lines(value, f"{prefix}{key}.")
        else:
            lines.append(f"- `{prefix}{key}`: {_value(value)}")
    return lines


def _environment_lines(path: Path) -> list[str]:
    try:
        environment = read_json(path / CONFIG_FILE).get("environment") or {}
    except (OSError, ValueError, AttributeError):
        return []
    rows = [f"| {key} | {_cell(environment[key])} |" for key in ENVIRONMENT_KEYS if key in environment]
    return ["## Environment", "", "| | |", "|---|---|", *rows, ""] if rows else []


def _read_summary(path: Path) -> dict:
    try:
        summary = read_json(path / SUMMARY_FILE)
    except FileNotFoundError:
        raise ConfigError(f"{str(path)!r} has no {SUMMARY_FILE}; "
                          "is it a finished dlfound run directory?") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{str(path / SUMMARY_FILE)!r} is unreadable ({e})") from None
    if not isinstance(summary, dict):
        raise ConfigError(f"{str(path / SUMMARY_FILE)!r} is not a dlfound summary (not a JSON object)")
    return summary


def _write_owned(path: Path, text: str) -> None:
    """Writes a report file only where dlfound owns the name: it is absent or one dlfound wrote."""
    try:
        with open(path, "rb") as f:
            first = f.readline().decode(errors="replace").strip()
    except FileNotFoundError:
        first = SIGNATURE
    except OSError as e:
        raise ConfigError(f"cannot read {str(path)!r} ({e.strerror or e})") from None
    if first != SIGNATURE:
        raise ConfigError(f"{str(path)!r} exists and was not written by `dlfound report`; "
                          "dlfound leaves it alone: move it away or pass --output FILE")
    write_bytes_atomic(path, text.encode())
    if path.name == REPORT_FILE:
        run = RunDir(path.parent, min_free_bytes=0)
        if run.marker() is not None:
            run.file(REPORT_FILE)  # listed among the run's files, so --overwrite removes it


def render_report(run_dir, output=None) -> str:
    """Writes REPORT.md (or `output`) for one run directory from its summary.json; returns the text."""
    path = Path(run_dir)
    summary = _read_summary(path)
    name = summary.get("experiment", path.name)
    claims = summary.get("claims", [])
    lines = [f"# {name}", ""]
    if summary.get("description"):
        lines += [summary["description"], ""]
    if summary.get("quick"):
        lines += ["*Quick run: tiny budget, verdicts not meaningful.*", ""]
    lines += ["## Claims", "", f"{_verdict_counts(claims)}.", ""]
    lines += [*claims_table([(name, c) for c in claims]), ""]
    criteria = [f"- **{_cell(c.get('id', ''))}**: {_cell(c['criterion'])}"
                for c in claims if c.get("criterion")]
    if criteria:
        lines += ["Criteria:", "", *criteria, ""]
    lines += ["## Metrics", "", *_metrics_lines(summary.get("metrics", {})), ""]
    lines += ["## Config", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in summary.get("config", {}).items()]
    lines += ["", f"Seeds: {summary.get('seeds')}", ""]
    pngs = sorted(path.glob("*.png"))
    if pngs:
        lines += ["## Figures", ""]
        for png in pngs:
            lines += [f"![{png.stem}]({png.name})", ""]
    lines += _environment_lines(path)
    text = "\n".join([SIGNATURE, *lines])
    _write_owned(Path(output) if output else path / REPORT_FILE, text)
    return text


def find_runs(root) -> list[Path]:
    """Run directories at or below `root` (those holding a summary.json)."""
    root = Path(root)
    if (root / SUMMARY_FILE).is_file():
        return [root]
    return sorted(p.parent for p in root.rglob(SUMMARY_FILE))


def render_index(root, output=None) -> tuple[Path, list[str]]:
    """Writes one report over every run at or below `root`, every claim in one table; returns its
    path and one line per run left out (an unreadable summary.json, a REPORT.md dlfound does not own).

    Each run's own REPORT.md is rendered too. The index is `output`, else `root/REPORT.md`, or
    `root/INDEX.md` when `root` is itself a run directory (whose REPORT.md is its own report).
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{str(root)!r} is not a directory; pass a run directory or a directory of them")
    runs = find_runs(root)
    if not runs:
        raise ConfigError(f"no dlfound runs (summary.json) found under {str(root)!r}")
    rows, links, claims, skipped = [], [], [], []
    for run in runs:
        try:
            summary = _read_summary(run)
            render_report(run)
        except ConfigError as err:
            skipped.append(f"skipped {str(run)!r}: {err}")
            links.append(f"- {run.relative_to(root).as_posix()}: left out ({err})")
            continue
        name = summary.get("experiment", run.name) + (" (quick)" if summary.get("quick") else "")
        rows += [(name, c) for c in summary.get("claims", [])]
        claims += summary.get("claims", [])
        links.append(f"- [{name}]({(run.relative_to(root) / REPORT_FILE).as_posix()})")
    counts = f"{len(runs) - len(skipped)} runs: {_verdict_counts(claims)}."
    text = "\n".join([SIGNATURE, "# dlfound claims", "", counts, "", *claims_table(rows), "", "## Runs", "",
                      *links, ""])
    out = Path(output) if output else root / ("INDEX.md" if (root / SUMMARY_FILE).is_file() else REPORT_FILE)
    _write_owned(out, text)
    return out, skipped
