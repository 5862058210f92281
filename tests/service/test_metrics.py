"""/metrics: the counters an operator scrapes follow what the answers did."""

from __future__ import annotations

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.known_fact import ANSWER, QUESTION, SYSTEM_PROMPT, assert_decisive
from tests.live_server import serve_engine


@pytest.fixture(scope="module")
def base_url(llama_backend, starter_index):
    with serve_engine(llama_backend, starter_index) as url:
        yield url


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_answers_tokens_pauses_and_search_outcomes(base_url, starter_index, llama_backend) -> None:
    assert_decisive(llama_backend, SYSTEM_PROMPT)
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=60)
    before = scrape(base_url)
    found = client.chat.completions.create(
        model="x", messages=[{"role": "user", "content": "Where was Zorblax Quintaro born?"}], max_tokens=60
    )
    streamed = client.chat.completions.create(
        model="x", messages=[{"role": "user", "content": QUESTION}], max_tokens=20, stream=True
    )
    assert ANSWER in "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    after = scrape(base_url)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("ragpause_answers_total", finish="stop") == 2
    assert grew("ragpause_pauses_total") >= 1 and grew("ragpause_searches_total", outcome="found") >= 1
    assert grew("ragpause_generated_tokens_total") >= found.usage.completion_tokens
    assert grew("ragpause_first_token_seconds_count") >= 1 and grew("ragpause_answer_seconds_count") >= 1
    assert after[("ragpause_index_chunks", ())] == starter_index.stats()["chunks"]
    assert after[("ragpause_generating", ())] >= 0 and ("ragpause_queued", ()) in after
