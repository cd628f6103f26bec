"""The pipeline SQL, one file per stage; installed as the data package skyscript_db._sql."""
