"""skyscript-db: SkyScript-style image-text datasets from OpenStreetMap, in one DuckDB database.

    >>> import skyscript_db
    >>> con = skyscript_db.connect()          # in memory, spatial extension loaded
    >>> con.execute("select st_astext(st_point(24.94, 60.17))").fetchone()[0]
    'POINT (24.94 60.17)'
"""

from skyscript_db.captions import caption
from skyscript_db.config import BuildConfig
from skyscript_db.db import connect
from skyscript_db.pipeline import build
from skyscript_db.readonly import sql

__all__ = ["BuildConfig", "build", "caption", "connect", "sql", "__version__"]
__version__ = "0.1.0"
