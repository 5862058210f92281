"""Token choice and confidence signals on hand-made logits."""

from __future__ import annotations

import math

import numpy as np

from service.generator.sampling import Sampler, SamplingParams


def piece(token_id: int) -> str:
    return f"<{token_id}>"


def test_greedy_signals_match_the_softmax() -> None:
    logits = np.array([1.0, 3.0, 2.0, -1.0] + [-5.0] * 60, dtype=np.float32)
    step = Sampler(SamplingParams()).step(logits, piece)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    assert step.token_id == 1 and step.text == "<1>"
    assert math.isclose(step.prob, probs[1], rel_tol=1e-5)
    assert math.isclose(step.entropy, float(-(probs * np.log(probs)).sum()), rel_tol=1e-4)
    assert math.isclose(step.margin, probs[1] - probs[2], rel_tol=1e-5)
    assert [t for t, _ in step.top][:4] == [1, 2, 0, 3]  # the fifth is one of many ties


def test_banned_tokens_are_never_chosen_and_signals_stay_finite() -> None:
    logits = np.array([9.0, 1.0, 0.5] + [0.0] * 10, dtype=np.float32)
    step = Sampler(SamplingParams()).step(logits, piece, banned=frozenset({0}))
    assert step.token_id == 1 and math.isfinite(step.entropy)
    assert logits[0] == 9.0  # the caller's logits are untouched


def test_temperature_sampling_follows_the_distribution_and_the_seed() -> None:
    logits = np.log(np.array([0.5, 0.3, 0.2] + [1e-9] * 20, dtype=np.float32))
    sampler = Sampler(SamplingParams(temperature=1.0, seed=3))
    counts = np.bincount([sampler.step(logits, piece).token_id for _ in range(3000)], minlength=3)
    assert np.allclose(counts[:3] / 3000, [0.5, 0.3, 0.2], atol=0.04)
    again = Sampler(SamplingParams(temperature=1.0, seed=3))
    first = Sampler(SamplingParams(temperature=1.0, seed=3))
    assert [again.step(logits, piece).token_id for _ in range(50)] == [
        first.step(logits, piece).token_id for _ in range(50)
    ]


def test_any_signed_64_bit_seed_works_and_keeps_its_own_stream() -> None:
    """The fuzzer found a negative seed answering 500; OpenAI's seed is any signed 64-bit integer."""
    logits = np.log(np.array([0.4, 0.3, 0.3] + [1e-9] * 20, dtype=np.float32))

    def draws(seed: int) -> list[int]:
        sampler = Sampler(SamplingParams(temperature=1.0, seed=seed))
        return [sampler.step(logits, piece).token_id for _ in range(40)]

    assert draws(-7) == draws(-7) and draws(-(2**63)) == draws(-(2**63))
    assert draws(-7) != draws(7)


def test_penalties_change_the_choice_but_not_the_signals() -> None:
    logits = np.array([1.0, 3.0, 2.5] + [-5.0] * 20, dtype=np.float32)
    plain = Sampler(SamplingParams()).step(logits, piece)
    # Token 1 already occurs twice: 3.0 - 2 * 0.5 = 2.0 falls below token 2's 2.5.
    frequency = Sampler(SamplingParams(frequency_penalty=0.5)).step(logits, piece, counts={1: 2})
    assert plain.token_id == 1 and frequency.token_id == 2
    assert frequency.entropy == plain.entropy and frequency.top == plain.top
    assert math.isclose(frequency.prob, plain.top[1][1], rel_tol=1e-6), "the chosen token's own probability"
    # Presence counts once, however often: 3.0 - 0.4 stays above 2.5.
    assert Sampler(SamplingParams(presence_penalty=0.4)).step(logits, piece, counts={1: 5}).token_id == 1
    assert Sampler(SamplingParams(presence_penalty=0.6)).step(logits, piece, counts={1: 1}).token_id == 2
    # A negative penalty favours what was said: token 0 climbs from 1.0 to 4.0.
    assert Sampler(SamplingParams(frequency_penalty=-1.5)).step(logits, piece, counts={0: 2}).token_id == 0
    withdrawn = Sampler(SamplingParams(frequency_penalty=2.0)).step(logits, piece, counts={1: 0})
    assert withdrawn.token_id == 1, "a count back at zero (its tokens withdrawn) does not penalize"


def test_logit_bias_moves_the_choice_not_the_signals() -> None:
    logits = np.array([1.0, 3.0, 2.5] + [-5.0] * 20, dtype=np.float32)
    plain = Sampler(SamplingParams()).step(logits, piece)
    biased = Sampler(SamplingParams(logit_bias=((1, -100.0), (0, 1.0)))).step(logits, piece)
    assert biased.token_id == 2 and biased.top == plain.top
    assert Sampler(SamplingParams(logit_bias=((5, 10.0),))).step(logits, piece).token_id == 5
    assert logits[1] == 3.0  # the caller's logits are untouched


def test_top_p_keeps_only_the_nucleus() -> None:
    logits = np.log(np.array([0.6, 0.25, 0.1, 0.05] + [1e-9] * 2000, dtype=np.float32))
    sampler = Sampler(SamplingParams(temperature=1.0, top_p=0.8, seed=1))
    chosen = {sampler.step(logits, piece).token_id for _ in range(500)}
    assert chosen == {0, 1}


def test_a_vanishing_temperature_is_greedy_without_overflow() -> None:
    import warnings

    logits = np.array([1.0, 3.0, 2.0] + [-5.0] * 20, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in the softmax would raise here
        for t in (1e-300, 5e-324, 1e-4):
            assert Sampler(SamplingParams(temperature=t, seed=1)).step(logits, piece).token_id == 1
