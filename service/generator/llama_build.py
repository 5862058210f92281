"""Which instruction set the loaded llama.cpp library was built for.

A 135M model sits on near ties, and kernels built with `-march=native` round differently on
an AVX-512 machine than on an AVX2 one: the same commit answered "What is the capital of
France?" in English on one machine and in French on another. So `make` builds llama.cpp for a
named baseline (deploy/build_llama_cpp.sh), whose kernels compute the same logits on every
machine that runs it, and this module reads back what the library says it was built with, so
that the service and the tests can tell a pinned build from a machine-specific one.

`python -m service.generator.llama_build --expect x86-64-v3` checks an installed build.
"""

from __future__ import annotations

import argparse
import sys

# The instruction-set features llama.cpp reports for each baseline it is built for
# (`llama_print_system_info`), named after the x86-64 micro-architecture levels.
BASELINES: dict[str, frozenset[str]] = {
    "x86-64-v2": frozenset({"SSE3", "SSSE3"}),
    "x86-64-v3": frozenset({"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}),
    # Opt-in, for AVX-512 machines only: faster there, but its logits are its own.
    "x86-64-v4": frozenset(
        {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"}
    ),
}

# Reported features that are not instruction sets.
_NOT_ISA = frozenset({"LLAMAFILE", "OPENMP", "REPACK", "KLEIDIAI", "ACCELERATE"})


def system_info() -> str:
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def instruction_sets(info: str | None = None) -> frozenset[str]:
    """The instruction-set features the library was compiled with ("AVX2 = 1" → "AVX2")."""
    info = system_info() if info is None else info
    features = set()
    for part in info.replace("CPU :", "|").split("|"):
        name, _, value = part.partition("=")
        if value.strip() == "1" and name.strip() not in _NOT_ISA:
            features.add(name.strip())
    return frozenset(features)


def baseline(info: str | None = None) -> str | None:
    """The named baseline the library was built for, or None for a machine-specific build."""
    found = instruction_sets(info)
    return next((name for name, features in BASELINES.items() if features == found), None)


def describe(info: str | None = None) -> str:
    found = instruction_sets(info)
    name = baseline(info)
    if name is not None:
        return f"llama.cpp built for {name} ({' '.join(sorted(found))})"
    return (
        f"llama.cpp built for this machine ({' '.join(sorted(found))}), not for a named baseline: "
        "answers can differ from other machines' (`make clean setup` builds the pinned one)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Check which baseline the installed llama.cpp was built for.")
    parser.add_argument("--expect", choices=sorted(BASELINES), help="fail unless the library was built for this one")
    args = parser.parse_args()
    print(describe())
    if args.expect and baseline() != args.expect:
        print(f"expected a build for {args.expect}: the installed wheel was not built with its flags", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
