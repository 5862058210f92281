"""Run as a subprocess by the re-embedding crash test: opens an index with the float32 ONNX
embedder, so that its background re-embedding starts, slowly (small batches, long pauses),
and prints DONE when it has switched, unless it is killed first."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder


def main() -> None:
    data_dir, cache, batch, pause_s = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    index = DocumentIndex(
        data_dir, Embedder(backend="onnx", cache_root=cache), reembed_batch=batch, reembed_pause_s=pause_s
    )
    print("READY", flush=True)
    while index.reembedding_progress() is not None:
        time.sleep(0.05)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
