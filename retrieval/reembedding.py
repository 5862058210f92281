"""Changing the embedder: the stored chunk texts are embedded again in the background, and
search answers from the old vectors until every chunk has its new one. Nothing is uploaded again.

Where things are while it runs (all in SQLite, so a `kill -9` loses at most one batch):
- `chunks.vector` keeps the old embedder's vectors, and FAISS is built from them alone;
- `next_vectors` (chunk id -> vector) receives the new ones, a small batch per transaction;
  a chunk deleted meanwhile takes its next vector with it (ON DELETE CASCADE);
- meta `embedder` names the old embedder, meta `next_embedder` the new one.
Queries are embedded with the old embedder, loaded again from its record, because the
vectors searched are its vectors. If it cannot be loaded (its model is gone or has changed),
search is lexical only until the switch, and the log says so. Documents added meanwhile are
embedded with both: the old vector keeps them searchable now, the new one is ready for the
switch (without the old embedder, the old vector is left empty and FAISS skips them).

The switch is one transaction, taken once no chunk lacks a next vector: the next vectors
replace the old, `embedder` becomes the new one and the generation moves on, so the FAISS
file is stale and rebuilt from the new vectors only; FAISS never holds both kinds. Started
again with the new embedder, a half-done migration resumes; with the old one, it is
abandoned (the next vectors are dropped); with a third, it starts over towards that one.

The work is low priority: it shares the cores with generation. One thread, its niceness
raised to 19, ONNX Runtime on that thread alone, small batches with a pause between them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from retrieval.embedder import Embedder
from retrieval.embedder_spec import EmbedderSpec
from retrieval.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Progress:
    done: int  # chunks that have their new vector
    total: int  # chunks in the index
    source: str  # the embedder search uses until the switch (its label)
    target: str  # the embedder being switched to
    dense: bool  # whether dense search runs meanwhile (False: the old embedder is gone)
    error: str | None = None  # why the background thread stopped, if it failed


class Reembedder:
    """Fills `next_vectors` for the target embedder, then calls `switch` (which returns False
    while some chunk still lacks its next vector: one was added without it)."""

    def __init__(
        self,
        store: Store,
        source: EmbedderSpec,
        target: EmbedderSpec,
        make_embedder: Callable[[], Embedder],
        switch: Callable[[], bool],
        dense: bool,
        batch: int = 16,
        pause_s: float = 0.05,
    ) -> None:
        self.store = store
        self.source = source
        self.target = target
        self.dense = dense
        self.batch = batch
        self.pause_s = pause_s
        self.finished = False
        self.error: str | None = None
        self._make_embedder = make_embedder
        self._switch = switch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def progress(self) -> Progress:
        done, total = self.store.reembedding_progress()
        if self.finished:
            done = total
        return Progress(done, total, self.source.label, self.target.label, self.dense, self.error)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._background, name="reembedding", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background thread to end; whether it switched."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    def stop(self, timeout: float | None = 30) -> None:
        """Stop after the batch in hand; what was committed stays for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _background(self) -> None:
        _lower_priority()
        try:
            self.run()
        except Exception as exc:  # reported in the progress; a restart resumes from the store
            log.exception("re-embedding stopped")
            self.error = str(exc)

    def run(self, batches: int | None = None) -> bool:
        """Embed until every chunk has its next vector, then switch; True once switched, False
        when stopped first, or after `batches` batches. Runs in the calling thread."""
        embedder = self._make_embedder()
        started, after = time.perf_counter(), 0
        total = self.store.reembedding_progress()[1]
        log.info("re-embedding %d chunks: %s -> %s", total, self.source.label, self.target.label)
        while not self._stop.is_set() and (batches is None or batches > 0):
            batch = self.store.chunks_to_embed(after, self.batch)
            if not batch:
                if self._switch():
                    self.finished = True
                    log.info("re-embedded with %s in %.0f s", self.target.label, time.perf_counter() - started)
                    return True
                after = 0  # a chunk came without its next vector: look again from the start
            else:
                vectors = embedder.encode([c.embedding_text() for c in batch])
                self.store.put_next_vectors([c.id for c in batch], vectors)
                after = batch[-1].id
                batches = None if batches is None else batches - 1
            self._stop.wait(self.pause_s)
        return False


def _lower_priority() -> None:
    """Niceness 19 for this thread alone (Linux applies it per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: small batches still yield
        pass
