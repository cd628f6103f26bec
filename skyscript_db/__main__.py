from skyscript_db.cli import run

if __name__ == "__main__":
    run()
