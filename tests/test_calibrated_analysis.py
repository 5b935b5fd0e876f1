"""Calibrated to the speaker after the fact: ser.serving.analysis.adapt_analysis and
ser.serving.live.adapt_reading adapt kept answers without scoring the audio again."""

from __future__ import annotations

import dataclasses
import io
import json
import types

import numpy as np
import pandas as pd
import pytest

from ser.reporting.plots import probability_figure
from ser.serving.analysis import (
    SEGMENT_COLUMNS,
    Analysis,
    adapt_analysis,
    analyze_audio,
    waveform_to_wav,
)
from ser.serving.bundle import ClipPrediction, load_bundle
from ser.serving.live import Reading, adapt_reading
from ser.serving.segments import Segment, score_recording
from ser.serving.speaker import SpeakerAdaptation, calibrate_bundle
from ser.serving.words import answer_words, results_table
from ser.training.data import EMOTIONS
from tests.conftest import EXAMPLES, synthetic_voice

NEUTRAL = EMOTIONS.index("neutral")
STRONG = SpeakerAdaptation(neutral=NEUTRAL, bias=2.5, reference_neutral=0.04, reference_seconds=3.2, segments=2)
THRESHOLD = 0.3


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def two_utterances(bundle) -> Analysis:
    """Two voices with a pause between them: two segments, scored once for the whole module."""
    voice = synthetic_voice(seconds=2.0, seed=3)
    audio = np.concatenate([voice, np.zeros(32000, np.float32), synthetic_voice(seconds=2.5, pitch=220.0, seed=4)])
    analysis = analyze_audio(waveform_to_wav(audio, sample_rate=16000), name="two.wav", bundle=bundle)
    assert len(analysis.segments) == 2
    return analysis


def prediction(probabilities: np.ndarray, *, seconds: float = 1.0) -> ClipPrediction:
    values = dict(zip(EMOTIONS, map(float, probabilities), strict=True))
    best = max(values, key=values.get)
    return ClipPrediction(emotion=best, confidence=values[best], probabilities=values,
                          sure=values[best] >= THRESHOLD, gender={"male": 0.4, "female": 0.6}, speech_seconds=seconds)


def random_analysis(rng: np.random.Generator, *, segments: int) -> Analysis:
    """An analysis built by hand: random answers, one segment without speech."""
    parts = [Segment(start=float(i), end=float(i + 1), prediction=prediction(rng.dirichlet(np.ones(8)),
                                                                              seconds=rng.uniform(0.3, 3.0)))
             for i in range(segments)]
    parts.append(Segment(start=float(segments), end=segments + 1.0, prediction=None, problem="no speech"))
    from ser.serving.segments import combine

    fake = types.SimpleNamespace(confidence_threshold=THRESHOLD, version="v1")
    overall = combine([part.prediction for part in parts if part.prediction], bundle=fake)
    return Analysis(name="random.wav", sample_rate=16000, waveform=np.zeros(16000, np.float32), duration=1.0,
                    log_mel=np.zeros((1, 64), np.float32), prediction=overall, segments=tuple(parts),
                    model_version="v1", threshold=THRESHOLD)


def check_answer(answer: ClipPrediction) -> None:
    """The answer is re-derived from its own probabilities."""
    assert sum(answer.probabilities.values()) == pytest.approx(1.0)
    assert answer.emotion == max(answer.probabilities, key=answer.probabilities.get)
    assert answer.confidence == pytest.approx(answer.probabilities[answer.emotion])
    assert answer.sure == (answer.confidence >= THRESHOLD)


