"""Load: 20 concurrent chat clients over real HTTP on loopback, a fixed number of requests,
with and without a 2,000-passage ingestion running beside them (the baseline is the same
chats alone, in the same run). Reports throughput, p50/p99 latency, errors and hangs (a
request that does not finish within its timeout).

Two freezes that hostile testing found, measured against their baselines in the same run:
- reads (search, list) while a 1.5 MB file is indexed and eight small uploads from clients
  that gave up wait behind it, against the same reads on an idle service: worst latency;
- every slot taken by non-streamed answers (max_tokens 2,000) whose clients leave after 2 s:
  how long until a 5-token answer comes back, against the same answer on an idle service.
Writes bench/results/load.json (`--runs` runs a subset and keeps the other results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.machine import machine_report
from bench.msmarco import load as load_msmarco
from service.api.app import create_app
from service.runtime.runtime import Runtime
from service.settings import Settings
from tests.live_server import serve

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
            async with client.stream(
                "POST", "/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
            ) as response:
                if response.status_code != 200:
                    return "error", time.perf_counter() - start, 0
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        chunk = json.loads(line[6:])
                        if "error" in chunk:
                            return "error", time.perf_counter() - start, 0
                        tokens = (
                            chunk.get("usage", {}).get("completion_tokens", tokens) if chunk.get("usage") else tokens
                        )
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
    async with httpx.AsyncClient(
        base_url=url, timeout=TIMEOUT_S, limits=httpx.Limits(max_connections=CLIENTS + 4)
    ) as client:
        ingestion: dict = {}
        if passages is not None:
            documents = [
                {"text": p["text"], "id": f"load-{p['_id']}", "source": f"msmarco:{p['_id']}"} for p in passages
            ]
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
            ingestion.update(
                status=job["status"], documents=job["progress"]["done"], seconds=time.perf_counter() - start
            )
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


async def read_latencies(client: httpx.AsyncClient, until: asyncio.Event | None, count: int = 20) -> dict:
    """Search and list, one after the other every 0.25 s, until `until` is set (or `count` times)."""
    seconds, hangs = [], 0
    n = 0
    while (until is None and n < count) or (until is not None and not until.is_set()):
        for path, params in (("/v1/search", {"q": f"harbour lantern {n}"}), ("/v1/documents", {"limit": 5})):
            start = time.perf_counter()
            try:
                response = await client.get(path, params=params, timeout=20)
                response.raise_for_status()
                seconds.append(time.perf_counter() - start)
            except httpx.TimeoutException:
                hangs += 1
                seconds.append(20.0)
        n += 1
        await asyncio.sleep(0.25)
    return {"reads": len(seconds), "hangs": hangs, "worst_s": max(seconds), "p50_s": statistics.median(seconds)}


async def reads_during_ingestion(url: str) -> dict:
    rng = random.Random(0)
    words = "harbour lantern granite ferry ledger orchard quarry beacon cellar meadow tannery weir".split()
    text = " ".join(" ".join(rng.choice(words) for _ in range(12)).capitalize() + "." for _ in range(20_000))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        alone = await read_latencies(client, None)
        made = await client.post("/v1/documents", files=[("files", ("ledger.txt", text.encode(), "text/plain"))])
        assert made.status_code == 202, made.text
        job = made.headers["location"]

        async def impatient(n: int) -> None:
            try:
                await client.post(
                    "/v1/documents", json={"text": f"Note {n}: the ferry leaves at {n} o'clock."}, timeout=0.5
                )
            except httpx.TimeoutException:
                pass

        await asyncio.gather(*(impatient(n) for n in range(8)))
        finished = asyncio.Event()
        start = time.perf_counter()

        async def watch() -> None:
            while (await client.get(job)).json()["status"] in ("queued", "running"):
                await asyncio.sleep(0.5)
            finished.set()

        during, _ = await asyncio.gather(read_latencies(client, finished), watch())
        return {
            "file_bytes": len(text),
            "ingestion_s": time.perf_counter() - start,
            "alone": alone,
            "during_ingestion": during,
            "ratio_worst_read": during["worst_s"] / alone["worst_s"],
        }


async def slot_free_after_disconnect(url: str, slots: int) -> dict:
    short = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 5, "retrieval": "off"}
    long = {
        "messages": [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}],
        "max_tokens": 2000,
        "retrieval": "off",
    }
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        start = time.perf_counter()
        assert (await client.post("/v1/chat/completions", json=short)).status_code == 200
        idle = time.perf_counter() - start

        async def leaving() -> None:
            try:
                await client.post("/v1/chat/completions", json=long, timeout=2.0)
            except httpx.TimeoutException:
                pass

        await asyncio.gather(*(leaving() for _ in range(slots)))
        left = time.perf_counter()
        reply = await client.post("/v1/chat/completions", json=short)
        assert reply.status_code == 200
        return {
            "slots": slots,
            "leaving_clients": slots,
            "short_answer_idle_s": idle,
            "short_answer_after_clients_left_s": time.perf_counter() - left,
            "ratio": (time.perf_counter() - left) / idle,
        }


RUNS = ("chats", "reads_during_ingestion", "slot_free_after_disconnect")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    args = parser.parse_args()
    corpus, _, _ = load_msmarco()
    out = Path(__file__).parent / "results" / "load.json"
    report: dict = json.loads(out.read_text()) if out.exists() and set(args.runs) != set(RUNS) else {}
    report.update(
        {
            "benchmark": "load",
            "machine": machine_report(),
            "clients": CLIENTS,
            "requests_per_client": REQUESTS_PER_CLIENT,
        }
    )
    report.setdefault("runs", {})
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "embedders").symlink_to(REPO / "index_data" / "embedders")
        settings = Settings(
            data_dir=Path(tmp),
            starter_corpus=REPO / "index_data" / "starter",
            upload_wait_bytes=20_000,
            max_upload_files=2000,
        )
        engine = Runtime.load(settings)
        with serve(create_app(settings, runtime=engine)) as url:
            if "reads_during_ingestion" in args.runs:
                report["reads_during_ingestion"] = row = asyncio.run(reads_during_ingestion(url))
                print(
                    f"reads: worst {row['alone']['worst_s'] * 1000:.0f} ms alone, "
                    f"{row['during_ingestion']['worst_s'] * 1000:.0f} ms during a "
                    f"{row['file_bytes'] / 1e6:.1f} MB ingestion "
                    f"({row['during_ingestion']['hangs']} hangs of {row['during_ingestion']['reads']})",
                    flush=True,
                )
            if "slot_free_after_disconnect" in args.runs:
                report["slot_free_after_disconnect"] = row = asyncio.run(
                    slot_free_after_disconnect(url, settings.model.generation_slots)
                )
                print(
                    f"a 5-token answer: {row['short_answer_idle_s']:.2f} s idle, "
                    f"{row['short_answer_after_clients_left_s']:.2f} s right after "
                    f"{row['leaving_clients']} clients left their 2,000-token answers",
                    flush=True,
                )
            for name, passages in (
                (("chats_alone", None), ("chats_with_ingestion", corpus[:2000])) if "chats" in args.runs else ()
            ):
                report["runs"][name] = row = asyncio.run(run_load(url, passages))
                print(
                    f"{name:22s} {row['ok']}/{row['requests']} ok, {row['errors']} errors, {row['hangs']} hangs | "
                    f"{row['requests_per_s']:.2f} req/s, {row['tokens_per_s']:.0f} tok/s | "
                    f"p50 {row['latency_p50_s']:.2f} s p99 {row['latency_p99_s']:.2f} s"
                    + (
                        f" | ingested {row['ingestion']['documents']} in {row['ingestion']['seconds']:.0f} s"
                        if row["ingestion"]
                        else ""
                    ),
                    flush=True,
                )
    if "chats" in args.runs:
        alone, loaded = report["runs"]["chats_alone"], report["runs"]["chats_with_ingestion"]
        report["ratio_p50_latency_with_ingestion"] = loaded["latency_p50_s"] / alone["latency_p50_s"]
        report["zero_errors_and_hangs"] = all(r["errors"] == 0 and r["hangs"] == 0 for r in report["runs"].values())
        print(
            f"p50 latency with ingestion / alone: {report['ratio_p50_latency_with_ingestion']:.2f}; "
            f"zero errors and hangs: {report['zero_errors_and_hangs']}"
        )
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
