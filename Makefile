# `make run` and `make test` set everything up on a fresh clone, then do their job.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium

.PHONY: setup browser run test lint bench clean

# llama.cpp's instruction-set baseline: empty picks x86-64-v3 where the CPU has AVX2, else
# x86-64-v2 (deploy/build_llama_cpp.sh). Never -march=native: see service/generator/llama_build.py.
LLAMA_BASELINE ?=
export LLAMA_BASELINE

$(STAMP): pyproject.toml deploy/build_llama_cpp.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned, so that nothing below pulls a multi-gigabyte CUDA build.
	$(PY) -m pip install torch==2.13.0
	# llama-cpp-python before the rest, built for the baseline, so that pip never builds it natively.
	deploy/build_llama_cpp.sh $(PY)
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

# The second call does nothing unless LLAMA_BASELINE asks for another build than the installed one.
setup: $(STAMP)
	@deploy/build_llama_cpp.sh $(PY)

run: setup
	$(PY) -m service

# The chat page's browser test uses Debian's chromium; install it when it is missing.
browser:
	@test -x $(CHROMIUM) || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

test: setup browser lint
	$(PY) -m pytest

# ruff's lint and formatting check (configured in pyproject.toml); `$(VENV)/bin/ruff format .` fixes the format.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# On an AVX-512 machine, decode.py also times the pinned build against an x86-64-v4 one (what
# pinning costs there), and indexing.py runs again as on an AVX2-only CPU (bench/cpu_view).
BENCH_V4 := .bench/llama-x86-64-v4

bench: setup
	@if grep -qw avx512f /proc/cpuinfo; then LLAMA_TARGET=$(BENCH_V4) deploy/build_llama_cpp.sh $(PY) x86-64-v4; fi
	$(PY) bench/decode.py $$(test -d $(BENCH_V4) && echo --other-build $(BENCH_V4))
	$(PY) bench/indexing.py
	@if grep -qw cpuid_fault /proc/cpuinfo; then \
		bench/cpu_view/as-avx2 $(PY) bench/indexing.py --out bench/results/indexing-avx2.json; fi
	$(PY) bench/system_prompt.py
	$(PY) bench/search.py
	$(PY) bench/gc_pauses.py
	$(PY) bench/retrieval_quality.py
	$(PY) bench/evidence_format.py
	$(PY) bench/answer_quality.py
	$(PY) bench/pause_cost.py
	$(PY) bench/follow_ups.py
	$(PY) bench/concurrency.py
	$(PY) bench/load.py
	$(PY) bench/fuzz.py

clean:
	rm -rf $(VENV) .bench index_data/*.sqlite3* index_data/*.faiss index_data/hf_cache
