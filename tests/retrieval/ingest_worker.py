"""Run as a subprocess by the crash tests: ingests documents and prints `ACK <id>` after each
acknowledgement, until killed. A seventh argument `milvus` ingests into milvus-lite instead."""

from __future__ import annotations

import sys
from pathlib import Path

from retrieval.document_index import DocumentIndex, DocumentInput
from retrieval.embedder import Embedder
from retrieval.milvus_index import MilvusIndex


def main() -> None:
    data_dir, cache, first, count, batch = (
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        int(sys.argv[5]),
    )
    embedder = Embedder(cache_root=cache)
    if sys.argv[7:] == ["milvus"]:
        index = MilvusIndex(str(data_dir / "milvus.db"), embedder)
    else:
        index = DocumentIndex(data_dir, embedder, hnsw_threshold=int(sys.argv[6]))
    print("READY", flush=True)
    for start in range(first, first + count, batch):
        docs = [
            DocumentInput(
                f"Document {n} describes the imaginary island of Korlu-{n}. "
                f"Its harbour master is called Tessaly {n}, and the island exports {n % 7} kinds of salt.",
                title=f"Korlu-{n}",
                doc_id=f"doc-{n}",
            )
            for n in range(start, min(start + batch, first + count))
        ]
        for result in index.add_documents(docs):
            print(f"ACK {result.doc_id}", flush=True)
        if start % (batch * 4) == 0:
            index.save()  # also be killed while the vector file is being written
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
