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




def __getattr__(name: str):
    """retrieve and retrieve_by_image load torch and faiss: imported on first use only."""
    if name in ("retrieve", "retrieve_by_image"):
        from skyscript_db import retrieval

        return getattr(retrieval, name)
    raise AttributeError(f"module 'skyscript_db' has no attribute {name!r}")


__all__ = ["BuildConfig", "build", "caption", "connect", "retrieve", "retrieve_by_image", "sql",
           "__version__"]
__version__ = "0.1.0"
