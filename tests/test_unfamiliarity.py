"""The "unlike the training data" warning (ser.serving.unfamiliarity): the detector's properties, the
shipped file, what it says on tones, band-limited and example clips, and where users see it."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from scipy.signal import butter, sosfiltfilt

from ser.config import FeatureConfig
from ser.errors import BundleError
from ser.serving.audio import decode_audio
from ser.serving.features import prepare_waveform
from ser.serving.functionals import acoustic_functionals, functional_names
from ser.serving.unfamiliarity import (
    BACKGROUND,
    BAND_FUNCTIONAL,
    CALIBRATED_VOICE,
    CHECKS,
    DEFAULT_UNFAMILIARITY,
    REASON_WORDS,
    REASONS,
    STEADINESS_FUNCTIONAL,
    VOICE_REMEDY,
    Unfamiliarity,
    UnfamiliarityDetector,
    combine_unfamiliarity,
    load_unfamiliarity,
    save_unfamiliarity,
)
from tests.conftest import EXAMPLES, ROOT

RATE = 16000
SIZE = 30
CLIP = EXAMPLES / "03-01-05-02-01-01-12.flac"  # angry, actor 12


def _detector(rng: np.random.Generator) -> UnfamiliarityDetector:
    """A detector on synthetic 'functionals': 3 principal axes, column 0 the roll-off, 1 the jitter."""
    components = np.linalg.qr(rng.standard_normal((SIZE, 3)))[0].T
    return UnfamiliarityDetector(
        mean=np.zeros(SIZE), scale=np.ones(SIZE), limit=8.0, centre=np.zeros(SIZE), components=components,
        variances=np.array([3.0, 2.0, 1.0]), residual_scale=1.0, domain_weights=np.eye(SIZE)[2],
        domain_bias=0.0, band_column=0, steadiness_column=1, thresholds=np.array([10.0, -2.0, -2.0, 3.0]),
    )


def _wav(waveform: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(waveform, -1, 1), RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def band_limited(waveform: np.ndarray) -> np.ndarray:
    """A phone-line-like copy: nothing above 3.4 kHz (8th-order Butterworth low-pass, zero phase)."""
    return sosfiltfilt(butter(8, 3400, fs=RATE, output="sos"), waveform).astype(np.float32)


def test_statistics_have_one_column_per_check_and_fire_in_their_direction():
    detector = _detector(np.random.default_rng(0))
    values = np.random.default_rng(1).standard_normal((40, SIZE))
    statistics = detector.statistics(values)
    assert statistics.shape == (40, len(CHECKS)) and np.all(np.isfinite(statistics))
    assert np.all(statistics[:, 0] >= 0)  # a distance
    assert detector.statistics(values[0]).shape == (len(CHECKS),)
    quiet = np.zeros(SIZE)
    assert detector.assess(quiet).familiar
    low_band, steady, foreign, far = (quiet.copy() for _ in range(4))
    low_band[0], steady[1], foreign[2], far[3:] = -3.0, -3.0, 4.0, 6.0
    assert detector.assess(low_band).reasons == ("phone_line",)
    assert detector.assess(steady).reasons == ("synthetic_voice",)
    assert detector.assess(foreign).reasons == ("unfamiliar_voice",)
    assert "not_speech" in detector.assess(far).reasons


def test_bad_functionals_and_bad_detectors_are_refused():
    detector = _detector(np.random.default_rng(2))
    with pytest.raises(ValueError, match="shape"):
        detector.statistics(np.zeros((2, SIZE + 1)))
    with pytest.raises(ValueError, match="NaN"):
        detector.statistics(np.full(SIZE, np.nan))
    with pytest.raises(ValueError, match="python -m ser unfamiliarity"):
        dataclasses.replace(detector, thresholds=np.zeros(3))
    with pytest.raises(ValueError, match="unknown"):
        Unfamiliarity(reasons=("too_loud",))


def test_save_and_load_round_trip_without_pickle(tmp_path):
    detector = dataclasses.replace(_detector(np.random.default_rng(3)), measured={"ravdess": {"any": 0.05}})
    path = tmp_path / "unfamiliarity.npz"
    save_unfamiliarity(detector, path, header={"schema": 1})
    loaded = load_unfamiliarity(path)
    values = np.random.default_rng(4).standard_normal((10, SIZE))
    np.testing.assert_allclose(loaded.statistics(values), detector.statistics(values), rtol=1e-2, atol=1e-2)
    assert loaded.measured == {"ravdess": {"any": 0.05}}
    with np.load(path, allow_pickle=False) as stored:  # every array loads without pickle
        assert {name: stored[name].dtype.kind for name in stored.files}["components"] == "f"


def test_a_missing_or_corrupt_detector_says_how_to_rebuild_it(tmp_path):
    with pytest.raises(BundleError, match="python -m ser unfamiliarity"):
        load_unfamiliarity(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(BundleError, match="python -m ser unfamiliarity"):
        load_unfamiliarity(corrupt)
    other = tmp_path / "other.npz"
    save_unfamiliarity(_detector(np.random.default_rng(5)), other, header={})
    with np.load(other) as stored:
        arrays = {name: stored[name] for name in stored.files}
    header = json.loads(str(arrays.pop("header")))
    np.savez(other, header=np.array(json.dumps({**header, "checks": ["not_speech"]})), **arrays)
    with pytest.raises(BundleError, match="rebuild"):
        load_unfamiliarity(other)


def test_a_recording_warns_for_a_reason_only_when_half_its_speech_shows_it():
    phone, nothing = Unfamiliarity(reasons=("phone_line",)), Unfamiliarity()
    assert combine_unfamiliarity([(phone, 3.0), (nothing, 1.0)]).reasons == ("phone_line",)
    assert combine_unfamiliarity([(phone, 1.0), (nothing, 3.0)]).familiar
    assert combine_unfamiliarity([]).familiar
    warning = phone.warning
    assert REASONS["phone_line"] in warning and BACKGROUND in warning and nothing.warning == ""


def test_the_warning_is_one_sentence_and_advises_calibrating_only_an_uncalibrated_voice():
    voice, phone = Unfamiliarity(reasons=("unfamiliar_voice",)), Unfamiliarity(reasons=("phone_line",))
    both = Unfamiliarity(reasons=("phone_line", "unfamiliar_voice"))
    assert voice.sentence.count(".") == 1 and REASON_WORDS["unfamiliar_voice"] in voice.sentence
    assert REASON_WORDS["phone_line"] in both.sentence and REASON_WORDS["unfamiliar_voice"] in both.sentence
    assert " and " in both.sentence and len(both.sentence) < 160  # short: the details are one click away
    assert VOICE_REMEDY in voice.advice(calibrated=False) and VOICE_REMEDY not in voice.advice(calibrated=True)
    assert CALIBRATED_VOICE in voice.advice(calibrated=True)
    assert "alibrat" not in phone.advice(calibrated=False)  # calibrating does not mend a phone line
    assert VOICE_REMEDY not in voice.warning_for(calibrated=True) and VOICE_REMEDY in voice.warning
    assert Unfamiliarity().sentence == Unfamiliarity().advice(calibrated=False) == ""


@pytest.fixture(scope="module")
def shipped() -> UnfamiliarityDetector:
    return load_unfamiliarity()


def test_the_shipped_detector_is_small_measured_and_reads_the_named_functionals(shipped):
    assert DEFAULT_UNFAMILIARITY.stat().st_size < 500_000
    names = functional_names(FeatureConfig())
    assert shipped.size == len(names)
    assert names[shipped.band_column] == BAND_FUNCTIONAL and names[shipped.steadiness_column] == STEADINESS_FUNCTIONAL
    assert np.all(np.isfinite(shipped.thresholds))
    ravdess = shipped.measured["ravdess"]["flagged_cross_fitted"]
    assert set(ravdess) == {*CHECKS, "any"} and all(0 <= share <= 0.1 for share in ravdess.values())


def _reasons(detector: UnfamiliarityDetector, waveform: np.ndarray) -> tuple[str, ...]:
    config = FeatureConfig()
    return detector.assess(acoustic_functionals(prepare_waveform(waveform, config=config), config=config)).reasons


def test_a_steady_tone_and_a_chord_are_not_speech(shipped):
    time = np.arange(3 * RATE) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * time)
    chord = sum(np.sin(2 * np.pi * 196 * ratio * time) for ratio in (1.0, 1.26, 1.5, 2.0)) * np.exp(-time / 2)
    for sound in (tone, 0.3 * chord / np.max(np.abs(chord))):
        assert "not_speech" in _reasons(shipped, sound.astype(np.float32))


def test_a_band_limited_copy_is_a_phone_line_and_the_original_is_familiar(shipped):
    original = decode_audio(CLIP, sample_rate=RATE)
    assert _reasons(shipped, original) == ()
    assert "phone_line" in _reasons(shipped, band_limited(original))


@pytest.mark.slow
def test_analyses_carry_the_verdict_and_the_report_shows_it():
    from ser.reporting.analysis_report import render_report
    from ser.serving.analysis import analyze_audio, segments_table
    from ser.serving.bundle import load_bundle
    from ser.serving.words import results_table

    bundle = load_bundle()
    for path in sorted(EXAMPLES.glob("*.flac"))[::5]:  # training-corpus studio speech
        analysis = analyze_audio(path.read_bytes(), name=path.name, bundle=bundle)
        assert analysis.unfamiliarity is not None and analysis.unfamiliarity.familiar, path.name
    assert analysis.to_dict()["unfamiliar"] == [] and "Warning:" not in render_report(analysis)
    phone = analyze_audio(_wav(band_limited(decode_audio(CLIP, sample_rate=RATE))), name="phone.wav", bundle=bundle)
    assert "phone_line" in phone.to_dict()["unfamiliar"]
    assert "phone_line" in segments_table([phone])["unfamiliar"].iloc[0]  # the download keeps the code
    assert REASON_WORDS["phone_line"] in results_table([phone])["unlike the training data"].iloc[0]  # words on screen
    assert REASONS["phone_line"] in render_report(phone)


@pytest.mark.slow
def test_predict_prints_the_reasons_in_json_and_one_warning_line_in_text(tmp_path):
    phone = tmp_path / "phone.wav"
    phone.write_bytes(_wav(band_limited(decode_audio(CLIP, sample_rate=RATE))))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ser", "predict", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)

    records = [json.loads(line) for line in run("--json", str(CLIP), str(phone)).stdout.splitlines()]
    assert records[0]["unfamiliar"] == [] and "phone_line" in records[1]["unfamiliar"]
    text = run(str(CLIP), str(phone)).stdout.splitlines()
    warnings = [line for line in text if "\twarning: " in line]
    assert len(text) == 3 and len(warnings) == 1 and warnings[0].startswith(str(phone))


@pytest.mark.slow
def test_the_analyze_page_warns_under_the_answer_for_a_band_limited_upload_only():
    from tests.test_app import answers, run_page

    def warnings_after(name: str, data: bytes) -> list[str]:
        at = run_page("pages/1_Analyze.py")
        at.file_uploader(key="uploads").set_value((name, data, "audio/wav")).run()
        assert not at.exception and len(answers(at)) == 1
        green.extend(box.value for box in at.success if "Predicted emotion" in box.value)
        details.extend(markdown.value for expander in at.expander if expander.label == "Why, and what helps"
                       for markdown in expander.markdown)
        return [box.value for box in at.warning if "Unlike the training data" in box.value]

    green: list[str] = []
    details: list[str] = []  # the warning's details, one click away
    original = decode_audio(CLIP, sample_rate=RATE)
    assert warnings_after("angry.wav", _wav(original)) == []
    assert len(green) == 1  # the studio clip: a sure, green answer
    shown = warnings_after("phone.wav", _wav(band_limited(original)))
    assert len(shown) == 1 and REASON_WORDS["phone_line"] in shown[0] and "rough guess" in shown[0]
    assert any(REASONS["phone_line"] in text for text in details)
    assert len(green) == 1  # never green beside the warning: its confidence was measured on familiar voices


@pytest.mark.slow
def test_batch_workers_get_the_detector_with_the_bundle_bytes():
    from ser.batch.scorer import Scorer, read_bundle_files
    from ser.serving.unfamiliarity import DEFAULT_UNFAMILIARITY

    files = read_bundle_files(DEFAULT_UNFAMILIARITY.parent)
    assert "unfamiliarity.npz" in files
    scorer = Scorer(bundle=files, timeline=False)  # as a Ray worker loads it: from bytes, folder removed
    assert scorer.bundle.unfamiliarity_detector is not None
