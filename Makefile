# `make run` and `make test` set everything up on a fresh clone, then do their job.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned, so that nothing below pulls a multi-gigabyte CUDA build.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m service

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/decode.py
	$(PY) bench/indexing.py
	$(PY) bench/search.py
	$(PY) bench/retrieval_quality.py
	$(PY) bench/evidence_format.py
	$(PY) bench/answer_quality.py

clean:
	rm -rf $(VENV) index_data/*.sqlite3* index_data/*.faiss index_data/hf_cache
