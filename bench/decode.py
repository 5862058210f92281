"""Decode speed: raw llama-cpp-python `create_completion` vs our loop with the query unit watching.

All run greedy on the same prompt, in this process, interleaved, with a cold KV cache each
time; our loop computes every token's signals and asks the query unit about each one (made
never to pause). Two of ours: the heuristic unit on a plain engine, and the default, the
learned unit on an engine that reports hidden states (what `make run` serves). Prints tokens/s,
time to first token and the ratios, and writes bench/results/decode.json.

With `--other-build DIR` (llama-cpp-python installed there with `pip --target`, as `make bench`
does for x86-64-v4 on AVX-512 machines), it also times plain `create_completion` with the
installed, pinned build against that one: what building for a fixed baseline instead of this
CPU costs. Each rep runs both builds in fresh processes, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llama_cpp import Llama

from bench.machine import machine_report
from query_unit.heuristic import HeuristicConfig, HeuristicUnit
from query_unit.learned import LearnedUnit
from query_unit.turn import UnitTools
from service.generator import llama_build
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.decode_loop import GenerationParams, generate
from service.generator.events import TokenEvent
from service.generator.llama_backend import LlamaCppBackend
from service.generator.model_files import default_gguf_path

QUESTION = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."


class NoSearch:
    def search(self, query: str, k: int = 4) -> list:
        raise AssertionError("the benchmark must not pause")


def run_raw(llm: Llama, prompt: list[int], n: int) -> tuple[float, float, int]:
    llm.reset()
    start = time.perf_counter()
    first = None
    count = 0
    for chunk in llm.create_completion(prompt, max_tokens=n, temperature=0.0, stream=True):
        if chunk["choices"][0]["finish_reason"] is not None:
            break  # the closing chunk carries no token
        if first is None:
            first = time.perf_counter()
        count += 1
    end = time.perf_counter()
    return end - start, first - start, count


def never_pausing(kind: str) -> HeuristicUnit | LearnedUnit:
    tools = UnitTools(NoSearch(), lambda s: len(s.split()))
    if kind == "heuristic":
        return HeuristicUnit(tools, HeuristicConfig(prob_threshold=0.0))
    unit = LearnedUnit(tools)
    unit.threshold = 2.0  # scores are probabilities: it computes them all and never pauses
    return unit


def run_ours(
    backend: LlamaCppBackend, template: ChatTemplate, prompt: list[int], n: int, kind: str = "heuristic"
) -> tuple[float, float, int]:
    unit = never_pausing(kind)
    backend.rollback(0)
    start = time.perf_counter()
    first = None
    count = 0
    for event in generate(backend, template, prompt, unit.begin_turn(QUESTION), GenerationParams(max_tokens=n)):
        if isinstance(event, TokenEvent):
            if first is None:
                first = time.perf_counter()
            count += 1
    end = time.perf_counter()
    return end - start, first - start, count


def summary(runs: list[tuple[float, float, int]]) -> dict:
    # Decode speed after the first token, so that prefill does not blur it.
    rates = [(count - 1) / (total - first) for total, first, count in runs]
    return {
        "tokens": runs[0][2],
        "tokens_per_s": statistics.median(rates),
        "ttft_s": statistics.median(first for _, first, _ in runs),
        "total_s": statistics.median(total for total, _, _ in runs),
    }


def load_raw() -> tuple[Llama, list[int]]:
    threads = os.cpu_count() or 1
    raw = Llama(
        model_path=str(default_gguf_path()),
        n_ctx=4096,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        verbose=False,
    )
    template = ChatTemplate(LlamaCppBackend(default_gguf_path(), n_ctx=256))
    return raw, template.prompt([ChatMessage("user", QUESTION)], "You are a helpful assistant.")


def raw_worker(tokens: int) -> None:
    """One warm-up and one timed create_completion with whichever build this process loads."""
    raw, prompt = load_raw()
    run_raw(raw, prompt, 16)
    total, first, count = run_raw(raw, prompt, tokens)
    print(json.dumps({"total": total, "first": first, "count": count, "build": llama_build.describe()}))


def compare_builds(other: Path, reps: int, tokens: int) -> dict:
    """Plain create_completion: the installed (pinned) build against the one in `other`."""
    runs: dict[str, list[tuple[float, float, int]]] = {"pinned": [], "other": []}
    described: dict[str, str] = {}
    for _ in range(reps):
        for name in runs:
            env = dict(os.environ)
            if name == "other":
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(other.resolve()), env.get("PYTHONPATH")]))
            done = subprocess.run(
                [sys.executable, __file__, "--raw-worker", "--tokens", str(tokens)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            runs[name].append((row["total"], row["first"], row["count"]))
            described[name] = row["build"]
    pinned, faster = summary(runs["pinned"]), summary(runs["other"])
    return {
        "pinned": {"build": described["pinned"], **pinned},
        "other": {"build": described["other"], **faster},
        "ratio_tokens_per_s": pinned["tokens_per_s"] / faster["tokens_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument(
        "--other-build", type=Path, help="a folder holding another llama-cpp-python build (pip --target)"
    )
    parser.add_argument("--raw-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "decode.json")
    args = parser.parse_args()
    if args.raw_worker:
        raw_worker(args.tokens)
        return

    path = default_gguf_path()
    threads = os.cpu_count() or 1
    raw, prompt = load_raw()
    ours = LlamaCppBackend(path, n_ctx=4096, n_threads=threads)
    hidden = LlamaCppBackend(path, n_ctx=4096, n_threads=threads, hidden_states=True)
    template = ChatTemplate(ours)

    run_raw(raw, prompt, 16)  # warm them up
    run_ours(ours, template, prompt, 16)
    run_ours(hidden, template, prompt, 16, "learned")
    raw_runs, our_runs, default_runs = [], [], []
    for _ in range(args.reps):
        raw_runs.append(run_raw(raw, prompt, args.tokens))
        our_runs.append(run_ours(ours, template, prompt, args.tokens))
        default_runs.append(run_ours(hidden, template, prompt, args.tokens, "learned"))

    raw_s, our_s, default_s = summary(raw_runs), summary(our_runs), summary(default_runs)
    result = {
        "benchmark": "decode",
        "model": path.name,
        "prompt_tokens": len(prompt),
        "reps": args.reps,
        "threads": threads,
        "machine": machine_report(),
        "baseline_llama_cpp_create_completion": raw_s,
        "ours_decode_loop_with_query_unit": our_s,
        "ratio_tokens_per_s": our_s["tokens_per_s"] / raw_s["tokens_per_s"],
        "ratio_ttft": our_s["ttft_s"] / raw_s["ttft_s"],
        "ours_default_learned_unit_hidden_states": default_s,
        "default_ratio_tokens_per_s": default_s["tokens_per_s"] / raw_s["tokens_per_s"],
        "default_ratio_ttft": default_s["ttft_s"] / raw_s["ttft_s"],
        "target_ratio": 0.95,
    }
    if args.other_build:
        result["builds"] = compare_builds(args.other_build, args.reps, args.tokens)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"tokens generated: baseline {raw_s['tokens']}, ours {our_s['tokens']} (prompt {len(prompt)})")
    print(
        f"baseline create_completion: {raw_s['tokens_per_s']:.1f} tokens/s, first token {raw_s['ttft_s'] * 1000:.0f} ms"
    )
    print(
        f"ours (loop + query unit):   {our_s['tokens_per_s']:.1f} tokens/s, first token {our_s['ttft_s'] * 1000:.0f} ms"
    )
    print(
        f"ratio tokens/s: {result['ratio_tokens_per_s']:.3f} (target >= 0.95); "
        f"ratio first token: {result['ratio_ttft']:.3f}"
    )
    print(
        f"default (learned unit, hidden states): {default_s['tokens_per_s']:.1f} tokens/s, "
        f"first token {default_s['ttft_s'] * 1000:.0f} ms; "
        f"ratio tokens/s {result['default_ratio_tokens_per_s']:.3f}, first token {result['default_ratio_ttft']:.3f}"
    )
    if "builds" in result:
        b = result["builds"]
        print(f"pinned build: {b['pinned']['tokens_per_s']:.1f} tokens/s ({b['pinned']['build']})")
        print(f"other build:  {b['other']['tokens_per_s']:.1f} tokens/s ({b['other']['build']})")
        print(f"ratio pinned/other tokens/s: {b['ratio_tokens_per_s']:.3f}")


if __name__ == "__main__":
    main()
