"""A real HTTP server on loopback that speaks SearxNG's JSON API over a small local corpus.

It stands in for the public web, which cannot be reached here. Tests switch its behaviour:
`mode` = ok | slow | error500 | error404 | garbage | empty | wrong_shape | down-after (see
below), and it counts the requests it received. It also serves pages for the fetch tests.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class SearchServer:
    def __init__(self, corpus: list[dict[str, str]], slow_s: float = 3.0) -> None:
        self.corpus = corpus
        self.mode = "ok"
        self.slow_s = slow_s
        self.fail_first = 0  # answer 503 to this many requests, then behave
        self.requests: list[str] = []
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.delays: dict[str, float] = {}  # seconds a page waits before it answers
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                server.requests.append(self.path)
                parts = urlsplit(self.path)
                if parts.path in server.pages:
                    status, headers, body = server.pages[parts.path]
                    time.sleep(server.delays.get(parts.path, 0.0))
                    self._send(status, body, headers)
                elif parts.path == "/search":
                    server._search(self, parse_qs(parts.query))
                else:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up on a slow answer
                    pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def _search(self, handler, query: dict[str, list[str]]) -> None:
        json_headers = {"Content-Type": "application/json"}
        if self.fail_first > 0:
            self.fail_first -= 1
            return handler._send(503, b'{"error": "busy"}', json_headers)
        if query.get("format") != ["json"]:
            return handler._send(403, b"format not allowed", {"Content-Type": "text/plain"})
        if self.mode == "slow":
            time.sleep(self.slow_s)
        if self.mode == "error500":
            return handler._send(500, b"<html>Internal Server Error</html>", {"Content-Type": "text/html"})
        if self.mode == "error404":
            return handler._send(404, b"{}", json_headers)
        if self.mode == "garbage":
            return handler._send(200, b"<html><body>definitely not json", json_headers)
        if self.mode == "wrong_shape":
            return handler._send(200, b'{"answers": ["no results key"]}', json_headers)
        words = set(re.findall(r"\w+", query.get("q", [""])[0].lower()))
        scored = []
        for doc in self.corpus:
            overlap = len(words & set(re.findall(r"\w+", (doc["title"] + " " + doc["content"]).lower())))
            if overlap:
                scored.append((overlap, doc))
        scored.sort(key=lambda pair: -pair[0])
        results = (
            []
            if self.mode == "empty"
            else [
                {"title": d["title"], "url": d["url"], "content": d["content"], "engine": "stub", "score": float(s)}
                for s, d in scored
            ]
        )
        body = {"query": query.get("q", [""])[0], "number_of_results": len(results), "results": results}
        handler._send(200, json.dumps(body).encode(), json_headers)

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
