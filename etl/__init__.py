"""The stages that move data: ingest, the tag classifier, imagery fetching, embedding, the index,
export and the benchmark set, each one `Stage` (stage.py), run in order by pipeline.py.

This folder is installed as `skyscript_db.etl` (pyproject.toml's package-dir), so
`from skyscript_db.etl import pipeline` reads `etl/pipeline.py`; it imports the library
(`skyscript_db.*`) and never the CLI.
"""
