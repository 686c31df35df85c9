"""What ran where: package versions, backend and devices, git revision, host, command and time."""

from __future__ import annotations

import datetime
import platform
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np


def _git_revision() -> tuple[str | None, bool | None]:
    """HEAD of the repository holding this package, and whether its tree has changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                             check=False)
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        top = git("rev-parse", "--show-toplevel")
        if top is None or Path(top).resolve() != root:
            return None, None
        status = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "HEAD"), (None if status is None else bool(status))
    except (OSError, subprocess.SubprocessError):
        return None, None


def environment_info() -> dict:
    """Versions, backend, devices, git revision, host, command line and UTC time of this process."""
    import flax
    import jax
    import jaxlib
    import optax

    devices = jax.devices()
    revision, dirty = _git_revision()
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "backend": jax.default_backend(),
        "device_count": len(devices),
        "device_kinds": sorted({d.device_kind for d in devices}),
        "process_count": jax.process_count(),
        "default_matmul_precision": jax.config.jax_default_matmul_precision,
        "git_revision": revision,
        "git_dirty": dirty,
        "hostname": socket.gethostname(),
        "command": [sys.executable, *sys.argv],
        "utc_time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
