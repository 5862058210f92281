# `make run` and `make test` set everything up on a fresh clone, then do their job.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

CHROMIUM ?= /usr/bin/chromium

.PHONY: setup browser run test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned, so that nothing below pulls a multi-gigabyte CUDA build.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m service

# The chat page's browser test uses Debian's chromium; install it when it is missing.
browser:
	@test -x $(CHROMIUM) || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

test: setup browser
	$(PY) -m pytest

bench: setup
	$(PY) bench/decode.py
	$(PY) bench/indexing.py
	$(PY) bench/search.py
	$(PY) bench/retrieval_quality.py
	$(PY) bench/evidence_format.py
	$(PY) bench/answer_quality.py
	$(PY) bench/follow_ups.py
	$(PY) bench/concurrency.py
	$(PY) bench/load.py
	$(PY) bench/fuzz.py

clean:
	rm -rf $(VENV) index_data/*.sqlite3* index_data/*.faiss index_data/hf_cache
