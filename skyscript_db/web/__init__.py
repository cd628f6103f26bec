"""`skyscript-db serve`: a web page to look at a dataset (search, pairs, overview, SQL console),
served from the database alone, read-only. `Dataset` reads; `create_app` serves it."""
