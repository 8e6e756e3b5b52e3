# Two set-up commands that work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test bench bench-service bench-batch evaluate evaluate-assertion evaluate-adr evaluate-notes train-ner train-ner-transformer train-ade-tagger train-adr train-cid evaluate-literature lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,train,service,spark]"
	touch $(STAMP)

install: $(STAMP)

## annotate the bundled sample notes with the default pipeline into out/samples-fhir and out/samples-records
## (each a batch output directory: part-*.ndjson, errors.ndjson, manifest.json; rerunning starts afresh)
run: install
	rm -rf out/samples-fhir out/samples-records
	$(VENV)/bin/notes2fhir annotate corpora/samples -o out/samples-fhir --format fhir --table
	$(VENV)/bin/notes2fhir annotate corpora/samples -o out/samples-records --format record --quiet > /dev/null

## the test suite (slow tests included; a few minutes on 2 cores)
test: install
	$(PY) -m pytest -q

## load time and words/s on the sample notes (README figures)
bench: install
	$(VENV)/bin/notes2fhir bench

## the HTTP service under load: library vs service latency, 1 vs 2 workers, shedding, a 10-minute
## memory soak (README "HTTP service" figures; about 20 minutes)
bench-service: install
	$(PY) -m service.loadbench --output out/loadbench.json

## batch throughput on all of MTSamples: the runner with 1 and 2 workers (notes/s and words/s per core,
## peak memory per worker, core-hours for 10 M notes), plain medspaCy and Spark local[2] in the same run
## (README "Batch" figures; Spark needs the spark extra)
bench-batch: install
	$(PY) -m nlp.batch_benchmark --output out/batchbench.json

## P/R/F1 on the official test splits (README results table); writes out/eval/*.json
EVAL_CORPORA ?= bc5cdr ncbi_disease chia
EVAL_PIPELINES ?= lexicon fast accurate
evaluate: install
	for c in $(EVAL_CORPORA); do for p in $(EVAL_PIPELINES); do \
	  $(VENV)/bin/notes2fhir evaluate $$c --split test --pipeline $$p || exit 1; done; done

## adverse drug reaction scores (README "Adverse drug reactions" table): note cases with the default
## pipeline, the literature corpora with the literature pipeline
ADR_NOTE_CASES ?= $(wildcard tests/fixtures/adr/*.jsonl)
ADR_CORPORA ?= ade_corpus_v2 phee tac2017_adr
evaluate-adr: install
	for s in $(ADR_NOTE_CASES); do \
	  $(VENV)/bin/notes2fhir evaluate $$s --task adr --pipeline fast || exit 1; done
	for s in $(ADR_CORPORA); do \
	  $(VENV)/bin/notes2fhir evaluate $$s --task adr --split test --pipeline literature || exit 1; done

## medication and risk-factor scores on the project's note case sets (README tables)
evaluate-notes: install
	for s in $(wildcard tests/fixtures/medication/*.jsonl); do \
	  $(VENV)/bin/notes2fhir evaluate $$s --task medication --pipeline fast || exit 1; done
	for s in $(wildcard tests/fixtures/risk/*.jsonl); do \
	  $(VENV)/bin/notes2fhir evaluate $$s --task risk --pipeline fast || exit 1; done

## assertion scores (README "Assertion" table): the project's case sets and the public corpora
ASSERTION_SOURCES ?= $(wildcard tests/fixtures/assertion/*.jsonl) bioscope chia phee
evaluate-assertion: install
	for s in $(ASSERTION_SOURCES); do \
	  $(VENV)/bin/notes2fhir evaluate $$s --task assertion --split test --pipeline lexicon || exit 1; done

## retrain the shipped models (single-threaded and seeded; see models/README.md):
## a selection run picks the epoch count on validation, the final run trains on train + validation
train-ner: install
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/notes2fhir -v train ner --arch cnn --out out/ner-cnn-selection
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/notes2fhir -v train ner --arch cnn --out models/ner-cnn \
	  --final-epochs 6 --mention-precision 0.8172

## the drug -> adverse reaction pair classifier (models/adr-minilm; about 30 minutes on one core)
train-adr: install
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/python -m nlp.train.relation train --out models/adr-minilm

## the literature tool's MeSH gazetteer (BC5CDR train + validation mentions, DisMaNET names) and its
## abstract-level pair model (trained with a train-only gazetteer; threshold chosen on validation)
train-cid: install
	$(PY) -m nlp.train.mesh_gazetteer --out models/mesh-cdr
	$(PY) -m nlp.train.mesh_gazetteer --splits train --out out/mesh-train
	OMP_NUM_THREADS=1 $(PY) -m nlp.train.cid_pairs --gazetteer out/mesh-train --out models/cid-pairs

## CID pairs on the BC5CDR test split and the 1,000-abstract summary benchmark (README "Literature")
evaluate-literature: install
	$(VENV)/bin/notes2fhir evaluate bc5cdr-cid --split test --workers 2
	$(PY) -m nlp.literature.benchmark --abstracts 1000 --workers 2 --output out/literature-bench.json

train-ner-transformer: install
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/notes2fhir -v train ner --arch transformer --out models/ner-minilm

## the literature pipeline's ADE tagger (models/ade-minilm): a selection run on the train split (3 epochs,
## validation scored after each), then the final run on train + validation for the 3 epochs it chose
## (about 25 minutes each on one core)
train-ade-tagger: install
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/notes2fhir -v train ner --arch transformer \
	  --corpora ade_corpus_v2 --exhaustive --epochs 3 --out out/ade-minilm-selection
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/notes2fhir -v train ner --arch transformer \
	  --corpora ade_corpus_v2 --exhaustive --final-epochs 3 --out models/ade-minilm

lint: install
	$(VENV)/bin/ruff check nlp service corpora tests
	$(VENV)/bin/mypy nlp

clean:
	rm -rf $(VENV) out .pytest_cache
