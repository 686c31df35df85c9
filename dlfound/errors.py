"""The one exception type users see for bad input: a message naming the value and the valid choices."""


class ConfigError(ValueError):
    """Raised for an invalid config value, dataset or command-line flag, before anything compiles."""


def unknown_name(kind: str, name, valid) -> ConfigError:
    """Builds the standard error for a name missing from a registry."""
    choices = ", ".join(sorted(str(v) for v in valid))
    return ConfigError(f"unknown {kind} {name!r}; valid choices: {choices}")
