"""Concurrency, in two comparisons over real HTTP on loopback, each against its baseline in the
same run. Writes bench/results/concurrency.json.

1. Does one long answer block the others? One generation slot (a plain FIFO queue, the
   baseline) against four slots taking turns token by token. A long answer (300 tokens)
   starts; 0.3 s later six short questions arrive together, while /health is polled every
   50 ms. Reports the short questions' time to first token and total latency (p50/p99), the
   long answer's latency, total generated tokens per second and the worst /health latency.
2. Does one slow search block the others? Four slots; one answer searches a web endpoint that
   takes 2 s to reply, and 0.3 s later six short questions arrive. Baseline: the search runs
   on the generation thread, as every step did before; ours: it runs on a helper thread.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.machine import machine_report
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from service.api.app import create_app
from service.generator.llama_backend import LlamaCppBackend
from service.generator.model_files import default_gguf_path
from service.runtime.runtime import Runtime, web_searcher
from service.runtime.worker import GenerationWorker
from service.settings import Settings
from tests.live_server import serve
from tests.search_server import SearchServer

REPO = Path(__file__).resolve().parent.parent
LONG = "Write a long story about a dragon who learns to bake bread."
SEARCHING = ("Where was Zorblax Quintaro born?", 40, "always", "web")
SHORT = [
    "What is the capital of France?",
    "Name a primary colour.",
    "What is 2 plus 2?",
    "Where was Zorblax Quintaro born?",
    "What do bees make?",
    "Say hello.",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def ask(
    client: httpx.AsyncClient, question: str, max_tokens: int, retrieval: str = "auto", sources: str = "auto"
) -> dict:
    start = time.perf_counter()
    first = None
    tokens = 0
    body = {
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "stream": True,
        "retrieval": retrieval,
        "sources": sources,
    }
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, response.status_code
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk.get("draft"):
                    tokens += 1
                    first = first or time.perf_counter() - start
                assert "error" not in chunk, chunk
    return {"ttft": first or 0.0, "latency": time.perf_counter() - start, "tokens": tokens}


async def scenario(
    url: str, first: tuple[str, int, str, str] = (LONG, 300, "off", "auto"), short_retrieval: str = "auto"
) -> dict:
    """`first` (question, max tokens, retrieval, sources) starts; 0.3 s later the short ones."""
    health: list[float] = []
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:

        async def poll() -> None:
            while not done.is_set():
                start = time.perf_counter()
                assert (await client.get("/health")).status_code == 200
                health.append(time.perf_counter() - start)
                await asyncio.sleep(0.05)

        poller = asyncio.create_task(poll())
        start = time.perf_counter()
        long = asyncio.create_task(ask(client, *first))
        await asyncio.sleep(0.3)
        short = await asyncio.gather(*(ask(client, q, 24, short_retrieval) for q in SHORT))
        long_result = await long
        wall = time.perf_counter() - start
        done.set()
        await poller
    tokens = long_result["tokens"] + sum(r["tokens"] for r in short)
    return {
        "short_ttft_p50_s": statistics.median(r["ttft"] for r in short),
        "short_ttft_p99_s": percentile([r["ttft"] for r in short], 0.99),
        "short_latency_p50_s": statistics.median(r["latency"] for r in short),
        "short_latency_p99_s": percentile([r["latency"] for r in short], 0.99),
        "long_latency_s": long_result["latency"],
        "tokens_per_s": tokens / wall,
        "health_max_s": max(health),
        "health_checks": len(health),
        "wall_s": wall,
    }


def main() -> None:
    settings = Settings(system_prompt="You are a helpful assistant.")
    embedder = Embedder(cache_root=REPO / "index_data" / "embedders")
    report: dict = {
        "benchmark": "concurrency",
        "machine": machine_report(),
        "scenario": "1 long answer (300 tokens) + 6 short (24 tokens) 0.3 s later, /health every 50 ms",
        "results": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        index = DocumentIndex(Path(tmp), embedder)
        index.add_paths([REPO / "index_data" / "starter"])
        backends = [LlamaCppBackend(default_gguf_path(), n_ctx=2048) for _ in range(4)]
        for slots in (1, 4):
            engine = Runtime(settings, backends[0], index, more_slots=backends[1:slots])
            with serve(create_app(settings, runtime=engine)) as url:
                asyncio.run(scenario(url))  # warm-up: caches, first-touch of the weights
                report["results"][f"{slots}_slot" + ("s" if slots > 1 else "")] = row = asyncio.run(scenario(url))
            print(
                f"{slots} slot(s): short TTFT p50 {row['short_ttft_p50_s']:.2f} s "
                f"p99 {row['short_ttft_p99_s']:.2f} s | "
                f"short latency p50 {row['short_latency_p50_s']:.2f} s | long {row['long_latency_s']:.2f} s | "
                f"{row['tokens_per_s']:.0f} tok/s | health max {row['health_max_s'] * 1000:.0f} ms",
                flush=True,
            )
        slow_search(settings, index, backends, report)
    base, ours = report["results"]["1_slot"], report["results"]["4_slots"]
    report["ratio_short_ttft_p50_fifo_over_slots"] = base["short_ttft_p50_s"] / ours["short_ttft_p50_s"]
    report["ratio_tokens_per_s_slots_over_fifo"] = ours["tokens_per_s"] / base["tokens_per_s"]
    inline, aside = report["results"]["search_inline"], report["results"]["search_aside"]
    report["ratio_short_latency_p50_inline_over_aside"] = inline["short_latency_p50_s"] / aside["short_latency_p50_s"]
    out = Path(__file__).parent / "results" / "concurrency.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"short questions start {report['ratio_short_ttft_p50_fifo_over_slots']:.1f}x sooner with 4 slots; "
        f"throughput ratio {report['ratio_tokens_per_s_slots_over_fifo']:.2f}"
    )
    print(
        f"beside a 2 s search, short questions finish "
        f"{report['ratio_short_latency_p50_inline_over_aside']:.1f}x sooner with the search aside"
    )


class InlineWorker(GenerationWorker):
    """The baseline: every step on the generation thread, searches included (the design before)."""

    def run(self, make_events, prompt=(), waits=None, detached=False):  # type: ignore[no-untyped-def, override]
        return super().run(make_events, prompt)


def slow_search(settings: Settings, index: DocumentIndex, backends: list[LlamaCppBackend], report: dict) -> None:
    web = SearchServer(
        [
            {
                "title": "Zorblax Quintaro",
                "url": "https://example.org/z",
                "content": "Zorblax Quintaro was born in Vellmora.",
            }
        ],
        slow_s=2.0,
    )
    web.mode = "slow"
    web_settings = settings.retrieval.model_copy(
        update={"web_search_url": web.url, "web_timeout_s": 10.0, "web_retries": 0}
    )
    searching = settings.model_copy(update={"retrieval": web_settings})
    try:
        for name, worker_class in (("search_inline", InlineWorker), ("search_aside", GenerationWorker)):
            engine = Runtime(searching, backends[0], index, web_searcher(searching), backends[1:])
            app = create_app(searching, runtime=engine)
            with serve(app) as url:
                app.state.worker.stop()
                app.state.worker = worker_class(engine.slots, cached_tokens=lambda backend: backend.tokens)
                # The short questions do not search: only the first answer waits on the endpoint.
                asyncio.run(scenario(url, SEARCHING, "off"))  # warm-up
                report["results"][name] = row = asyncio.run(scenario(url, SEARCHING, "off"))
            print(
                f"{name}: short TTFT p50 {row['short_ttft_p50_s']:.2f} s | "
                f"short latency p50 {row['short_latency_p50_s']:.2f} s "
                f"p99 {row['short_latency_p99_s']:.2f} s | searching answer {row['long_latency_s']:.2f} s | "
                f"health max {row['health_max_s'] * 1000:.0f} ms",
                flush=True,
            )
    finally:
        web.close()


if __name__ == "__main__":
    main()
