"""Data errors: both are ConfigErrors, so the command line shows their message without a traceback."""

from __future__ import annotations

from dlfound.errors import ConfigError


class DatasetUnavailable(ConfigError):
    """The files a dataset needs are not on this machine and could not be downloaded."""


class DataIntegrityError(ConfigError):
    """A data file fails its checksum or structure check (corrupted, truncated or a different file)."""
