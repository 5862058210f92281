"""How decode-loop events become the text a client reads: only what no pause can take back,
joined as the loop joins it, with citations and a source list."""

from __future__ import annotations

from query_unit.types import TokenStep
from retrieval.types import Passage
from service.answer.citations import Citer, mark
from service.answer.completions import CompletionBuilder
from service.generator.events import DoneEvent, EvidenceEvent, PauseEvent, ResumeEvent, TokenEvent

PASSAGE = Passage(
    "Zorblax Quintaro was born in the harbour town of Vellmora.", "starter/zorblax.md", "Zorblax Quintaro"
)
OTHER = Passage("The Quintaro family sells glass lanterns.", "starter/lanterns.md", "Lanterns")


def token(text: str, committed: int) -> TokenEvent:
    return TokenEvent(text, TokenStep(0, text, 0.5, 1.0, 0.1, ((0, 0.5),)), committed)


def done(text: str) -> DoneEvent:
    return DoneEvent(text, "stop", 10, 5, 15, 0, 1, (PASSAGE,))


def test_withdrawn_draft_never_reaches_the_content(llama_backend) -> None:
    builder = CompletionBuilder(llama_backend, "m", False, 0, question="Where was Zorblax Quintaro born?")
    sent = []
    events = [
        token("He", 0),
        token(" lives.", 2),
        token(" Born in", 2),
        token(" Paris", 2),
        PauseEvent("unsure", "q", " Born in Paris", kept_tokens=2),
        EvidenceEvent("q", (PASSAGE, OTHER)),
        ResumeEvent(kept_tokens=2, evidence_tokens=40),
        token("Born", 0),
        token(" in", 0),
        token(" Vellmora.", 3),
        done("He lives. Born in Vellmora."),
    ]
    for event in events:
        chunk = builder.on_event(event)
        if chunk is not None:
            sent.append(chunk.choices[0].delta.content or "")
    sent += [c.choices[0].delta.content or "" for c in builder.final_chunks(False)]
    content = "".join(sent)
    assert "Paris" not in content
    assert content.startswith("He lives. Born in Vellmora [1].")
    assert content.endswith("Sources:\n[1] Zorblax Quintaro (starter/zorblax.md)\n[2] Lanterns (starter/lanterns.md)")
    assert builder.completion().choices[0].message.content == content
    # Drafts travel beside the content for clients that draw pauses.
    assert builder.on_event(token("x", 0)).draft == "x"


def test_citations_follow_the_words_a_sentence_takes_from_a_source() -> None:
    citer = Citer("Where was Zorblax Quintaro born?")
    citer.add_source(PASSAGE.text)
    citer.add_source(OTHER.text)
    assert citer.cite("Zorblax Quintaro was born in Vellmora.") == [1]
    assert citer.cite("The family makes glass lanterns.") == [2]
    assert citer.cite("Zorblax Quintaro was born.") == []  # only the question's own words
    assert mark("It is in Vellmora.", [1]) == "It is in Vellmora [1]."
    assert mark('He said "yes."\n', [1, 2]) == 'He said "yes [1][2]."\n'
    assert mark("No full stop", [2]) == "No full stop [2]"


def test_earlier_answers_lose_their_citations_before_the_model_reads_them() -> None:
    from service.answer.citations import strip_citations

    cited = (
        "He was born in Vellmora [1]. He sells lanterns [1][2].\n\nSources:\n[1] Zorblax (a.md)\n[2] Lanterns (b.md)"
    )
    assert strip_citations(cited) == "He was born in Vellmora. He sells lanterns."
    assert strip_citations("A list [1, 2] and [x] stay.") == "A list [1, 2] and [x] stay."
