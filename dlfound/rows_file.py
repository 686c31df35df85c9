"""results.jsonl, read back: rows grouped into finished blocks by their done markers.

Each block is the rows of one cell's seeds trained together, followed by a marker row
{"cell", "_done": true, "rows": count, "identity"}; rows after the last marker (a killed
run's torn block) are not finished and are dropped.
"""

from __future__ import annotations

import json

from dlfound.files import from_jsonable

DONE_KEY = "_done"


def parse_line(line: bytes):
    try:
        row = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return from_jsonable(row) if isinstance(row, dict) and "cell" in row else None


def block_seeds(marker: dict):
    """The seeds a finished block trained (from its identity), None for a block that does not say."""
    seeds = (marker.get("identity") or {}).get("seeds") if isinstance(marker.get("identity"), dict) else None
    return tuple(seeds) if isinstance(seeds, list) else None


def finished_blocks(lines: list[bytes]) -> tuple[dict[tuple, list[bytes]], list[bytes]]:
    """Groups complete lines into finished blocks, keyed by (cell, seeds) (raw lines, marker last),
    and the lines kept. A cell has one block per set of seeds trained together."""
    pending: dict[str, list[bytes]] = {}
    finished: dict[tuple, list[bytes]] = {}
    for line in lines:
        row = parse_line(line)
        if row is None:
            continue
        cell = str(row["cell"])
        if not row.get(DONE_KEY):
            pending.setdefault(cell, []).append(line)
            continue
        count = row.get("rows")
        block = pending.pop(cell, [])
        if isinstance(count, int):
            if len(block) < count:
                continue
            block = block[len(block) - count:]
        key = (cell, block_seeds(row))
        if key not in finished:
            finished[key] = block + [line]
    kept = [line for block in finished.values() for line in block]
    return finished, kept
