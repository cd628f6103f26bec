"""Every exception this package raises on purpose. Each message names the bad input and says how
to fix it; the CLI prints a SkyscriptError as one line and exits 1, never with a traceback."""


class SkyscriptError(Exception):
    """Base class of every error this package raises on purpose."""


class ExtensionError(SkyscriptError):
    """The DuckDB spatial extension could not be loaded from its PyPI wheel."""


class InputError(SkyscriptError):
    """An input (a file, a value given to a function) is missing, unreadable or not what it claims
    to be."""


class SqlFileError(SkyscriptError):
    """A file under sql/ is malformed (reported with file and line)."""


class ReadOnlyViolation(SkyscriptError):
    """A statement given to the read-only SQL entry points would change something."""


class DatabaseError(SkyscriptError):
    """The database is missing or lacks the tables a command needs."""


class ConfigError(SkyscriptError):
    """An option is out of range or names something that does not exist."""


class NotFound(SkyscriptError):
    """Something asked for by id or path (a pair, an image) is not in the database."""


class QueryTimeout(SkyscriptError):
    """A read-only query ran past its time limit and was stopped."""


class LabelError(SkyscriptError):
    """The labelled tag set breaks the guideline's form."""


class ExportError(SkyscriptError):
    """The export cannot run as asked."""


class EvalError(SkyscriptError):
    """The evaluation data cannot give a meaningful number."""


class TrainError(SkyscriptError):
    """Training cannot start as asked."""


class SourceUnavailable(SkyscriptError):
    """An imagery source cannot work at all (no Earth Engine account, an unreachable catalogue,
    an unreadable raster): its requests are left untouched for a later run."""


class NoCoverage(Exception):
    """An imagery source has no imagery for a request's bounds: final, not retried, recorded as
    the request's status (not a SkyscriptError: it never reaches the user as an error)."""


class TransientError(Exception):
    """An imagery failure worth retrying: a 5xx answer, a timeout, a dropped connection, a quota."""
