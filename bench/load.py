"""Load: 20 concurrent chat clients over real HTTP on loopback, a fixed number of requests,
with and without a 2,000-passage ingestion running beside them (the baseline is the same
chats alone, in the same run). Reports throughput, p50/p99 latency, errors and hangs (a
request that does not finish within its timeout). Writes bench/results/load.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from bench.machine import machine_report  # noqa: E402
from bench.msmarco import load as load_msmarco  # noqa: E402
from service.app import create_app  # noqa: E402
from service.engine import Engine  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.live_server import serve  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLIENTS, REQUESTS_PER_CLIENT, TIMEOUT_S = 20, 3, 300.0
QUESTIONS = [
    "Where was Zorblax Quintaro born?",
    "What is the capital of France?",
    "Who invented the Velnorian harp?",
    "What do bees make?",
    "What is the boiling point of water in Celsius?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_chat(client: httpx.AsyncClient, n: int) -> tuple[str, float, int]:
    """('ok' | 'error' | 'hang', seconds, completion tokens)."""
    body = {"messages": [{"role": "user", "content": QUESTIONS[n % len(QUESTIONS)]}], "max_tokens": 48}
    start = time.perf_counter()
    try:
        if n % 2:  # half streamed, half not
            tokens = 0
            async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}) as response:
                if response.status_code != 200:
                    return "error", time.perf_counter() - start, 0
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        chunk = json.loads(line[6:])
                        if "error" in chunk:
                            return "error", time.perf_counter() - start, 0
                        tokens = chunk.get("usage", {}).get("completion_tokens", tokens) if chunk.get("usage") else tokens
            return "ok", time.perf_counter() - start, tokens
        response = await client.post("/v1/chat/completions", json=body)
        if response.status_code != 200 or not response.json()["choices"][0]["message"]["content"]:
            return "error", time.perf_counter() - start, 0
        return "ok", time.perf_counter() - start, response.json()["usage"]["completion_tokens"]
    except httpx.TimeoutException:
        return "hang", time.perf_counter() - start, 0
    except httpx.HTTPError:
        return "error", time.perf_counter() - start, 0


async def run_load(url: str, passages: list[dict] | None) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S, limits=httpx.Limits(max_connections=CLIENTS + 4)) as client:
        ingestion: dict = {}
        if passages is not None:
            documents = [{"text": p["text"], "id": f"load-{p['_id']}", "source": f"msmarco:{p['_id']}"} for p in passages]
            made = await client.post("/v1/documents", json={"documents": documents})
            assert made.status_code == 202, made.text
            ingestion["job"] = made.headers["location"]
        start = time.perf_counter()

        async def worker(c: int) -> list[tuple[str, float, int]]:
            return [await one_chat(client, c * REQUESTS_PER_CLIENT + r) for r in range(REQUESTS_PER_CLIENT)]

        results = [r for rows in await asyncio.gather(*(worker(c) for c in range(CLIENTS))) for r in rows]
        wall = time.perf_counter() - start
        if passages is not None:
            while (job := (await client.get(ingestion["job"])).json())["status"] in ("queued", "running"):
                await asyncio.sleep(0.2)
            ingestion.update(status=job["status"], documents=job["progress"]["done"], seconds=time.perf_counter() - start)
    latencies = [s for status, s, _ in results if status == "ok"]
    return {
        "requests": len(results),
        "ok": len(latencies),
        "errors": sum(status == "error" for status, _, _ in results),
        "hangs": sum(status == "hang" for status, _, _ in results),
        "wall_s": wall,
        "requests_per_s": len(results) / wall,
        "tokens_per_s": sum(t for _, _, t in results) / wall,
        "latency_p50_s": statistics.median(latencies),
        "latency_p99_s": percentile(latencies, 0.99),
        "ingestion": ingestion or None,
    }


def main() -> None:
    corpus, _, _ = load_msmarco()
    report: dict = {"benchmark": "load", "machine": machine_report(), "clients": CLIENTS, "requests_per_client": REQUESTS_PER_CLIENT, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "embedders").symlink_to(REPO / "index_data" / "embedders")
        settings = Settings(data_dir=Path(tmp), starter_corpus=REPO / "index_data" / "starter", upload_wait_bytes=0, max_upload_files=2000)
        engine = Engine.load(settings)
        with serve(create_app(settings, engine=engine)) as url:
            for name, passages in (("chats_alone", None), ("chats_with_ingestion", corpus[:2000])):
                report["runs"][name] = row = asyncio.run(run_load(url, passages))
                print(
                    f"{name:22s} {row['ok']}/{row['requests']} ok, {row['errors']} errors, {row['hangs']} hangs | "
                    f"{row['requests_per_s']:.2f} req/s, {row['tokens_per_s']:.0f} tok/s | "
                    f"p50 {row['latency_p50_s']:.2f} s p99 {row['latency_p99_s']:.2f} s"
                    + (f" | ingested {row['ingestion']['documents']} in {row['ingestion']['seconds']:.0f} s" if row["ingestion"] else ""),
                    flush=True,
                )
    alone, loaded = report["runs"]["chats_alone"], report["runs"]["chats_with_ingestion"]
    report["ratio_p50_latency_with_ingestion"] = loaded["latency_p50_s"] / alone["latency_p50_s"]
    report["zero_errors_and_hangs"] = all(r["errors"] == 0 and r["hangs"] == 0 for r in report["runs"].values())
    (Path(__file__).parent / "results" / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"p50 latency with ingestion / alone: {report['ratio_p50_latency_with_ingestion']:.2f}; zero errors and hangs: {report['zero_errors_and_hangs']}")


if __name__ == "__main__":
    main()
