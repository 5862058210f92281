"""The service as `make run` starts it: Runtime.load builds an engine that reports hidden states
and answers with the default query unit, the learned one, over real HTTP with the official
client."""

from __future__ import annotations

import openai

from query_unit.features import QuestionFeatures
from query_unit.learned import LearnedUnit
from service.api.app import create_app
from service.generator.chat_template import ChatMessage
from service.generator.decode_loop import question_signals
from service.runtime.runtime import Runtime
from service.settings import Settings
from tests.conftest import REPO, STARTER
from tests.known_fact import ANSWER, QUESTION, SYSTEM_PROMPT, assert_decisive
from tests.live_server import serve

INVENTED = "Where was Zorblax Quintaro born?"
# Gate scores must clear the threshold by this much either way: the decision is no near tie
# that another CPU's kernels could turn.
GATE_MARGIN = 0.1


def gate_score(engine: Runtime, unit: LearnedUnit, question: str) -> float:
    messages = [ChatMessage("user", question)]
    prompt = engine.template.prompt(messages, engine.settings.model.system_prompt)
    span = engine.template.question_span(prompt, messages)
    loaded = engine.backend.load_prompt(prompt, score_from=span[0])
    turn = unit.begin_turn(question)
    features = QuestionFeatures(question_signals(engine.backend, prompt, span, loaded.scores), turn.local_similarity)
    weights = unit.weights
    return weights.gate.score(weights.gate_features(features.as_list(), features.hidden))


def test_the_default_service_decides_with_the_learned_unit(tmp_path) -> None:
    (tmp_path / "embedders").symlink_to(REPO / "index_data" / "embedders")
    settings = Settings(data_dir=tmp_path, starter_corpus=STARTER, system_prompt=SYSTEM_PROMPT)
    assert settings.unit.query_unit == "learned"
    engine = Runtime.load(settings)
    unit = engine.unit_for("auto", "auto")
    assert isinstance(unit, LearnedUnit) and engine.backend.hidden_states
    assert_decisive(engine.backend, SYSTEM_PROMPT)

    known, invented = gate_score(engine, unit, QUESTION), gate_score(engine, unit, INVENTED)
    assert known < unit.threshold - GATE_MARGIN < unit.threshold + GATE_MARGIN < invented, (
        known,
        unit.threshold,
        invented,
    )

    with serve(create_app(settings, runtime=engine)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model="x", messages=[{"role": "user", "content": QUESTION}], max_tokens=30
        )
        assert not reply.model_extra["pauses"] and ANSWER in reply.choices[0].message.content
        reply = client.chat.completions.create(
            model="x", messages=[{"role": "user", "content": INVENTED}], max_tokens=60
        )
        assert reply.model_extra["pauses"] and "zorblax" in reply.model_extra["sources"][0]["source"]
        assert "Vellmora" in reply.choices[0].message.content
