"""The pinned llama.cpp build computes the same tokens and logits on every machine that runs it.

The reference files were written by the same build on the project's machine
(tests/service/greedy_reference.py); a machine whose CPU differs (AVX2 without AVX-512, say)
runs the very same instructions, so it must reproduce them bit for bit.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from service.generator import llama_build
from tests.service.greedy_reference import path_for, record

pytestmark = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="references are recorded for the x86-64 baselines only"
)

# In 64-bit code, an instruction whose opcode starts with 0x62 is EVEX (AVX-512) and one that
# starts with 0xC4/0xC5 is VEX (AVX, AVX2, FMA, F16C, BMI2); 0x67 may precede either. objdump
# prints "address: bytes<TAB>mnemonic" (a long instruction's further bytes follow on lines
# without a mnemonic, which these patterns skip).
_EVEX = re.compile(r"^\s*[0-9a-f]+:\t(67 )?62 [0-9a-f ]*\t\S")
_VEX = re.compile(r"^\s*[0-9a-f]+:\t(67 )?c[45] [0-9a-f ]*\t\S")
_AMX = re.compile(r"^\s*[0-9a-f]+:\t.*%tmm[0-7]")  # AMX's tile registers
FORBIDDEN = {"x86-64-v2": [_VEX, _EVEX, _AMX], "x86-64-v3": [_EVEX, _AMX], "x86-64-v4": [_AMX]}


def test_llama_cpp_is_built_for_a_named_baseline() -> None:
    assert llama_build.baseline() is not None, llama_build.describe()


def test_the_library_holds_no_instruction_beyond_its_baseline() -> None:
    import llama_cpp

    name = llama_build.baseline()
    assert name is not None, llama_build.describe()
    assert shutil.which("objdump"), "objdump (binutils) reads the library's instructions"
    forbidden = FORBIDDEN[name]
    libraries = sorted({lib.resolve() for lib in (Path(llama_cpp.__file__).parent / "lib").glob("*.so*")})
    assert any("ggml-cpu" in lib.name for lib in libraries), libraries
    for lib in libraries:
        listing = subprocess.run(["objdump", "-d", str(lib)], capture_output=True, text=True, check=True).stdout
        found = [line for line in listing.splitlines() if any(p.match(line) for p in forbidden)]
        assert not found, f"{lib.name} ({name}) holds {len(found)} instructions beyond its baseline, e.g. {found[:3]}"


def test_greedy_tokens_and_logits_match_the_reference(llama_backend) -> None:
    name = llama_build.baseline()
    assert name is not None, llama_build.describe()
    reference = json.loads(path_for(name).read_text())
    fresh = record(llama_backend)
    assert fresh["model"] == reference["model"] and fresh["llama_cpp_python"] == reference["llama_cpp_python"]
    for want, got in zip(reference["prompts"], fresh["prompts"], strict=True):
        assert got["tokens"] == want["tokens"], (
            f"{want['user'][:60]!r}: greedy answer {got['text']!r} differs from the reference "
            f"{want['text']!r} (first step top 5 now {got['first_top5']}, then {want['first_top5']})"
        )
        assert got["logits_sha256"] == want["logits_sha256"], (
            f"{want['user'][:60]!r}: the same tokens, but the logits are not bit-identical "
            f"(first step top 5 now {got['first_top5']}, then {want['first_top5']})"
        )
