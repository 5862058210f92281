"""Schemathesis against the live service's own OpenAPI schema: whatever it sends, no 5xx.

A bounded run (a few examples per operation) so that `make test` stays quick; bench/fuzz.py
runs the same check with many more examples.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis

from tests.live_server import serve_empty_index
from tests.schema_fuzz import fuzz


@pytest.fixture(scope="module")
def api_schema(llama_backend, embedder, tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz")
    # Short answers: the fuzzer asks many questions, and their length is not what is tested.
    limits = dict(default_max_tokens=8, max_tokens_limit=16, max_upload_bytes=100_000, upload_wait_bytes=100_000)
    with serve_empty_index(llama_backend, embedder, data, **limits) as url:
        yield url, schemathesis.openapi.from_url(url + "/openapi.json")


def test_no_input_gets_a_server_error(api_schema) -> None:
    url, schema = api_schema
    seen = fuzz(schema, examples=20)
    for route in ("POST /v1/chat/completions", "POST /v1/documents", "GET /v1/search", "DELETE /v1/documents/{doc_id}"):
        assert sum(seen[route].values()) >= 10, seen  # really exercised, not skipped
    # Generated requests were refused as bad input (most generated chats have no question: an
    # empty or missing user message), and the service still answers a valid one afterwards.
    chat = seen["POST /v1/chat/completions"]
    assert chat[400] > 0 and set(chat) <= {200, 400, 413, 422}, chat
    valid = httpx.post(
        url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert valid.status_code == 200 and valid.json()["choices"][0]["message"]["content"]
