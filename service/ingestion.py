"""Document uploads become ingestion jobs, run one at a time on their own thread.

One writer keeps the index's writes in order while searches go on (the index lets readers
through between batches). A job reports queued → running → done | failed with progress, so
a client uploading many files can poll it; small uploads are simply awaited by the route.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from retrieval.document_index import DocumentIndex, DocumentInput, read_document
from service.text_checks import text_problem

JobStatus = Literal["queued", "running", "done", "failed"]


@dataclass
class Upload:
    """One document as received: raw bytes to parse (a file) or text with its fields (JSON).
    It is read in the job, so a document that cannot be read fails alone."""

    name: str
    data: bytes | None = None
    media_type: str | None = None
    text: str | None = None
    title: str = ""
    source: str = ""
    doc_id: str | None = None

    def read(self) -> DocumentInput:
        if self.text is None:
            assert self.data is not None
            return read_document(self.data, self.name, self.media_type, source=self.name)
        for field, value in (("text", self.text), ("title", self.title), ("source", self.source)):
            problem = text_problem(value, f"its {field}")
            if problem:
                raise ValueError(problem)
        if not self.text.strip():
            raise ValueError("its text is empty")
        # Text is read as Markdown (plain text is Markdown too): a heading gives the title.
        parsed = read_document(self.text.encode("utf-8"), None, "text/markdown", source=self.source, doc_id=self.doc_id)
        return replace(parsed, title=self.title or parsed.title)


@dataclass
class IngestionJob:
    id: str
    uploads: list[Upload]
    status: JobStatus = "queued"
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    done: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "ingestion_job",
            "status": self.status,
            "progress": {"done": self.done, "total": len(self.uploads)},
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "results": self.results,
            "error": self.error,
        }


class IngestionQueue:
    """Runs jobs in order on one thread; remembers the last `keep` jobs for polling."""

    def __init__(self, index: DocumentIndex, batch_size: int = 64, keep: int = 1000) -> None:
        self.index = index
        self.batch_size = batch_size
        self.keep = keep
        self._jobs: OrderedDict[str, IngestionJob] = OrderedDict()
        self._queue: queue.Queue[IngestionJob | None] = queue.Queue()
        self._running = False
        self._thread = threading.Thread(target=self._run, name="ingestion", daemon=True)
        self._thread.start()

    def submit(self, uploads: list[Upload]) -> IngestionJob:
        job = IngestionJob(f"ingest-{uuid.uuid4().hex[:16]}", uploads)
        self._jobs[job.id] = job
        while len(self._jobs) > self.keep:
            self._jobs.popitem(last=False)
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> IngestionJob | None:
        return self._jobs.get(job_id)

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        """A job is being indexed now (its embedding threads are busy)."""
        return self._running



    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            job.status = "running"
            self._running = True
            try:
                self._ingest(job)
                ok = any(r["status"] != "failed" for r in job.results)
                job.status = "done" if ok or not job.results else "failed"
                if not ok and job.results:
                    job.error = "no document could be read"
            except Exception as exc:  # the index itself failed: the job says so, the service goes on
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            self._running = False
            job.finished_at = time.time()
            job.finished.set()

    def _ingest(self, job: IngestionJob) -> None:
        for start in range(0, len(job.uploads), self.batch_size):
            readable: list[tuple[int, DocumentInput]] = []
            outcomes: dict[int, dict[str, Any]] = {}
            for n, upload in enumerate(job.uploads[start : start + self.batch_size], start=start):
                try:
                    readable.append((n, upload.read()))
                except ValueError as exc:  # unsupported, unreadable or empty: that file fails alone
                    outcomes[n] = {"name": upload.name, "status": "failed", "error": str(exc)}
                except Exception as exc:  # a parser's own failure (pypdf raises many kinds): the same
                    reason = f"could not be read ({type(exc).__name__}: {exc})"
                    outcomes[n] = {"name": upload.name, "status": "failed", "error": reason}
            # Acknowledged once committed: add_documents returns after the transaction.
            added = self.index.add_documents([d for _, d in readable], batch_size=self.batch_size)
            for (n, _), result in zip(readable, added):
                outcomes[n] = {
                    "name": job.uploads[n].name,
                    "status": result.status,
                    "id": result.doc_id,
                    "title": result.title,
                    "chunks": result.n_chunks,
                }
            job.results.extend(outcomes[n] for n in sorted(outcomes))
            job.done = min(len(job.uploads), start + self.batch_size)
        self.index.save()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
