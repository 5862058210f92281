"""The two Milvus collections the Milvus index keeps, and the literals its filters may hold.

Named "tables" here, because "collection" already means a set of documents one API key may
read. `<prefix>_versions`: one row per written version of a document (its key, a hash of
(collection, id), and the version of its chunks), a deletion being a version too (a tombstone);
a document is its newest version. `<prefix>_chunks`: one row per chunk with its document's
fields denormalized (what a passage shows), its key and version, its dense vector, and a sparse
BM25 vector Milvus derives from its text. (Before versions had rows of their own, documents
were `<prefix>_documents`, one row per key: milvus_index.py moves such rows over.)
"""

from __future__ import annotations

import hashlib
import re

from bm25s.stopwords import STOPWORDS_EN
from pymilvus import DataType, Function, FunctionType, MilvusClient

TEXT_BYTES = 65_535  # Milvus's largest VARCHAR
PLACEHOLDER_DIM = 2  # Milvus wants a vector field in every collection; documents have none of their own
EMBEDDER_PROPERTY = "ragpause.embedder"  # the record of the embedder that made the chunks' vectors

# Tokens as bm25s makes them: lowercase words, English stop words out, English stems. Milvus
# servers apply all three; milvus-lite has no stemmer and applies the first two.
ANALYZER = {
    "tokenizer": "standard",
    "filter": [
        "lowercase",
        {"type": "stop", "stop_words": sorted(STOPWORDS_EN)},
        {"type": "stemmer", "language": "english"},
    ],
}
# bm25s's defaults (Milvus's own k1 is 1.2).
BM25_PARAMS = {"bm25_k1": 1.5, "bm25_b": 0.75}


def document_key(collection: str, doc_id: str) -> str:
    """A document's primary key: a hash, so that no id a user chose ever enters a filter."""
    return hashlib.sha256(f"{collection}\0{doc_id}".encode()).hexdigest()[:32]


_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def literal(value: str) -> str:
    """A string as a filter literal. Only keys, hashes and checked collection names get here;
    anything else is refused rather than escaped (escaping rules differ between Milvus and
    milvus-lite, and milvus-lite does not take filter templates)."""
    if not _SAFE.match(value):
        raise ValueError(f"not a safe filter literal: {value!r}")
    return f'"{value}"'


def one_of(field: str, values: list[str]) -> str:
    return f"{field} in [{', '.join(literal(v) for v in values)}]"


def version_row(key: str, version: int) -> str:
    """A version row's primary key."""
    return f"{key}-{version}"


def create_versions(client: MilvusClient, name: str) -> None:
    schema = client.create_schema(auto_id=False)
    schema.add_field("row", DataType.VARCHAR, max_length=96, is_primary=True)  # version_row(key, version)
    schema.add_field("key", DataType.VARCHAR, max_length=64)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("collection", DataType.VARCHAR, max_length=64)
    schema.add_field("content_hash", DataType.VARCHAR, max_length=64)
    schema.add_field("title", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("source", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("media_type", DataType.VARCHAR, max_length=1024)
    schema.add_field("n_chars", DataType.INT64)
    schema.add_field("n_chunks", DataType.INT64)
    schema.add_field("created_at", DataType.DOUBLE)
    schema.add_field("updated_at", DataType.DOUBLE)
    schema.add_field("titled", DataType.BOOL)  # its chunks were embedded with its title
    schema.add_field("version", DataType.INT64)  # its chunks' version (ordered: the newest is the document)
    schema.add_field("deleted", DataType.BOOL)  # a tombstone: the document was deleted at this version
    schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=PLACEHOLDER_DIM)
    index = client.prepare_index_params()
    index.add_index("placeholder", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def create_chunks(client: MilvusClient, name: str, dim: int, embedder_record: str) -> None:
    schema = client.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_key", DataType.VARCHAR, max_length=64)
    schema.add_field("version", DataType.INT64)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("collection", DataType.VARCHAR, max_length=64)
    schema.add_field("title", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("source", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("seq", DataType.INT64)
    schema.add_field("char_start", DataType.INT64)
    schema.add_field("char_end", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES, enable_analyzer=True, analyzer_params=ANALYZER)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    # Milvus derives each chunk's BM25 term vector from its text.
    schema.add_function(Function("bm25", FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    # Exact search, as FAISS below its HNSW threshold; vectors are normalized, so IP is the cosine.
    index.add_index("vector", index_type="FLAT", metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25_PARAMS)
    client.create_collection(
        name,
        schema=schema,
        index_params=index,
        consistency_level="Strong",
        properties={EMBEDDER_PROPERTY: embedder_record},
    )
