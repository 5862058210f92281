"""What the service does once it has loaded its runtime itself, as `make run` starts it."""

from __future__ import annotations

import gc
import time

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.runtime.runtime import Runtime
from service.settings import Settings
from tests.conftest import REPO
from tests.scripted_model import Script, ScriptedBackend


def test_what_the_service_loaded_is_kept_out_of_full_garbage_collections(tmp_path, starter_index) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "embedders").symlink_to(REPO / "index_data" / "embedders")
    settings = Settings(data_dir=data, starter_corpus=tmp_path / "none")
    gc.unfreeze()  # whatever this process froze before
    try:
        given = Runtime(settings, ScriptedBackend(Script("Hello.")), starter_index)
        with TestClient(create_app(settings, runtime=given)) as client:
            assert client.get("/health").json()["status"] == "ok"
            assert gc.get_freeze_count() == 0  # a runtime given by its caller is the caller's business
        with TestClient(create_app(settings)) as client:
            deadline = time.time() + 120
            while (health := client.get("/health").json())["status"] == "loading":
                assert time.time() < deadline, "the runtime did not load"
                time.sleep(0.2)
            assert health["status"] == "ok", health
            # The model, embedder, index and their libraries' objects: hundreds of thousands.
            assert gc.get_freeze_count() > 100_000
            reply = client.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
            )
            assert reply.status_code == 200  # and it still answers
    finally:
        gc.unfreeze()
