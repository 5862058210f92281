"""The OpenAPI schema documents every response body, in the models the routes really send."""

from __future__ import annotations

import json
import re

from service.api.app import create_app
from service.api.responses import ChatCompletionChunk, Delta, Job
from service.settings import Settings


def schema() -> dict:
    return create_app(Settings()).openapi()


def test_every_route_documents_its_bodies_and_every_reference_resolves() -> None:
    spec = schema()
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert len(operations) >= 8
    for path, method, op in operations:
        answers = op["responses"]
        success = [code for code in answers if code.startswith("2")]
        assert success, f"{method} {path} documents no success"
        for code in success:
            content = answers[code].get("content", {})
            assert any("schema" in body and body["schema"] for body in content.values()), f"{method} {path} {code}"
        # An invalid request is a 400 in OpenAI's envelope, never FastAPI's 422 validation body.
        assert "HTTPValidationError" not in json.dumps(answers)
        if path.startswith("/v1/"):  # behind the API key; every error in OpenAI's envelope
            assert "401" in answers
            for code, answer in answers.items():
                if code[0] in "45":
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.rsplit("/", 1)[1] in ("ErrorResponse", "JobFailure"), f"{method} {path} {code}"
    defined = set(spec["components"]["schemas"])
    assert set(re.findall(r"#/components/schemas/(\w+)", json.dumps(spec))) <= defined


def test_the_stream_documents_its_chunks_and_leaves_our_fields_out_when_unused() -> None:
    spec = schema()
    chat = spec["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert chat["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatCompletion"}
    assert chat["text/event-stream"]["schema"] == {"$ref": "#/components/schemas/ChatCompletionChunk"}
    assert "pause" in spec["components"]["schemas"]["ChatCompletionChunk"]["properties"]
    # A client that knows only OpenAI's chunk sees only OpenAI's fields, and null where OpenAI has null.
    chunk = ChatCompletionChunk(id="c", created=0, model="m", choices=[{"delta": Delta(content="Hi")}])
    assert chunk.model_dump(mode="json") == {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None, "logprobs": None}],
    }


def test_a_job_lists_only_what_each_result_has() -> None:
    job = Job.model_validate(
        {
            "id": "j",
            "status": "failed",
            "progress": {"done": 1, "total": 1},
            "created_at": 1.0,
            "finished_at": 2.0,
            "results": [{"name": "a.pdf", "status": "failed", "error": "no text"}],
            "error": "no document could be read",
        }
    )
    assert job.model_dump(mode="json")["results"] == [{"name": "a.pdf", "status": "failed", "error": "no text"}]
