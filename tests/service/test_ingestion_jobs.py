"""Uploads while a large one is being indexed, and jobs across a stop or a kill: the real
service on loopback (in-process, then as `python -m service` in its own process)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.live_server import free_port, serve_empty_index

WORDS = "harbour lantern granite ferry ledger orchard quarry beacon cellar meadow tannery weir mill causeway".split()


def prose(seed: int, words: int) -> str:
    rng = random.Random(seed)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(words // 12)]
    return " ".join(sentences)


def test_reads_and_small_uploads_answer_while_a_large_upload_is_indexed(llama_backend, embedder, tmp_path) -> None:
    # Small uploads used to wait for their 201 on threads of the default pool (6 on 2 cores)
    # while a large job ran; six of them, even from clients that had given up, froze every
    # read (search, list, get, delete) until the job ended, and a small upload got no answer
    # at all for as long.
    limits = dict(max_upload_bytes=4_000_000, upload_wait_bytes=20_000, upload_wait_seconds=2.0)
    with serve_empty_index(llama_backend, embedder, tmp_path, **limits) as url:
        large = httpx.post(url + "/v1/documents", json={"text": prose(1, 250_000), "title": "Ledger"}, timeout=60)
        assert large.status_code == 202
        job = large.json()["id"]

        def impatient(n: int) -> None:
            try:
                httpx.post(
                    url + "/v1/documents", json={"text": f"Impatient note {n}: {prose(100 + n, 60)}"}, timeout=0.5
                )
            except httpx.TimeoutException:
                pass

        quitters = [threading.Thread(target=impatient, args=(n,)) for n in range(8)]
        for thread in quitters:
            thread.start()
        for thread in quitters:
            thread.join()
        assert httpx.get(url + f"/v1/documents/jobs/{job}").json()["status"] == "running", (
            "the large job is still going"
        )

        start = time.perf_counter()
        found = httpx.get(url + "/v1/search", params={"q": "harbour lantern"}, timeout=10)
        listed = httpx.get(url + "/v1/documents", timeout=10)
        assert found.status_code == 200 and listed.status_code == 200
        assert time.perf_counter() - start < 5, "reads answer while the job runs"

        start = time.perf_counter()
        small = httpx.post(
            url + "/v1/documents",
            json={"text": "The Ferry of Wenmouth sails at noon.", "title": "Wenmouth"},
            timeout=30,
        )
        waited = time.perf_counter() - start
        assert small.status_code == 202 and small.json()["status"] == "queued", "behind the large job: its job at once"
        assert waited < 5 and small.headers["location"].endswith(small.json()["id"])

        deadline = time.time() + 240
        while httpx.get(url + f"/v1/documents/jobs/{small.json()['id']}").json()["status"] != "done":
            assert time.time() < deadline, "the queued upload was indexed after the large one"
            time.sleep(1)
        assert httpx.get(url + f"/v1/documents/jobs/{job}").json()["status"] == "done"
        titles = {d["title"] for d in httpx.get(url + "/v1/documents", params={"limit": 100}).json()["data"]}
        assert {"Ledger", "Wenmouth"} <= titles and len(titles) == 10, "the impatient clients' uploads were indexed too"


def start_service(data: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "RAGPAUSE_DATA_DIR": str(data),
        "RAGPAUSE_PORT": str(port),
        "RAGPAUSE_STARTER_CORPUS": str(data / "none"),
        "RAGPAUSE_MAX_UPLOAD_FILES": str(DOCUMENTS),
        "RAGPAUSE_MAX_UPLOAD_BYTES": str(20 * 1024 * 1024),
    }
    env.pop("RAGPAUSE_API_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 180
    while True:
        assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else "exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert time.time() < deadline, "the service did not start"
        time.sleep(0.5)


DOCUMENTS = 1000  # 16 batches: far more than a few seconds of indexing on any machine


def upload_and_wait_for_progress(url: str, seed: int) -> str:
    """DOCUMENTS documents in one upload (a 202 job); returns once its first batch is indexed."""
    documents = [
        {"text": prose(seed * 10_000 + n, 400), "title": f"Record {seed}-{n}", "id": f"r{seed}-{n}"}
        for n in range(DOCUMENTS)
    ]
    reply = httpx.post(url + "/v1/documents", json={"documents": documents}, timeout=60)
    assert reply.status_code == 202
    job = reply.json()["id"]
    deadline = time.time() + 180
    while httpx.get(url + f"/v1/documents/jobs/{job}").json()["progress"]["done"] == 0:
        assert time.time() < deadline
        time.sleep(0.2)
    return job


def test_a_stopped_or_killed_service_reports_its_unfinished_job(tmp_path) -> None:
    # Jobs lived only in memory: after a kill their ids answered 404. And SIGTERM during a
    # large ingestion left the service running for 25 s and more ("Waiting for background
    # tasks"), past docker's 10 s before SIGKILL.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(tmp_path, port)
    try:
        killed_job = upload_and_wait_for_progress(url, 1)
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=30)

        service = start_service(tmp_path, port)
        report = httpx.get(url + f"/v1/documents/jobs/{killed_job}").json()
        assert report["status"] == "interrupted" and "upload the others again" in report["error"]
        indexed = [r["id"] for r in report["results"] if r["status"] == "added"]
        assert 0 < len(indexed) < DOCUMENTS and report["progress"]["total"] == DOCUMENTS
        assert all(httpx.get(url + f"/v1/documents/{doc}").status_code == 200 for doc in indexed[:5])

        stopped_job = upload_and_wait_for_progress(url, 2)
        start = time.perf_counter()
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
        assert time.perf_counter() - start < 8, "SIGTERM stops the service within seconds"

        service = start_service(tmp_path, port)
        report = httpx.get(url + f"/v1/documents/jobs/{stopped_job}").json()
        assert report["status"] == "interrupted" and report["progress"]["total"] == DOCUMENTS
        listed = httpx.get(url + "/v1/documents", params={"limit": 1}).json()["total"]
        applied = len(indexed) + sum(1 for r in report["results"] if r["status"] == "added")
        assert listed == applied, "what a job reports as added is exactly what the index holds"
    finally:
        service.kill()
        service.wait(timeout=30)


def test_a_non_streamed_answer_stops_when_its_client_leaves(llama_backend, embedder, tmp_path) -> None:
    # Non-streamed answers went on after their clients disconnected, holding the slot until
    # max_tokens, and /metrics counted them as finished, not cancelled.
    with serve_empty_index(llama_backend, embedder, tmp_path, generation_slots=1) as url:
        long = {
            "messages": [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}],
            "max_tokens": 2000,
            "retrieval": "off",
        }
        for _ in range(2):
            try:
                httpx.post(url + "/v1/chat/completions", json=long, timeout=1.5)
            except httpx.TimeoutException:
                pass
        deadline = time.time() + 20
        while 'ragpause_answers_total{finish="cancelled"} 2.0' not in httpx.get(url + "/metrics").text:
            assert time.time() < deadline, "both answers were cancelled when their clients left"
            time.sleep(0.2)
        start = time.perf_counter()
        short = httpx.post(url + "/v1/chat/completions", json={**long, "max_tokens": 5}, timeout=60)
        assert short.status_code == 200 and short.json()["usage"]["completion_tokens"] == 5
        assert time.perf_counter() - start < 10, "the one slot was free at once"
