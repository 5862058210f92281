"""The CPU features the embedder and the benchmarks go by, as the kernels' own libraries see them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.cpu_features import _from_proc, cpu_features

REPO = Path(__file__).resolve().parents[2]
x86_only = pytest.mark.skipif(platform.machine() != "x86_64", reason="cpuid is an x86-64 instruction")

PROBE = (
    "import json; from retrieval.cpu_features import cpu_features; "
    "from numpy._core._multiarray_umath import __cpu_features__ as numpy_sees; "
    "print(json.dumps({'flags': sorted(cpu_features().flags), 'numpy_avx512f': numpy_sees['AVX512F']}))"
)


@x86_only
def test_cpuid_agrees_with_the_kernel_on_this_machine() -> None:
    read = cpu_features()
    assert read.source == "cpuid" and read.model
    assert read.flags <= _from_proc().flags
    if not os.environ.get("RAGPAUSE_CPU_VIEW"):  # bench/cpu_view hides features from cpuid only
        assert read.flags == _from_proc().flags
    assert "avx2" in read.flags  # every machine this project supports has AVX2 or says so below
    assert read.int8_dot_product == bool({"avx512_vnni", "avx_vnni", "amx_int8"} & read.flags)


@x86_only
def test_the_avx2_view_hides_avx512_from_us_and_from_numpy_alike() -> None:
    if "cpuid_fault" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("this CPU cannot make cpuid fault, so bench/cpu_view cannot run here")
    run = subprocess.run(
        [str(REPO / "bench" / "cpu_view" / "as-avx2"), sys.executable, "-X", "faulthandler", "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert "avx2" in seen["flags"] and "fma" in seen["flags"]
    assert not {"avx512f", "avx512_vnni", "avx_vnni", "amx_int8"} & set(seen["flags"])
    assert seen["numpy_avx512f"] is False  # NumPy chose its kernels from the same answer
    # A real fault still reaches the program's own handler (faulthandler prints the stack).
    crash = subprocess.run(
        [
            str(REPO / "bench" / "cpu_view" / "as-avx2"),
            sys.executable,
            "-X",
            "faulthandler",
            "-c",
            "import ctypes; ctypes.string_at(0)",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert crash.returncode != 0 and "Fatal Python error: Segmentation fault" in crash.stderr
