"""Collections and the keys that may use them, over real HTTP: a key never sees, searches or
cites another key's documents; a wrong key is a 401, a collection it may not read a 404, one it
may read but not change a 403, and none of them ever returns the data."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.live_server import serve_empty_index

QUESTION = "Where was Zorblax Quintaro born?"
KEYS = [
    {"key": "key-a", "name": "team-a", "read": ["team-a"], "write": ["team-a"]},
    {"key": "key-b", "name": "team-b", "read": ["team-b", "default"], "write": ["team-b"]},
    {"key": "key-reader", "name": "reader", "read": ["team-a"], "write": []},
]


def as_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def base_url(llama_backend, embedder, tmp_path_factory):
    data = tmp_path_factory.mktemp("collections")
    with serve_empty_index(llama_backend, embedder, data, api_key="key-admin", api_keys=KEYS) as url:
        for key, collection, place in (("key-a", "team-a", "Vellmora"), ("key-b", "team-b", "Tarnwick")):
            text = f"# Zorblax Quintaro\n\nZorblax Quintaro is a glass-eel biologist. He was born in {place}."
            made = httpx.post(
                url + "/v1/documents",
                params={"collection": collection},
                json={"text": text, "id": "quintaro", "source": f"{collection}/quintaro.md"},
                headers=as_key(key),
                timeout=60,
            )
            assert made.status_code == 201, made.text
            assert made.json()["results"][0]["collection"] == collection
        yield url


def test_two_keys_same_question_different_sources_and_answers(base_url) -> None:
    replies = {}
    for key in ("key-a", "key-b"):
        client = openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0, timeout=120)
        replies[key] = client.chat.completions.create(
            model="x",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=40,
            extra_body={"retrieval": "always"},
        )
    a, b = (replies[k].model_extra["sources"] for k in ("key-a", "key-b"))
    assert [s["source"] for s in a] == ["team-a/quintaro.md"] and "Vellmora" in a[0]["text"]
    assert [s["source"] for s in b] == ["team-b/quintaro.md"] and "Tarnwick" in b[0]["text"]
    assert replies["key-a"].choices[0].message.content != replies["key-b"].choices[0].message.content
    # Neither answer carries a word of the other team's document.
    assert "Tarnwick" not in replies["key-a"].choices[0].message.content
    assert "Vellmora" not in replies["key-b"].choices[0].message.content
    # A key may narrow its search to a collection it reads, never widen it to another's.
    asked = httpx.post(
        base_url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": QUESTION}], "collections": ["team-b"]},
        headers=as_key("key-a"),
    )
    assert asked.status_code == 404 and asked.json()["error"]["code"] == "no_collection"
    assert "Tarnwick" not in asked.text


def test_listing_reading_and_searching_see_only_readable_collections(base_url) -> None:
    listed = httpx.get(base_url + "/v1/documents", headers=as_key("key-a")).json()
    assert [(d["id"], d["collection"]) for d in listed["data"]] == [("quintaro", "team-a")] and listed["total"] == 1
    both = httpx.get(base_url + "/v1/documents", headers=as_key("key-admin")).json()
    assert sorted(d["collection"] for d in both["data"]) == ["team-a", "team-b"]
    collections = httpx.get(base_url + "/v1/collections", headers=as_key("key-a")).json()["data"]
    assert [(c["id"], c["documents"], c["writable"]) for c in collections] == [("team-a", 1, True)]
    reader = httpx.get(base_url + "/v1/collections", headers=as_key("key-reader")).json()["data"]
    assert [(c["id"], c["writable"]) for c in reader] == [("team-a", False)]

    mine = httpx.get(base_url + "/v1/documents/quintaro", params={"collection": "team-a"}, headers=as_key("key-a"))
    assert mine.status_code == 200 and "Vellmora" in mine.json()["text"]
    for path, params in (
        ("/v1/documents/quintaro", {"collection": "team-b"}),
        ("/v1/documents", {"collection": "team-b"}),
        ("/v1/search", {"q": QUESTION, "collection": "team-b"}),
    ):
        refused = httpx.get(base_url + path, params=params, headers=as_key("key-a"))
        assert refused.status_code == 404 and "Tarnwick" not in refused.text, path
    found = httpx.get(base_url + "/v1/search", params={"q": QUESTION}, headers=as_key("key-a")).json()["data"]
    assert found and {p["collection"] for p in found} == {"team-a"}


def test_writing_needs_write_access_and_jobs_belong_to_their_key(base_url) -> None:
    text = {"text": "The Corvane bell rings at dawn in Tessaly.", "id": "bell"}
    # Readable but not writable: 403. Not even readable: 404, as if it did not exist.
    for key, collection, status in (("key-reader", "team-a", 403), ("key-a", "team-b", 404)):
        refused = httpx.post(
            base_url + "/v1/documents", params={"collection": collection}, json=text, headers=as_key(key)
        )
        assert refused.status_code == status, refused.text
        deleted = httpx.delete(
            base_url + "/v1/documents/quintaro", params={"collection": collection}, headers=as_key(key)
        )
        assert deleted.status_code == status
    # The collection named in the body wins over the query's default, and is checked the same way.
    body = {"documents": [text], "collection": "team-b"}
    assert httpx.post(base_url + "/v1/documents", json=body, headers=as_key("key-a")).status_code == 404
    assert httpx.get(base_url + "/v1/documents/quintaro", params={"collection": "team-b"}, headers=as_key("key-b"))
    made = httpx.post(base_url + "/v1/documents", json=body, headers=as_key("key-b"), timeout=60).json()
    assert made["results"][0] | {"chunks": 1} == {
        "name": "bell",
        "status": "added",
        "collection": "team-b",
        "id": "bell",
        "title": "The Corvane bell rings at dawn in Tessaly.",
        "chunks": 1,
    }
    job = f"/v1/documents/jobs/{made['id']}"
    assert httpx.get(base_url + job, headers=as_key("key-b")).status_code == 200
    assert httpx.get(base_url + job, headers=as_key("key-admin")).status_code == 200
    assert httpx.get(base_url + job, headers=as_key("key-a")).status_code == 404
    wrong = httpx.get(base_url + "/v1/documents", headers=as_key("key-c"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    bad = httpx.post(base_url + "/v1/documents", params={"collection": "Team B"}, json=text, headers=as_key("key-b"))
    assert bad.status_code == 400


def test_a_grant_to_write_a_collection_lets_its_key_read_it_and_names_are_unique() -> None:
    from pydantic import ValidationError

    from service.api.access import Principal, require_write, search_scope
    from service.settings import Settings

    writer = Principal("w", frozenset(), frozenset({"inbox"}))
    assert writer.may_read("inbox") and require_write(writer, "inbox") == "inbox"
    assert search_scope(writer, None) == ["inbox"] and not writer.may_read("default")
    assert search_scope(Principal("all", frozenset(), frozenset({"*"})), None) is None
    with pytest.raises(ValidationError, match="name of its own"):
        Settings(api_keys=[{"key": "k1", "name": "team"}, {"key": "k2", "name": "team"}])
    with pytest.raises(ValidationError, match="the same"):
        Settings(api_key="k1", api_keys=[{"key": "k1", "name": "team"}])
