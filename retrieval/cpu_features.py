"""What this CPU offers the kernels that matter here, as this process sees it.

Speed figures hold for one kind of CPU: ONNX Runtime's int8 matrix products are fast only with
VNNI (2.65x sentence-transformers on a Xeon with AVX-512 VNNI, 1.22x on an AVX2-only EPYC),
so benchmarks record the CPU they ran on and the embedder picks its backend by it.

The features come from the `cpuid` instruction itself, run from a few bytes of machine code,
because that is what ONNX Runtime, PyTorch and NumPy ask when they choose their kernels; a
virtual machine (or bench/cpu_view) that hides a feature hides it from them and from us alike,
while /proc/cpuinfo may still list it. Elsewhere (not x86-64, no executable memory) the
kernel's /proc/cpuinfo flags stand in.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# void cpuid(uint32 leaf, uint32 subleaf, uint32 out[4]) in the x86-64 System V ABI:
# push rbx; mov eax,edi; mov ecx,esi; mov r8,rdx; cpuid; mov [r8],eax; mov [r8+4],ebx;
# mov [r8+8],ecx; mov [r8+12],edx; pop rbx; ret
_CPUID_CODE = bytes.fromhex("5389f889f14989d00fa241890041895804418948084189500c5bc3")

# (leaf, subleaf, register index eax=0 ebx=1 ecx=2 edx=3, bit) per feature, Linux's names.
_BITS: dict[str, tuple[int, int, int, int]] = {
    "fma": (1, 0, 2, 12),
    "f16c": (1, 0, 2, 29),
    "avx2": (7, 0, 1, 5),
    "avx512f": (7, 0, 1, 16),
    "avx512bw": (7, 0, 1, 30),
    "avx512_vnni": (7, 0, 2, 11),
    "amx_tile": (7, 0, 3, 24),
    "amx_int8": (7, 0, 3, 25),
    "avx_vnni": (7, 1, 0, 4),
}


@dataclass(frozen=True)
class CpuFeatures:
    model: str
    flags: frozenset[str]  # of _BITS' names
    source: str  # "cpuid" or "/proc/cpuinfo"

    @property
    def int8_dot_product(self) -> bool:
        """VNNI in either form: ONNX Runtime's int8 kernels are fast only with it."""
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & self.flags)

    def as_dict(self) -> dict:
        return {"model": self.model, "flags": sorted(self.flags), "source": self.source}


class _Cpuid:
    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._memory.write(_CPUID_CODE)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self._memory))
        self._call = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32 * 4))(
            address
        )

    def __call__(self, leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
        out = (ctypes.c_uint32 * 4)()
        self._call(leaf, subleaf, ctypes.byref(out))
        return tuple(out)  # type: ignore[return-value]


def _from_cpuid() -> CpuFeatures:
    cpuid = _Cpuid()
    max_leaf = cpuid(0)[0]
    flags = set()
    for name, (leaf, sub, register, bit) in _BITS.items():
        if leaf <= max_leaf and (cpuid(leaf, sub)[register] >> bit) & 1:
            flags.add(name)
    brand = b""
    if cpuid(0x80000000)[0] >= 0x80000004:
        for leaf in (0x80000002, 0x80000003, 0x80000004):
            brand += b"".join(r.to_bytes(4, "little") for r in cpuid(leaf))
    return CpuFeatures(brand.rstrip(b"\0").decode("ascii", "replace").strip(), frozenset(flags), "cpuid")


def _from_proc() -> CpuFeatures:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine()):
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split()) & set(_BITS)
                break
    except OSError:
        pass
    return CpuFeatures(model, frozenset(flags), "/proc/cpuinfo")


@cache
def cpu_features() -> CpuFeatures:
    if platform.machine() in ("x86_64", "AMD64"):
        try:
            return _from_cpuid()
        except (OSError, ValueError, AttributeError):
            pass  # no executable memory here
    return _from_proc()
