"""The one error type of configuration problems."""


class ConfigError(ValueError):
    """Bad option, value or preset: main prints the message and exits with status 2."""
