"""The method's rules: one SQL file per stage, seed CSVs and the tables' contracts; installed as
the data package skyscript_db._sql and read through skyscript_db.queries."""
