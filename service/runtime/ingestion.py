"""Document uploads become ingestion jobs, run one at a time on their own thread.

One writer keeps the index's writes in order while searches go on (the index lets readers
through between batches). A job reports queued → running → done | failed with progress, so
a client uploading many files can poll it; small uploads are awaited by the route, for a
while. Jobs are written to the data directory at every step: after a restart (or a kill) a
job that did not finish says so, as interrupted, with the documents that were indexed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from retrieval.index_protocol import KnowledgeIndex
from retrieval.ingest_plan import DocumentInput, read_document
from retrieval.page_fetch import PageFetcher
from retrieval.store import DEFAULT_COLLECTION
from retrieval.web_documents import fetch_document
from service.runtime.text_checks import text_problem

JobStatus = Literal["queued", "running", "done", "failed", "interrupted"]
log = logging.getLogger(__name__)


@dataclass
class Upload:
    """One document as received: raw bytes to parse (a file), text with its fields (JSON), or a
    URL to fetch with `fetcher` (JSON). It is read in the job, so a document that cannot be read
    (or fetched) fails alone, and a slow page never holds the request."""

    name: str
    data: bytes | None = None
    media_type: str | None = None
    text: str | None = None
    title: str = ""
    source: str = ""
    doc_id: str | None = None
    collection: str = DEFAULT_COLLECTION
    url: str | None = None
    fetcher: PageFetcher | None = None

    def read(self) -> DocumentInput:
        return replace(self._parse(), collection=self.collection)

    def _parse(self) -> DocumentInput:
        if self.url is not None:
            return self._fetch(self.url)
        if self.text is None:
            assert self.data is not None
            return read_document(self.data, self.name, self.media_type, source=self.name)
        for what, value in (("text", self.text), ("title", self.title), ("source", self.source)):
            problem = text_problem(value, f"its {what}")
            if problem:
                raise ValueError(problem)
        # Text is read as Markdown (plain text is Markdown too): a heading gives the title.
        parsed = read_document(self.text.encode("utf-8"), None, "text/markdown", source=self.source, doc_id=self.doc_id)
        return replace(parsed, title=self.title or parsed.title)

    def _fetch(self, url: str) -> DocumentInput:
        """The page as a document kept under the URL asked for, which its refresh fetches again
        (where redirects ended may change; the id, derived from the source, must not)."""
        assert self.fetcher is not None
        for what, value in (("title", self.title), ("url", url)):
            problem = text_problem(value, f"its {what}")
            if problem:
                raise ValueError(problem)
        page = fetch_document(self.fetcher, url)
        problem = text_problem(page.text, "the page's text") or text_problem(page.title, "the page's title")
        if problem:
            raise ValueError(problem)
        return DocumentInput(page.text, self.title or page.title, url, self.doc_id, page.media_type)


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
    total: int = -1  # documents in the job: len(uploads), or as saved for a job read back from disk
    owner: str = "anyone"  # who submitted it: only they (or the admin) may read it
    _callbacks: list[Callable[[], None]] = field(default_factory=list)
    _callback_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.total < 0:
            self.total = len(self.uploads)

    def when_finished(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the ingestion thread) when the job ends; now if it has."""
        with self._callback_lock:
            if not self.finished.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def finish(self, status: JobStatus, error: str | None = None) -> None:
        """End the job once (a stopping service may end it before its thread does)."""
        with self._callback_lock:
            if self.finished.is_set():
                return
            self.status, self.error, self.finished_at = status, error, time.time()
            self.finished.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a waiter that went away
                log.debug("a job's waiter failed", exc_info=True)

    def failure(self) -> str:
        """Why it failed: its error, and each unreadable document's reason."""
        reasons = "; ".join(f"{r['name']}: {r.get('error', '')}" for r in self.results if r["status"] == "failed")
        return f"{self.error}: {reasons}" if reasons else str(self.error)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "ingestion_job",
            "status": self.status,
            "progress": {"done": self.done, "total": self.total},
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "results": self.results,
            "error": self.error,
            "owner": self.owner,
        }


