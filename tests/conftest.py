"""Expensive real components, loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from service.generator.backend import Backend
from service.generator.chat_template import ChatTemplate
from service.generator.llama_backend import LlamaCppBackend
from service.generator.model_files import default_gguf_path
from service.generator.transformers_backend import TransformersBackend

REPO = Path(__file__).resolve().parent.parent
STARTER = REPO / "index_data" / "starter"


@pytest.fixture(scope="session")
def llama_backend() -> LlamaCppBackend:
    return LlamaCppBackend(default_gguf_path(), n_ctx=4096)


@pytest.fixture(scope="session")
def hf_backend() -> TransformersBackend:
    gguf = default_gguf_path()
    # The project's own cache location: the conversion is paid once per machine, as for users.
    return TransformersBackend(gguf.parent, gguf_file=gguf.name, cache_root=REPO / "index_data" / "hf_cache")


@pytest.fixture(scope="session", params=["llama_cpp", "transformers"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each conformance test runs once per engine."""
    name = "llama_backend" if request.param == "llama_cpp" else "hf_backend"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(cache_root=REPO / "index_data" / "embedders")


@pytest.fixture(scope="session")
def starter_index(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> DocumentIndex:
    """The starter corpus in a real on-disk index of its own."""
    index = DocumentIndex(tmp_path_factory.mktemp("starter-index"), embedder)
    assert len(index.add_paths([STARTER])) >= 4
    return index


@pytest.fixture()
def template(backend: Backend) -> ChatTemplate:
    return ChatTemplate(backend)
