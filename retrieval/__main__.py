"""`python -m retrieval index PATH… | search "query" | stats` over the service's data directory.

The defaults match the service's settings: RAGPAUSE_DATA_DIR, RAGPAUSE_EMBEDDER_PATH and
RAGPAUSE_EMBEDDER_BACKEND (or its old name RAGPAUSE_EMBEDDER_ENGINE) are read when set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _open(args: argparse.Namespace):
    from retrieval.document_index import DocumentIndex
    from retrieval.embedder import Embedder

    embedder = Embedder(args.embedder, args.backend, args.data_dir / "embedders")
    return DocumentIndex(args.data_dir, embedder)


def cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from retrieval.ingest_plan import expand_paths

    index = _open(args)
    files = expand_paths(args.paths)
    counts: dict[str, int] = {}
    failed = 0
    with tqdm(total=len(files), unit="file", disable=args.quiet) as bar:

        def progress(path: Path, result) -> None:
            nonlocal failed
            if isinstance(result, Exception):
                failed += 1
                tqdm.write(f"skipped {path}: {result}", file=sys.stderr)
            else:
                counts[result.status] = counts.get(result.status, 0) + 1
            bar.update(1)

        index.add_paths(files, progress=progress)
    index.close()
    print(json.dumps({**counts, "failed": failed, **index.stats()}))
    return 1 if failed and not counts else 0


def cmd_search(args: argparse.Namespace) -> int:
    index = _open(args)
    for n, passage in enumerate(index.search(args.query, k=args.k, mode=args.mode), start=1):
        print(f"[{n}] {passage.score:.4f} (cos {passage.similarity:.3f}) {passage.title} — {passage.source}")
        print("    " + passage.text[:300].replace("\n", " "))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    print(json.dumps(_open(args).stats(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrieval", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("RAGPAUSE_DATA_DIR", "index_data")))
    parser.add_argument("--embedder", default=os.environ.get("RAGPAUSE_EMBEDDER_PATH"))
    backend = os.environ.get("RAGPAUSE_EMBEDDER_BACKEND") or os.environ.get("RAGPAUSE_EMBEDDER_ENGINE") or "onnx-int8"
    parser.add_argument("--backend", default=backend, choices=["torch", "onnx", "onnx-int8"])
    sub = parser.add_subparsers(dest="command", required=True)
    p_index = sub.add_parser(
        "index", help="index files and folders (txt, md, html, pdf, office files, e-books, csv, images)"
    )
    p_index.add_argument("paths", nargs="+", type=Path)
    p_index.add_argument("--quiet", action="store_true", help="no progress bar")
    p_index.set_defaults(run=cmd_index)
    p_search = sub.add_parser("search", help="hybrid search")
    p_search.add_argument("query")
    p_search.add_argument("-k", type=int, default=5)
    p_search.add_argument("--mode", choices=["hybrid", "dense", "lexical"], default="hybrid")
    p_search.set_defaults(run=cmd_search)
    sub.add_parser("stats", help="documents, chunks, index kind").set_defaults(run=cmd_stats)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
