"""The form of an answer as a person reads it: citation markers only where a sentence ends,
never inside a number, an abbreviation or a URL, streamed or not; a source list that names
every source. The decode loop runs on the scripted engine (one byte a token, so "61.1%" comes
as "6", "1", ".", "1", "%") over a real index."""

from __future__ import annotations

import asyncio
import re

import pytest

from query_unit.heuristic import HeuristicUnit
from query_unit.turn import UnitTools
from retrieval.chunking import sentence_spans
from retrieval.document_index import DocumentIndex, DocumentInput
from retrieval.types import Passage
from service.answer.citations import source_list, strip_citations
from service.answer.completions import CompletionBuilder, collect
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.decode_loop import generate
from service.generator.events import PauseEvent
from tests.scripted_model import Script, ScriptedBackend

QUESTION = "How did the harbour of Vellmora grow?"
FACTS = (
    "The harbour of Vellmora grew by 61.1% between 1990 and 2010. Its fleet rose to 90.04% of capacity. "
    "Dr. Quintaro counted the eels at 10:30 a.m. for the U.S. Army, e.g. in the docks, on Python 3.11 "
    "servers, and wrote it up at https://vellmora.example/port.html for all to read."
)
# Sentences as the model writes them: numbers, times, versions, abbreviations, an ellipsis, a URL.
ANSWER = (
    "The harbour grew by 61.1% between 1990 and 2010, e.g. for the U.S. Army docks. "
    "Its fleet rose to 90.04% of capacity at 10:30 a.m. on Python 3.11 servers... "
    "Dr. Quintaro wrote it up at https://vellmora.example/port.html. The eels were counted."
)


@pytest.fixture()
def harbour(tmp_path, embedder) -> DocumentIndex:
    index = DocumentIndex(tmp_path, embedder)
    index.add_documents([DocumentInput(FACTS, title="Vellmora harbour", source="harbour.md", doc_id="harbour")])
    return index


def builder_for(index: DocumentIndex) -> tuple[CompletionBuilder, list]:
    """An answer written after searching (the first word is unsure), as the API would build it."""
    script = Script(draft="Kelt.", answer=ANSWER, needs="61.1%", unsure=frozenset({"Kelt"}))
    backend = ScriptedBackend(script)
    template = ChatTemplate(backend)
    unit = HeuristicUnit(UnitTools(index, lambda s: len(backend.tokenize(s))))
    prompt = template.prompt([ChatMessage("user", QUESTION)], "Be brief.")
    events = list(generate(backend, template, prompt, unit.begin_turn(QUESTION)))
    return CompletionBuilder(backend, "m", False, 0, question=QUESTION), events


def streamed(index: DocumentIndex) -> tuple[str, list[str]]:
    builder, events = builder_for(index)
    deltas = [chunk.choices[0].delta.content or "" for e in events if (chunk := builder.on_event(e)) is not None]
    deltas += [c.choices[0].delta.content or "" for c in builder.final_chunks(False)]
    return "".join(deltas), deltas


def whole(index: DocumentIndex) -> str:
    builder, events = builder_for(index)

    async def replay():  # type: ignore[no-untyped-def]
        for event in events:
            yield event

    return asyncio.run(collect(builder, replay())).choices[0].message.content


def test_markers_go_where_sentences_end_never_inside_a_number_abbreviation_or_url(harbour) -> None:
    content, deltas = streamed(harbour)
    body = content.split("\n\nSources:\n")[0]
    assert strip_citations(body) == ANSWER, "markers are only ever added, never cut into the text"
    assert body == (
        "The harbour grew by 61.1% between 1990 and 2010, e.g. for the U.S. Army docks [1]. "
        "Its fleet rose to 90.04% of capacity at 10:30 a.m. on Python 3.11 servers [1]... "
        "Dr. Quintaro wrote it up at https://vellmora.example/port.html [1]. The eels were counted [1]."
    )
    # Each sentence arrived whole: no delta ends inside a number or right after an initial.
    assert not any(re.search(r"\d\.$|\bU\.$|\ba\.m\.$|\bDr\.$", d) for d in deltas)


def test_the_streamed_content_equals_the_answer_sent_whole(harbour) -> None:
    assert streamed(harbour)[0] == whole(harbour)


def test_a_pause_after_a_decimal_withdraws_the_whole_sentence(tmp_path, embedder) -> None:
    """ "61." followed by "1%" is not the end of a sentence: a pause later in that sentence takes
    back all of it, not the half after the decimal point."""
    index = DocumentIndex(tmp_path, embedder)
    index.add_documents([DocumentInput("Zorblax Quintaro was born in Vellmora in 1931.", source="z.md")])
    script = Script(
        draft="Zorblax is a painter. He was 61.1% sure of Kelt.",
        answer=" He was born in Vellmora.",
        needs="Vellmora",
        unsure=frozenset({"Kelt"}),
    )
    backend = ScriptedBackend(script)
    template = ChatTemplate(backend)
    unit = HeuristicUnit(UnitTools(index, lambda s: len(backend.tokenize(s))))
    question = "Where was Zorblax born?"
    prompt = template.prompt([ChatMessage("user", question)], "Be brief.")
    events = list(generate(backend, template, prompt, unit.begin_turn(question)))
    pause = next(e for e in events if isinstance(e, PauseEvent))
    assert pause.kept_tokens == len("Zorblax is a painter.") and pause.retracted == " He was 61.1% sure of "
    assert events[-1].text == "Zorblax is a painter. He was born in Vellmora."


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("It grew by 61.1% in 2010. It fell.", ["It grew by 61.1% in 2010.", "It fell."]),
        (
            "He served the U.S. Army. Then he left the U.S. The end.",
            ["He served the U.S. Army.", "Then he left the U.S.", "The end."],
        ),
        ("See e.g. Python 3.11 at 10:30 a.m. today. Fine.", ["See e.g. Python 3.11 at 10:30 a.m. today.", "Fine."]),
        ("Wait... What? Read https://x.example/a.b. Ok.", ["Wait...", "What?", "Read https://x.example/a.b.", "Ok."]),
        ("Dr. J. Smith said so. He did.", ["Dr. J. Smith said so.", "He did."]),
    ],
)
def test_sentences_end_where_a_reader_says_they_do(text: str, sentences: list[str]) -> None:
    assert [text[s:e] for s, e in sentence_spans(text)] == sentences


def test_every_source_in_the_list_is_named_without_empty_parentheses() -> None:
    listing = source_list(
        [
            Passage("t", source="", title="Victoria (Australia)", collection="default"),
            Passage("t", source="", title="Handbook", collection="team-a", doc_id="handbook"),
            Passage("t", source="notes.md", title="Notes", collection="default"),
            Passage("t", source="https://example.org/a", title="", collection="default"),
            Passage("t", source="", title="", collection="default", doc_id="d03"),
        ]
    )
    assert "()" not in listing
    assert listing.split("Sources:\n")[1].splitlines() == [
        "[1] Victoria (Australia)",
        "[2] Handbook (collection team-a)",
        "[3] Notes (notes.md)",
        "[4] https://example.org/a",
        "[5] document d03",
    ]
