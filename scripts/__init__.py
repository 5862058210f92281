"""Offline work no request runs: the evaluation harness the benchmarks share, and the learned
unit's training (`python -m scripts.train_unit`)."""
