"""Run as a subprocess by the crash tests: ingests documents and prints `ACK <id>` after each
acknowledgement, until killed. A seventh argument `milvus` ingests into milvus-lite instead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from retrieval.document_index import DocumentIndex, DocumentInput
from retrieval.embedder import Embedder
from retrieval.milvus_index import MilvusIndex

REPO = Path(__file__).resolve().parents[2]


def ingest_until_killed(args: list[str], seconds: float, acked: set[str]) -> None:
    """Run this worker with `args`, kill -9 it `seconds` after it is ready, and add every id it
    acknowledged to `acked`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.retrieval.ingest_worker", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ACK "):
            acked.add(line.split()[1])
        elif line.strip() == "DONE" or not line:
            break
    proc.send_signal(signal.SIGKILL)
    for line in proc.stdout:  # what it printed before dying was acknowledged too
        if line.startswith("ACK "):
            acked.add(line.split()[1])
    proc.wait(timeout=30)


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
