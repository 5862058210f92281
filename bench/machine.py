"""The machine a benchmark ran on, written into every bench/results/*.json: a speed figure
holds for one kind of CPU (VNNI or not, AVX-512 or not) and one llama.cpp build."""

from __future__ import annotations

import os


def machine_report() -> dict:
    from retrieval.cpu_features import cpu_features

    report: dict = {"cpu": cpu_features().as_dict(), "cores": os.cpu_count()}
    try:
        from service.generator import llama_build

        report["llama_cpp"] = llama_build.describe()
    except ImportError:
        pass
    if os.environ.get("RAGPAUSE_CPU_VIEW"):
        report["cpu_view"] = os.environ["RAGPAUSE_CPU_VIEW"]  # bench/cpu_view/as-avx2 hid features
    return report
