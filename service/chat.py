"""`python -m service.chat` (or `ragpause-chat`): chat with a running service in the terminal.

Streams the answer as it is written and shows each pause where it happens: the draft it
withdrew, what it searched for, and which sources came back; the sources are listed at the end.
Ctrl-C stops the answer being written (the conversation goes on); at the prompt it ends the chat.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import httpx

DIM, STRIKE, RESET = "\033[2m", "\033[9m", "\033[0m"


def stream_chunks(client: httpx.Client, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise RuntimeError(f"{response.status_code}: {message}")
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            yield json.loads(line[6:])


class Printer:
    """Draws one answer: drafts as they come, pauses on their own lines."""

    def __init__(self, out: TextIO, color: bool) -> None:
        self.out = out
        self.color = color
        self.line = ""  # the draft on the current line, to withdraw text from

    def style(self, text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def chunk(self, chunk: dict[str, Any]) -> str | None:
        if "error" in chunk:
            self.out.write("\n" + self.style(f"[error: {chunk['error']['message']}]", DIM) + "\n")
            return None
        if chunk.get("draft"):
            self.out.write(chunk["draft"])
            self.line += chunk["draft"]
        if "pause" in chunk:
            pause = chunk["pause"]
            withdrawn = pause.get("retracted", "").strip()
            note = f"[paused: searching “{pause['query']}”"
            note += f", withdrawing “{withdrawn}”]" if withdrawn else "]"
            self.out.write("\n" + self.style(note, DIM) + "\n")
            self.line = ""
        if "evidence" in chunk:
            evidence = chunk["evidence"]
            if evidence.get("error"):
                found = f"[search failed: {evidence['error']}]"
            elif evidence["sources"]:
                found = (
                    "[found: "
                    + "; ".join(f"[{s['id']}] {s['title'] or s['source']}" for s in evidence["sources"])
                    + "]"
                )
            else:
                found = "[nothing new found]"
            self.out.write(self.style(found, DIM) + "\n")
        self.out.flush()
        return chunk.get("answer")

    def sources(self, sources: list[dict[str, Any]]) -> None:
        if sources:
            self.out.write("\n" + self.style("Sources:", DIM) + "\n")
            for s in sources:
                self.out.write(self.style(f"  [{s['id']}] {s.get('name') or s['title'] or s['source']}", DIM) + "\n")


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("RAGPAUSE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("RAGPAUSE_API_KEY"))
    parser.add_argument("--retrieval", choices=["auto", "always", "off"], default="auto")
    parser.add_argument("--sources", choices=["auto", "local", "web", "both"], default="auto")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("question", nargs="*", help="ask this once and exit (default: a conversation on stdin)")
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    printer = Printer(stdout, color=stdout.isatty())
    history: list[dict[str, str]] = []
    questions = [" ".join(args.question)] if args.question else None
    with httpx.Client(base_url=args.url, headers=headers, timeout=httpx.Timeout(300, connect=5)) as client:
        while True:
            if questions is not None:
                if not questions:
                    return 0
                question = questions.pop()
            else:
                if stdout.isatty():
                    stdout.write("\n> ")
                    stdout.flush()
                try:
                    question = stdin.readline()
                except KeyboardInterrupt:  # Ctrl-C at the prompt ends the chat
                    stdout.write("\n")
                    return 0
                if not question:
                    return 0
                question = question.strip()
                if not question:
                    continue
            history.append({"role": "user", "content": question})
            body = {
                "messages": history,
                "stream": True,
                "max_tokens": args.max_tokens,
                "retrieval": args.retrieval,
                "sources": args.sources,
            }
            answer, committed, sources = "", "", []
            try:
                for chunk in stream_chunks(client, body):
                    answer = printer.chunk(chunk) or answer
                    sources = chunk.get("sources", sources)
                    committed += "".join(
                        (c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or []
                    )
            except KeyboardInterrupt:
                # Ctrl-C stops this answer (closing the stream frees the service's slot); in a
                # conversation the chat goes on with what was final so far.
                stdout.write(" [stopped]\n")
                if questions is not None:
                    return 130
                if committed:
                    history.append({"role": "assistant", "content": committed})
                else:
                    history.pop()
                continue
            except (RuntimeError, httpx.HTTPError) as exc:
                stdout.write(f"\n[error: {exc}]\n")
                history.pop()
                if questions is not None:
                    return 1
                continue
            stdout.write("\n")
            printer.sources(sources)
            history.append({"role": "assistant", "content": answer})


if __name__ == "__main__":
    raise SystemExit(main())
