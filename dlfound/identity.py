"""What determines a finished cell's results, so a resume reuses only cells trained on the same inputs.

A cell's identity is its config, its seeds and vmapped values, a digest of its data, and the
versions of the packages whose arithmetic it ran. It is stored with the cell's rows
(`RunDir.append_cells`); a re-run whose identity differs is refused with the differing fields
named, instead of silently returning results of other inputs.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata

import numpy as np

PACKAGES = ("dlfound", "jax", "jaxlib", "flax", "optax", "numpy")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages whose code computes a result ("absent" if not installed)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def data_digest(data) -> str:
    """sha256 (16 hex digits) over the name, class count and every split's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{data.name}|{data.num_classes}".encode())
    for split in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        value = np.ascontiguousarray(getattr(data, split))
        digest.update(f"|{split}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.reshape(-1).view(np.uint8))
    return digest.hexdigest()[:16]


def cell_identity(config: dict, seeds, members, data_hash: str, versions: dict) -> dict:
    """The identity stored with a block of a cell: config fields in full, the seeds it trained, and
    its vmapped values (each seed's, seed-major) as a digest."""
    seeds = [int(s) for s in seeds]
    first = members[: len(members) // max(len(set(seeds)), 1)]  # members are seed-major
    per_seed = [{k: float(v) for k, v in m.items()} for m in first]
    return {"config": config, "members": hashlib.sha256(json.dumps(per_seed).encode()).hexdigest()[:16],
            "seeds": sorted(set(seeds), key=seeds.index), "data": data_hash, "versions": versions}


def differences(stored, current: dict) -> list[str]:
    """`field is A there, B now` for each differing field (config and versions by name); seeds
    are not compared (a block of other seeds is simply not the one asked for)."""
    if not isinstance(stored, dict):
        return ["it was written without an identity (by an older dlfound)"]
    out = []
    for group in ("config", "versions"):
        old, new = stored.get(group) or {}, current[group]
        out += [f"{group}.{k} is {old.get(k, '(absent)')!r} there, {new.get(k, '(absent)')!r} now"
                for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if stored.get("members") != current["members"]:
        out.append("its vmapped values differ")
    if stored.get("data") != current["data"]:
        out.append("its data differ")
    return out
