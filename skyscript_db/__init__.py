"""skyscript-db: SkyScript-style image-text datasets from OpenStreetMap, in one DuckDB database.

The library a user imports: `connect`, read-only `sql`, `build`, `retrieve`, `caption`,
`export_objects` (GeoParquet), the model
factory (`skyscript_db.models`), options (`skyscript_db.config`) and errors; the CLI sits on top.
`build` runs the stages of `skyscript_db.etl` (the top-level `etl/` folder of the source tree).

    >>> import skyscript_db
    >>> con = skyscript_db.connect()          # in memory, spatial extension loaded
    >>> con.execute("select st_astext(st_point(24.94, 60.17))").fetchone()[0]
    'POINT (24.94 60.17)'
"""

from skyscript_db.captions import caption
from skyscript_db.config import (BuildConfig, ClusterConfig, EmbedConfig, ExportConfig,
                                 FetchConfig, IndexConfig, IngestConfig)
from skyscript_db.db import connect
from skyscript_db.objects import export_objects
from skyscript_db.readonly import sql

# Loaded on first use: retrieve needs torch and faiss, build every stage of the pipeline.
_LAZY = {"retrieve": "skyscript_db.retrieval", "retrieve_by_image": "skyscript_db.retrieval",
         "build": "skyscript_db.etl.pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skyscript_db' has no attribute {name!r}")


__all__ = ["BuildConfig", "ClusterConfig", "EmbedConfig", "ExportConfig", "FetchConfig",
           "IndexConfig", "IngestConfig", "build", "caption", "connect", "export_objects",
           "retrieve", "retrieve_by_image", "sql", "__version__"]
__version__ = "0.1.0"
