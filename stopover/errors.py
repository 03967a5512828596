"""The error types stopover raises for bad input.

Every user-facing problem (malformed file, unknown task or language, invalid
config, missing column, ...) raises a subclass of `StopoverError` whose message
is one line naming the file/field/value and the fix. The CLI prints that line
and exits non-zero; a traceback is shown only with `--debug`.
"""


class StopoverError(Exception):
    """Base class: a problem the user can fix; str(err) is the one-line message."""


class ConfigError(StopoverError):
    """An invalid config: unknown key, wrong type or value."""


class TaskError(StopoverError):
    """An unknown task, or a task used in a way it does not support."""


class LanguageError(StopoverError):
    """An unknown or ambiguous language code, or a language a task lacks."""


class DataError(StopoverError):
    """A malformed, missing or inconsistent data file or split."""


class ModelError(StopoverError):
    """A model path/id that is not a model, or corrupt model weights."""


class StorageError(StopoverError):
    """The run directory or a cache cannot be written: disk full, no permission, read-only."""
