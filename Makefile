# Two set-up commands that work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-all bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## annotate the bundled sample notes with the default pipeline into out/
run: install
	$(VENV)/bin/notes2fhir annotate corpora/samples -o out/samples.fhir.ndjson --format fhir --table
	$(VENV)/bin/notes2fhir annotate corpora/samples -o out/samples.records.ndjson --format record --quiet > /dev/null

## the test suite (slow tests included; a few minutes on 2 cores)
test: install
	$(PY) -m pytest -q

## load time and words/s on the sample notes (README figures)
bench: install
	$(VENV)/bin/notes2fhir bench

lint: install
	$(VENV)/bin/ruff check nlp service corpora tests
	$(VENV)/bin/mypy nlp

clean:
	rm -rf $(VENV) out .pytest_cache
