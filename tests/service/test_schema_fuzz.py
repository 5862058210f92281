"""Schemathesis against the live service's own OpenAPI schema: whatever it sends, no 5xx.

A bounded run (a few examples per operation) so that `make test` stays quick; bench/fuzz.py
runs the same check with many more examples.
"""

from __future__ import annotations

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
        yield schemathesis.openapi.from_url(url + "/openapi.json")


def test_no_input_gets_a_server_error(api_schema) -> None:
    seen = fuzz(api_schema, examples=20)
    for route in ("POST /v1/chat/completions", "POST /v1/documents", "GET /v1/search", "DELETE /v1/documents/{doc_id}"):
        assert sum(seen[route].values()) >= 10, seen  # really exercised, not skipped
    # Some generated requests were valid and answered, some were refused as bad input.
    chat = seen["POST /v1/chat/completions"]
    assert chat[200] > 0 and chat[400] > 0, chat
