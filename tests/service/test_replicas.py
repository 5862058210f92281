"""Several replicas, one knowledge base: two service processes on loopback, each with its own
data directory, both on one Milvus store. A document uploaded through one is listed, searched and
cited through the other.

The Milvus here is milvus-lite's own gRPC server (`python -m milvus_lite server`), which speaks
Milvus's protocol: the replicas reach it by an http:// URI, as they would reach a Milvus
standalone or a cluster (none can run on this machine: no docker daemon)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

from tests.live_server import free_port

REPO = Path(__file__).resolve().parents[2]
KEY = "replica-key"
LIGHTHOUSE = (
    "# The Drellish Lighthouse\n\nThe Drellish Lighthouse stands on the cape of Ombravik. "
    "Its keeper, Issa Morrow, lights it with whale-oil lamps every night."
)


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        child = subprocess.Popen(args, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def wait_until(ready, what: str, log: Path, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not come up: {log.read_text()[-2000:]}")


def test_a_document_uploaded_through_one_replica_is_cited_through_the_other(tmp_path) -> None:
    milvus_port = free_port()
    milvus = ["-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "milvus"), "--port", str(milvus_port)]
    empty = tmp_path / "no-starter"
    empty.mkdir()
    with process([sys.executable, *milvus], {}, tmp_path / "milvus.log"):
        wait_until(lambda: _listening(milvus_port), "milvus-lite's server", tmp_path / "milvus.log")
        urls = []
        with _replica(tmp_path, "a", milvus_port, empty) as (url_a, log_a):
            wait_until(lambda: _healthy(url_a), "replica a", log_a)
            with _replica(tmp_path, "b", milvus_port, empty) as (url_b, log_b):
                wait_until(lambda: _healthy(url_b), "replica b", log_b)
                urls = [url_a, url_b]
                headers = {"Authorization": f"Bearer {KEY}"}
                http = {"headers": headers, "timeout": 120}
                made = httpx.post(
                    url_a + "/v1/documents",
                    json={"text": LIGHTHOUSE, "id": "drellish", "source": "https://example.org/drellish"},
                    headers=headers,
                    timeout=120,
                )
                assert made.status_code == 201, made.text
                listed = httpx.get(url_b + "/v1/documents", headers=headers).json()
                assert [d["id"] for d in listed["data"]] == ["drellish"]
                found = httpx.get(url_b + "/v1/search", params={"q": "Ombravik lighthouse keeper"}, headers=headers)
                assert found.json()["data"][0]["document_id"] == "drellish"
                client = openai.OpenAI(base_url=url_b + "/v1", api_key=KEY, max_retries=0, timeout=120)
                reply = client.chat.completions.create(
                    model="x",
                    messages=[{"role": "user", "content": "Who is the keeper of the Drellish Lighthouse?"}],
                    max_tokens=40,
                    extra_body={"retrieval": "always"},
                )
                assert [s["source"] for s in reply.model_extra["sources"]] == ["https://example.org/drellish"]
                # Deleted through b, it is gone through a.
                gone = httpx.delete(url_b + "/v1/documents/drellish", headers=headers)
                assert gone.status_code == 200
                assert httpx.get(url_a + "/v1/documents/drellish", headers=headers).status_code == 404
                # Both replicas write one id at once, round after round: it always ends whole, as
                # the last round's text of one of them (a round starts after the last one ended).
                for round_ in range(5):
                    texts = {url_a: _keeper_text(round_, 1), url_b: _keeper_text(round_, 40)}
                    with ThreadPoolExecutor(2) as pool:
                        posts = [
                            pool.submit(httpx.post, url + "/v1/documents", json={"text": text, "id": "keeper"}, **http)
                            for url, text in texts.items()
                        ]
                        assert [p.result().status_code for p in posts] == [201, 201]
                    for url in urls:
                        document = httpx.get(url + "/v1/documents/keeper", **http).json()
                        assert document["text"] in texts.values() and document["chunks"] == _chunks_metric(url, http)
    assert len(urls) == 2


@contextmanager
def _replica(tmp_path: Path, name: str, milvus_port: int, starter: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / name
    data.mkdir()
    (data / "embedders").symlink_to(REPO / "index_data" / "embedders")
    port = free_port()
    env = {
        "RAGPAUSE_DATA_DIR": str(data),
        "RAGPAUSE_PORT": str(port),
        "RAGPAUSE_INDEX": "milvus",
        "RAGPAUSE_MILVUS_URI": f"http://127.0.0.1:{milvus_port}",
        "RAGPAUSE_STARTER_CORPUS": str(starter),
        "RAGPAUSE_GENERATION_SLOTS": "1",
        "RAGPAUSE_API_KEY": KEY,
    }
    log = tmp_path / f"{name}.log"
    with process([sys.executable, "-m", "service"], env, log):
        yield f"http://127.0.0.1:{port}", log


def _keeper_text(round_: int, sentences: int) -> str:
    """A text of its own for each round and writer, long enough for several chunks at 40 sentences."""
    line = f"In round {round_} the keeper of the Drellish Lighthouse wrote {sentences} lines in the log book."
    return " ".join([line] * sentences)


def _chunks_metric(url: str, http: dict) -> int:
    metrics = httpx.get(url + "/metrics", **http).text
    return int(
        float(next(line.split()[1] for line in metrics.splitlines() if line.startswith("ragpause_index_chunks ")))
    )


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _healthy(url: str) -> bool:
    return httpx.get(url + "/health", timeout=2).json().get("status") == "ok"
