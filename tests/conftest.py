"""Test-wide settings: two XLA CPU devices, so every ensemble runs the sharded path."""

import os

os.environ.setdefault("DLFOUND_CPU_DEVICES", "2")

from dlfound import runtime  # noqa: E402

runtime.configure()
