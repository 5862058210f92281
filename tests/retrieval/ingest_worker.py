"""Run as a subprocess by the crash test: ingests documents and prints `ACK <id>` after each
acknowledgement, until killed."""

from __future__ import annotations

import sys
from pathlib import Path

from retrieval.document_index import DocumentIndex, DocumentInput
from retrieval.embedder import Embedder


def main() -> None:
    data_dir, cache, first, count, batch = (
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        int(sys.argv[5]),
    )
    index = DocumentIndex(data_dir, Embedder(cache_root=cache), hnsw_threshold=int(sys.argv[6]))
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
