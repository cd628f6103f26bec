from skyscript_db.cli import app

app(prog_name="skyscript-db")