class JobFiles:
    """One JSON file per job in a folder, replaced whole at every step (never half-written)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def save(self, job: IngestionJob) -> None:
        with self._lock:
            path = self.folder / f"{job.id}.json"
            tmp = path.with_suffix(".partial")
            tmp.write_text(json.dumps(job.as_json()))
            os.replace(tmp, path)

    def remove(self, job_id: str) -> None:
        (self.folder / f"{job_id}.json").unlink(missing_ok=True)

    def load(self) -> list[IngestionJob]:
        """Jobs of earlier runs, oldest first; one that had not finished is interrupted."""
        jobs = []
        for path in self.folder.glob("ingest-*.json"):
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            job = IngestionJob(
                saved["id"],
                [],
                saved["status"],
                saved["created_at"],
                saved["finished_at"],
                saved["progress"]["done"],
                saved["results"],
                saved["error"],
                total=saved["progress"]["total"],
                owner=saved.get("owner", "anyone"),
            )
            job.finished.set()
            if job.status in ("queued", "running"):
                job.status, job.finished_at = "interrupted", job.finished_at or time.time()
                job.error = stopped_during(job)
                self.save(job)
            jobs.append(job)
        return sorted(jobs, key=lambda j: j.created_at)


class IngestionQueue:
    """Runs jobs in order on one thread; remembers the last `keep` jobs for polling, on disk
    too where a folder is given."""

    def __init__(
        self, index: KnowledgeIndex, batch_size: int = 64, keep: int = 1000, jobs_dir: Path | None = None
    ) -> None:
        self.index = index
        self.batch_size = batch_size
        self.keep = keep
        self._files = JobFiles(jobs_dir) if jobs_dir is not None else None
        self._jobs: OrderedDict[str, IngestionJob] = OrderedDict()
        for job in self._files.load() if self._files else []:
            self._remember(job)
        self._queue: queue.Queue[IngestionJob | None] = queue.Queue()
        self._running = False
        self._current: IngestionJob | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingestion", daemon=True)
        self._thread.start()

    def submit(self, uploads: list[Upload], owner: str = "anyone") -> IngestionJob:
        job = IngestionJob(f"ingest-{uuid.uuid4().hex[:16]}", uploads, owner=owner)
        self._remember(job)
        self._save(job)
        self._queue.put(job)
        return job

    async def wait(self, job: IngestionJob, timeout: float) -> bool:
        """Wait for the job without holding a thread (a waiting upload must never keep reads
        from the thread pool); False if it is still going after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(done.set)
            except RuntimeError:  # the waiter's loop has closed
                pass

        job.when_finished(wake)
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def get(self, job_id: str) -> IngestionJob | None:
        return self._jobs.get(job_id)

    def _remember(self, job: IngestionJob) -> None:
        self._jobs[job.id] = job
        while len(self._jobs) > self.keep:
            _, old = self._jobs.popitem(last=False)
            if self._files:
                self._files.remove(old.id)

    def _save(self, job: IngestionJob) -> None:
        if self._files is None:
            return
        try:
            self._files.save(job)
        except OSError:  # a full disk must not stop indexing; polling still works from memory
            log.warning("could not write job %s", job.id, exc_info=True)

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        """A job is being indexed now (its embedding threads are busy)."""
        return self._running

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._stopping.is_set():
                break
            job.status = "running"
            self._running, self._current = True, job
            self._save(job)
            status: JobStatus = "done"
            error = None
            try:
                if not self._ingest(job):
                    status, error = "interrupted", stopped_during(job)
                elif job.results and not any(r["status"] != "failed" for r in job.results):
                    status, error = "failed", "no document could be read"
            except Exception as exc:  # the index itself failed: the job says so, the service goes on
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            self._running, self._current = False, None
            job.finish(status, error)
            self._save(job)

    def _ingest(self, job: IngestionJob) -> bool:
        """Index the job batch by batch; False if the service began to stop before the end."""
        for start in range(0, len(job.uploads), self.batch_size):
            if self._stopping.is_set():
                return False
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
                    "collection": job.uploads[n].collection,
                    "id": result.doc_id,
                    "title": result.title,
                    "chunks": result.n_chunks,
                }
            job.results.extend(outcomes[n] for n in sorted(outcomes))
            job.done = min(len(job.uploads), start + self.batch_size)
            self._save(job)
        self.index.save()
        return True

    def stop(self, grace: float = 5.0) -> None:
        """Stop soon: the batch being indexed commits or is dropped whole (the store is
        transactional), and the job is left as interrupted, never as running forever."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout=grace)
        current = self._current
        if current is not None and not current.finished.is_set():
            current.finish("interrupted", stopped_during(current))
            self._save(current)
        for job in list(self._jobs.values()):  # queued behind it: never started
            if not job.finished.is_set():
                job.finish("interrupted", stopped_during(job))
                self._save(job)


def stopped_during(job: IngestionJob) -> str:
    """What an interrupted job says, whether it was stopped or found unfinished after a kill."""
    return f"the service stopped: {job.done} of {job.total} documents were read (see results); upload the others again"
