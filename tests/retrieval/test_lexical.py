"""BM25 over an index whose chunks hold no searchable word (a document "0", "and the"): bm25s
cannot index an empty vocabulary, and a search must find nothing, not fail."""

from __future__ import annotations

from retrieval.lexical import LexicalIndex


def test_chunks_of_stop_words_only_are_searched_without_failing() -> None:
    lexical = LexicalIndex()
    lexical.rebuild(1, [7], ["and the"])
    assert lexical.search("and the", 3) == []
    lexical.rebuild(2, [7, 8], ["and the", "glass eels migrate"])
    assert [chunk for chunk, _ in lexical.search("eels", 3)] == [8]