@pytest.mark.parametrize("seed", range(20))
def test_adapted_answers_sum_to_one_never_lose_neutral_and_are_rederived(seed):
    rng = np.random.default_rng(seed)
    before = random_analysis(rng, segments=int(rng.integers(1, 5)))
    adaptation = dataclasses.replace(STRONG, bias=float(rng.uniform(0.0, 4.0)))
    after = adapt_analysis(before, adaptation=adaptation,
                           bundle=types.SimpleNamespace(confidence_threshold=THRESHOLD, version="v1"))
    assert after.adapted and after.adaptation == adaptation
    assert after.unadapted is before.prediction and after.unadapted_segments is before.segments  # kept as they were
    check_answer(after.prediction)
    assert after.prediction.probabilities["neutral"] >= before.prediction.probabilities["neutral"] - 1e-12
    for adapted, plain in zip(after.segments, before.segments, strict=True):
        assert (adapted.start, adapted.end, adapted.problem) == (plain.start, plain.end, plain.problem)
        if plain.prediction is None:
            assert adapted.prediction is None
            continue
        check_answer(adapted.prediction)
        assert adapted.prediction.probabilities["neutral"] >= plain.prediction.probabilities["neutral"] - 1e-12
        assert adapted.prediction.gender == plain.prediction.gender
        assert adapted.speech_seconds == plain.speech_seconds
    # the rest of the analysis is untouched
    assert (after.name, after.duration, after.waveform is before.waveform) == (before.name, before.duration, True)


def test_adapting_needs_no_scoring_and_matches_scoring_with_the_adaptation(bundle, two_utterances, monkeypatch):
    recording = bundle.recording(two_utterances.waveform, sample_rate=16000)
    scored = score_recording(recording, bundle=bundle, adaptation=STRONG)

    def never(*args, **kwargs):
        raise AssertionError("adapting an analysis must not score the audio again")

    for method in ("predict_clip", "predict_recording", "score_windows", "recording"):
        monkeypatch.setattr(type(bundle), method, never)
    adapted = adapt_analysis(two_utterances, adaptation=STRONG, bundle=bundle)
    assert adapted.prediction.probabilities == pytest.approx(scored.overall.probabilities)
    assert adapted.unadapted.probabilities == pytest.approx(scored.unadapted.probabilities)
    assert [s.prediction.emotion for s in adapted.segments] == [s.prediction.emotion for s in scored.segments]
    assert adapted.prediction.probabilities["neutral"] > two_utterances.prediction.probabilities["neutral"]


def test_a_new_calibration_replaces_the_old_and_none_gives_back_the_unadapted(bundle, two_utterances):
    assert adapt_analysis(two_utterances, adaptation=None, bundle=bundle) is two_utterances
    weak = dataclasses.replace(STRONG, bias=0.5)
    twice = adapt_analysis(adapt_analysis(two_utterances, adaptation=STRONG, bundle=bundle), adaptation=weak,
                           bundle=bundle)
    once = adapt_analysis(two_utterances, adaptation=weak, bundle=bundle)
    assert twice.prediction == once.prediction and twice.segments == once.segments
    assert twice.unadapted is two_utterances.prediction
    back = adapt_analysis(twice, adaptation=None, bundle=bundle)
    assert not back.adapted and back.prediction is two_utterances.prediction
    assert back.segments is two_utterances.segments and back.to_dict() == two_utterances.to_dict()
    unchanged = adapt_analysis(two_utterances, adaptation=dataclasses.replace(STRONG, bias=0.0), bundle=bundle)
    assert unchanged.prediction.probabilities == pytest.approx(two_utterances.prediction.probabilities)


def test_an_analysis_of_another_model_is_refused(bundle, two_utterances):
    other = dataclasses.replace(two_utterances, model_version="0123456789ab")
    with pytest.raises(ValueError, match="analyse it again"):
        adapt_analysis(other, adaptation=STRONG, bundle=bundle)


