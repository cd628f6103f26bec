from skyscript_db.cli import app

if __name__ == "__main__":
    app(prog_name="skyscript-db")
