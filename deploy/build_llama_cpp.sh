#!/usr/bin/env bash
# Installs llama-cpp-python built for a named instruction-set baseline, never for the build
# machine's own CPU (-march=native): the same commit must compute the same logits on every
# machine that runs it (service/generator/llama_build.py says why).
#
#   deploy/build_llama_cpp.sh PYTHON [BASELINE]
#   LLAMA_TARGET=DIR deploy/build_llama_cpp.sh PYTHON x86-64-v4   # into DIR (pip --target), for benchmarks
#
# BASELINE: x86-64-v3 (AVX2, FMA, F16C, BMI2: every x86-64 CPU since 2013-2015, the default
# where the CPU has them), x86-64-v2 (SSE4.2: older CPUs), x86-64-v4 (AVX-512: opt-in, runs
# only on AVX-512 machines, its answers are its own). Other architectures get llama.cpp's
# own default build.
#
# pip caches wheels built from a source package by the package's name and version, not by
# CMAKE_ARGS, so a wheel built earlier for another CPU would silently come back. This script
# builds with pip's cache off, into a folder of its own named by the version, the flags and
# the compiler, installs that wheel file itself, and checks what the library reports.
set -euo pipefail

PY=${1:?usage: build_llama_cpp.sh PYTHON [BASELINE]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml")
[ -n "$VERSION" ] || { echo "llama-cpp-python is not pinned in pyproject.toml" >&2; exit 1; }

detect() {
    [ "$(uname -m)" = x86_64 ] || { echo default; return; }
    local flags
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for f in avx2 fma f16c bmi2; do
        [[ $flags == *" $f "* ]] || { echo x86-64-v2; return; }
    done
    echo x86-64-v3
}

BASELINE=${2:-${LLAMA_BASELINE:-}}
[ -n "$BASELINE" ] || BASELINE=$(detect)

NO_AMX="-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
NO_512="-DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
case $BASELINE in
    x86-64-v2) FLAGS="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF -DGGML_AVX_VNNI=OFF $NO_512 $NO_AMX" ;;
    x86-64-v3) FLAGS="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF $NO_512 $NO_AMX" ;;
    # No AMX even here: llama.cpp 0.3.36's AMX kernels crash on Q4_1 (seen on a Xeon with AMX).
    x86-64-v4) FLAGS="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON $NO_AMX" ;;
    default) FLAGS="" ;;
    *) echo "unknown baseline '$BASELINE' (x86-64-v2, x86-64-v3, x86-64-v4)" >&2; exit 2 ;;
esac

COMPILER=$( (cc --version 2>/dev/null || echo none) | head -n 1)
KEY=$(printf '%s\n%s\n%s\n' "$VERSION" "$FLAGS" "$COMPILER" | sha256sum | cut -c1-12)
CACHE=${RAGPAUSE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ragpause/wheels}
DIR="$CACHE/llama-cpp-python-$VERSION-$BASELINE-$KEY"
TARGET=${LLAMA_TARGET:-}
if [ -n "$TARGET" ]; then
    MARK="$TARGET/.llama-cpp-build"
    CHECK_PATH=$(cd "$(dirname "$TARGET")" 2>/dev/null && pwd)/$(basename "$TARGET")
else
    MARK="$("$PY" -c 'import sys; print(sys.prefix)')/.llama-cpp-build"
    CHECK_PATH=
fi

if [ -f "$MARK" ] && [ "$(cat "$MARK")" = "$DIR" ] && PYTHONPATH=$CHECK_PATH "$PY" -c 'import llama_cpp' 2>/dev/null; then
    exit 0  # already holds this build
fi

if ! ls "$DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $VERSION for $BASELINE (a few minutes; cached in $DIR)"
    rm -rf "$DIR.tmp"
    CMAKE_ARGS="$FLAGS" "$PY" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
        "llama-cpp-python==$VERSION" -w "$DIR.tmp"
    rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
fi
if [ -n "$TARGET" ]; then
    rm -rf "$TARGET" && "$PY" -m pip install --no-deps --target "$TARGET" "$DIR"/llama_cpp_python-*.whl
    CHECK_PATH=$(cd "$TARGET" && pwd)
else
    "$PY" -m pip install --no-deps --force-reinstall "$DIR"/llama_cpp_python-*.whl
    # Then its dependencies (numpy, diskcache, jinja2, …): the check below imports the package.
    "$PY" -m pip install "$DIR"/llama_cpp_python-*.whl
fi

if [ "$BASELINE" != default ]; then
    (cd "$ROOT" && PYTHONPATH=$CHECK_PATH "$PY" -m service.generator.llama_build --expect "$BASELINE")
fi
echo "$DIR" > "$MARK"