def test_downloads_say_adapted_and_carry_the_unadapted_answer(bundle, two_utterances):
    plain = two_utterances.to_dict()
    assert plain["adapted"] is False and "unadapted" not in plain and "reference" not in plain
    adapted = adapt_analysis(two_utterances, adaptation=STRONG, bundle=bundle)
    record = json.loads(adapted.to_json())
    assert record["adapted"] is True
    assert record["unadapted"]["emotion"] == plain["emotion"] and record["unadapted"]["answer"] == plain["answer"]
    assert record["unadapted"]["probabilities"] == plain["probabilities"]
    assert record["reference"]["bias"] == STRONG.bias and record["reference"]["reference_seconds"] == 3.2
    assert [row["unadapted"]["emotion"] for row in record["segments"]] == [row["emotion"] for row in plain["segments"]]
    assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    # one CSV schema, calibrated or not; the unadapted columns are empty without a calibration
    before = pd.read_csv(io.StringIO(two_utterances.to_csv()))
    after = pd.read_csv(io.StringIO(adapted.to_csv()))
    assert list(before.columns) == list(after.columns) == SEGMENT_COLUMNS
    assert not before["adapted"].any() and before["unadapted_answer"].isna().all()
    assert after["adapted"].all() and list(after["segment_unadapted_answer"]) == list(before["segment_answer"])
    assert list(after["unadapted_confidence"]) == list(before["confidence"])
    # the results table gains "without calibration" only when calibrated
    assert "without calibration" not in results_table([two_utterances]).columns
    table = results_table([adapted])
    assert list(table["without calibration"]) == [answer_words(two_utterances.prediction, confidence=True)]
    assert list(table["answer"]) == [answer_words(adapted.prediction)]
    # every answer carries its best guess beside it, also "not sure" ones (the JSON's "emotion")
    assert list(after["emotion"]) == [record["emotion"]] * len(after)
    assert list(after["unadapted_emotion"]) == [plain["emotion"]] * len(after)
    assert list(after["segment_emotion"]) == [row["emotion"] for row in record["segments"]]
    assert list(after["segment_unadapted_emotion"]) == [row["emotion"] for row in plain["segments"]]
    assert before["unadapted_emotion"].isna().all()


def test_calibrating_on_the_real_neutral_example_gives_a_usable_adaptation(bundle):
    adaptation = calibrate_bundle(bundle, references=[(EXAMPLES / "03-01-01-01-01-01-12.flac").read_bytes()])
    assert adaptation.bias >= 0 and 0 <= adaptation.reference_neutral <= 1 and adaptation.reference_seconds > 1.5


def test_live_readings_are_adapted_when_shown_and_keep_the_unadapted_answer():
    rng = np.random.default_rng(7)
    kept = Reading(end_seconds=4.0, audio_seconds=3.0, prediction=prediction(rng.dirichlet(np.ones(8))))
    assert adapt_reading(kept, adaptation=None, confidence_threshold=THRESHOLD) is kept
    silent = Reading(end_seconds=4.0, audio_seconds=3.0, prediction=None, message="no speech")
    assert adapt_reading(silent, adaptation=STRONG, confidence_threshold=THRESHOLD) is silent
    shown = adapt_reading(kept, adaptation=STRONG, confidence_threshold=THRESHOLD)
    assert shown.unadapted is kept.prediction and shown.end_seconds == kept.end_seconds
    check_answer(shown.prediction)
    assert shown.prediction.probabilities["neutral"] > kept.prediction.probabilities["neutral"]
    again = adapt_reading(shown, adaptation=STRONG, confidence_threshold=THRESHOLD)  # never adapted twice
    assert again.prediction.probabilities == pytest.approx(shown.prediction.probabilities)


def test_probability_chart_puts_the_unadapted_answer_beside_the_adapted_one():
    rng = np.random.default_rng(3)
    before, after = (dict(zip(EMOTIONS, map(float, rng.dirichlet(np.ones(8))), strict=True)) for _ in range(2))
    plain = probability_figure(probabilities=after, threshold=THRESHOLD)
    assert len(plain.data) == 1 and not plain.layout.showlegend
    both = probability_figure(probabilities=after, threshold=THRESHOLD, unadapted=before)
    assert [trace.name for trace in both.data] == ["calibrated to your voice", "without calibration"]
    assert list(both.data[0].y) == list(after.values()) and list(both.data[1].y) == list(before.values())
    assert both.layout.showlegend and both.layout.barmode == "group"
