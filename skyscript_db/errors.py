"""Documented exceptions. Every message names the bad input and says how to fix it."""


class SkyscriptError(Exception):
    """Base class of every error this package raises on purpose."""


class ExtensionError(SkyscriptError):
    """The DuckDB spatial extension could not be loaded from its PyPI wheel."""


class InputError(SkyscriptError):
    """An input file is missing, unreadable or not what it claims to be."""


class SqlFileError(SkyscriptError):
    """A file under sql/ is malformed (reported with file and line)."""


class ReadOnlyViolation(SkyscriptError):
    """A statement given to the read-only SQL entry points would change something."""


class DatabaseError(SkyscriptError):
    """The database is missing or lacks the tables a command needs."""
