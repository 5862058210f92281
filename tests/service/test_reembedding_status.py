"""/health and /metrics while the index re-embeds for a new embedder, and after."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.embedder_spec import spec_of
from service.api.app import create_app
from service.runtime.runtime import Runtime
from service.settings import Settings
from tests.retrieval.test_reembedding import CACHE, corpus
from tests.scripted_model import Script, ScriptedBackend


def gauges(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics").text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if "reembed" in s.name}


def test_health_and_metrics_show_the_reembedding_until_it_is_done(tmp_path, embedder) -> None:
    old = DocumentIndex(tmp_path, embedder)
    old.add_documents(corpus(12))
    old.close()
    new = Embedder(backend="onnx", cache_root=CACHE)
    index = DocumentIndex(tmp_path, new, reembed_batch=4, reembed_in_background=False)
    index.reembedding.run(batches=1)
    total = index.stats()["chunks"]
    settings = Settings(data_dir=tmp_path)
    app = create_app(settings, runtime=Runtime(settings, ScriptedBackend(Script("Hello.")), index))
    with TestClient(app) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok"
        assert health["reembedding"] == {
            "done": 4,
            "total": total,
            "from": spec_of(embedder).label,
            "to": spec_of(new).label,
            "dense": True,
        }
        assert gauges(client) == {"ragpause_reembed_done": 4, "ragpause_reembed_total": total}
        assert index.reembedding.run()
        assert "reembedding" not in client.get("/health").json()
        assert gauges(client) == {"ragpause_reembed_done": 0, "ragpause_reembed_total": 0}
