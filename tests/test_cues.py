"""Properties of the voice cues and of the arousal/valence view (ser.serving.cues)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ser.serving.affect import CIRCUMPLEX_DEGREES, affect_of
from ser.serving.audio import decode_audio
from ser.serving.cues import (
    ALL_VOICES,
    CLEAR_GENDER,
    CUE_WORDS,
    CueReference,
    VoiceCues,
    describe_cues,
    load_cue_references,
    pooled_reference,
    read_voice,
    reference_for,
    voice_cues,
)
from ser.testing import EXAMPLES, synthetic_voice

RATE = 16000


def _clips() -> list[np.ndarray]:
    return [decode_audio(path, sample_rate=RATE) for path in sorted(EXAMPLES.glob("*.flac"))[::4]]


def test_cues_in_plausible_ranges_on_example_clips():
    for waveform in _clips():
        cues = voice_cues(waveform, sample_rate=RATE)
        assert 70 <= cues.pitch_hz <= 600
        assert 0 <= cues.pitch_range_semitones <= 36
        assert -70 <= cues.loudness_dbfs <= 0
        assert 0 < cues.loudness_variability_db < 30
        assert 1 <= cues.syllables_per_second <= 12


def test_louder_copy_reads_louder_by_the_gain():
    waveform = _clips()[0]
    quiet, loud = voice_cues(waveform, sample_rate=RATE), voice_cues(2 * waveform, sample_rate=RATE)
    assert loud.loudness_dbfs - quiet.loudness_dbfs == pytest.approx(20 * math.log10(2), abs=0.5)
    assert loud.pitch_semitones == pytest.approx(quiet.pitch_semitones, abs=0.5)


def test_faster_copy_reads_faster():
    librosa = pytest.importorskip("librosa")
    faster = 0
    clips = _clips()
    for waveform in clips:
        # a 32 ms phase-vocoder window: a 128 ms one smears the dips between syllables
        stretched = librosa.effects.time_stretch(waveform, rate=1.4, n_fft=512)
        faster += voice_cues(stretched, sample_rate=RATE).syllables_per_second > voice_cues(
            waveform, sample_rate=RATE
        ).syllables_per_second
    assert faster == len(clips)


def test_synthetic_voice_pitch_and_rate_are_measured():
    cues = voice_cues(synthetic_voice(seconds=3.0, pitch=140.0), sample_rate=RATE)
    assert cues.pitch_hz == pytest.approx(140, rel=0.1)
    assert 2.5 < cues.syllables_per_second < 5.5  # it pulses at 4 syllables per second


def test_silence_gives_nan_not_an_error():
    cues = voice_cues(np.zeros(RATE, dtype=np.float32), sample_rate=RATE)
    assert math.isnan(cues.pitch_semitones) and math.isnan(cues.loudness_dbfs)


def test_voice_quality_needs_names_with_functionals():
    with pytest.raises(ValueError, match="functional_names"):
        voice_cues(synthetic_voice(), sample_rate=RATE, functionals=np.zeros(10))


def test_words_follow_the_numbers():
    fields = list(CUE_WORDS)
    reference = CueReference(centre=VoiceCues(**dict.fromkeys(fields, 0.0)),
                             spread=VoiceCues(**dict.fromkeys(fields, 1.0)), whom="your usual voice")
    for value in (0.2, -0.3, 1.0, -1.0, 2.0, -2.0):
        comparisons = describe_cues(VoiceCues(**dict.fromkeys(fields, value)), reference=reference)
        assert [c.cue for c in comparisons] == fields
        for comparison in comparisons:
            label, more, less = CUE_WORDS[comparison.cue]
            assert comparison.spreads == pytest.approx(value)
            assert comparison.sentence.startswith(label.capitalize())
            assert comparison.sentence.endswith("your usual voice.")
            if abs(value) < 0.5:
                assert "about the same" in comparison.sentence
            else:
                assert (more if value > 0 else less) in comparison.sentence
                assert ("much" in comparison.sentence) == (abs(value) >= 1.5)


def test_louder_copy_is_described_as_louder():
    waveform = _clips()[0]
    reference = CueReference(centre=voice_cues(waveform, sample_rate=RATE),
                             spread=VoiceCues(2, 2, 2, 2, 0.5, 2, 0.5), whom="your usual voice")
    sentences = {c.cue: c.sentence for c in describe_cues(voice_cues(4 * waveform, sample_rate=RATE),
                                                          reference=reference)}
    assert sentences["loudness_dbfs"] == "Loudness: much louder than your usual voice."


def test_training_references_load_for_both_genders():
    references = load_cue_references()
    assert set(references) == {"male", "female"}
    assert references["female"].centre.pitch_hz > references["male"].centre.pitch_hz
    cues = voice_cues(_clips()[0], sample_rate=RATE)
    assert all("male training voices" in c.sentence for c in describe_cues(cues, reference=references["male"]))


def test_affect_places_emotions_on_the_circumplex():
    emotions = list(CIRCUMPLEX_DEGREES)
    def one_hot(name: str) -> dict[str, float]:
        return {emotion: float(emotion == name) for emotion in emotions}
    assert affect_of(one_hot("angry")).arousal > 0.9
    assert affect_of(one_hot("happy")).valence > 0.9
    assert affect_of(one_hot("sad")).valence < 0 and affect_of(one_hot("sad")).arousal < 0
    assert affect_of(one_hot("calm")).arousal < 0 < affect_of(one_hot("calm")).valence
    neutral = affect_of(one_hot("neutral"))
    assert neutral.arousal == 0 and neutral.valence == 0
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.dirichlet(np.ones(len(emotions)))
        affect = affect_of(dict(zip(emotions, p.tolist(), strict=True)))
        assert math.hypot(affect.arousal, affect.valence) <= 1 + 1e-9


def test_affect_rejects_bad_probabilities():
    with pytest.raises(ValueError, match="circumplex"):
        affect_of({"bored": 1.0})
    with pytest.raises(ValueError, match="sum to 1"):
        affect_of({"angry": 0.5})


def test_reference_is_the_speakers_own_recording_else_the_gender_the_model_heard():
    references = load_cue_references()
    own = voice_cues(_clips()[0], sample_rate=RATE)
    mine = reference_for(gender={"male": 0.9, "female": 0.1}, references=references, own=own)
    assert mine.whom == "your usual voice" and mine.centre == own
    assert all(c.sentence.endswith("about the same as your usual voice.") for c in describe_cues(own, reference=mine))
    assert reference_for(gender={"male": 0.3, "female": 0.7}, references=references) is references["female"]
    assert reference_for(gender={"male": 0.8, "female": 0.2}, references=references) is references["male"]
    assert reference_for(gender=None, references=references) is None


@pytest.mark.parametrize("male", [0.57, 0.5, 0.43, CLEAR_GENDER - 0.01])
def test_an_unclear_gender_is_compared_with_all_training_voices(male):
    """The issue's speaker: read as 57% male, her sentence must not be compared with the men only."""
    references = load_cue_references()
    reference = reference_for(gender={"male": male, "female": 1 - male}, references=references)
    assert reference.whom == ALL_VOICES and reference.speakers == sum(r.speakers for r in references.values())
    reading = read_voice({"male": male, "female": 1 - male})
    assert not reading.clear and reading.probability == pytest.approx(max(male, 1 - male))
    female = references["female"]
    sentences = [c.sentence for c in describe_cues(female.centre, reference=reference)]
    assert sentences and all(s.endswith("than most training voices.") or s.endswith("as most training voices.")
                             for s in sentences)
    # a typical woman's pitch reads no higher than "higher" against everyone: never "much higher" as against men
    pitch = next(c for c in describe_cues(female.centre, reference=reference) if c.cue == "pitch_semitones")
    against_men = next(c for c in describe_cues(female.centre, reference=references["male"])
                       if c.cue == "pitch_semitones")
    assert against_men.word == "much higher" and pitch.word in {"higher", "about the same"}


def test_all_voices_pool_the_genders_centres_and_the_distance_between_them():
    references = load_cue_references()
    pooled = pooled_reference(references)
    male, female = references["male"], references["female"]
    for field in ("pitch_semitones", "loudness_dbfs", "syllables_per_second"):
        low, high = sorted([getattr(male.centre, field), getattr(female.centre, field)])
        assert low <= getattr(pooled.centre, field) <= high
        spreads = [getattr(male.spread, field), getattr(female.spread, field)]
        assert getattr(pooled.spread, field) >= math.sqrt(np.mean(np.square(spreads))) - 1e-9
    gap = female.centre.pitch_semitones - male.centre.pitch_semitones
    assert pooled.spread.pitch_semitones >= gap / 2  # the two voices' distance is part of the spread
    with pytest.raises(ValueError, match="load_cue_references"):
        pooled_reference({})


def test_one_gender_reading_for_a_whole_recording():
    assert read_voice(None) is None and read_voice({}) is None
    reading = read_voice({"male": 0.2, "female": 0.8})
    assert reading.heard == "female" and reading.clear and reading.probability == pytest.approx(0.8)
