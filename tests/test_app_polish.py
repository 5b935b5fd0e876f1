"""Where a new user stumbled (issue 24), under AppTest with the shipped model: the segment picker of
the file shown, "not sure" with its best guess, a short warning with its details one click away and
advice that fits the session, a word about a poor calibration reference, the Home example's result
scrolled into view, and the batch table in words. The browser side is in tests/e2e/test_polish_browser.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import app_ui
from ser.serving import segments as segments_module
from ser.serving.analysis import waveform_to_wav
from ser.serving.audio import decode_audio
from ser.serving.unfamiliarity import CALIBRATED_VOICE, REASON_WORDS, REASONS, VOICE_REMEDY, Unfamiliarity
from ser.serving.words import ANSWERED_BY_WORDS
from tests.conftest import EXAMPLES
from tests.test_app import EMOTIONS, answers, charts, run_page
from tests.test_app_calibration import calibrate

EMOTION = "(" + "|".join(EMOTIONS) + ")"
WARNING = "Unlike the training data"


def wav(*names: str, gap_seconds: float = 1.0) -> bytes:
    """Example clips joined by silence, as one WAV (two or more give a segment picker)."""
    gap = np.zeros(int(16000 * gap_seconds), np.float32)
    parts = [decode_audio(EXAMPLES / name, sample_rate=16000) for name in names]
    return waveform_to_wav(np.concatenate([piece for part in parts for piece in (part, gap)][:-1]), sample_rate=16000)


ANGRY_SAD = wav("03-01-05-02-01-01-12.flac", "03-01-04-02-01-01-03.flac")
HAPPY_CALM_FEARFUL = wav("03-01-03-02-01-01-12.flac", "03-01-02-02-01-01-03.flac", "03-01-06-02-01-01-12.flac")


def upload(at, *files: tuple[str, bytes]):
    at.file_uploader(key="uploads").set_value([(name, data, "audio/wav") for name, data in files]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def picker(at):
    [box] = [box for box in at.selectbox if box.label == "Hear one segment"]
    return box


@pytest.fixture
def unsure(monkeypatch):
    """Every answer below the threshold ("not sure"), as the shipped model gives on unclear speech."""
    monkeypatch.setattr(app_ui.get_bundle(), "confidence_threshold", 1.01)


@pytest.fixture
def unfamiliar_voice(monkeypatch):
    """Every recording's verdict: a voice unlike the training actors' (as ASED speakers get)."""
    monkeypatch.setattr(segments_module, "recording_unfamiliarity",
                        lambda segments: Unfamiliarity(reasons=("unfamiliar_voice",)))


def test_the_segment_picker_belongs_to_the_file_shown_after_another_is_analysed():
    at = upload(run_page("pages/1_Analyze.py"), ("two.wav", ANGRY_SAD))
    first = picker(at)
    first.set_value(1).run()
    assert picker(at).value == 1 and picker(at).key == first.key  # a re-run keeps the choice
    upload(at, ("three.wav", HAPPY_CALM_FEARFUL))
    second = picker(at)
    # A new widget for the new file: the browser cannot keep showing the old file's choice and label.
    assert second.key != first.key and second.value == 0 and len(second.options) == 3
    assert second.options[0].startswith("1. 0.0-") and not set(second.options) & set(first.options)


def test_not_sure_answers_name_their_best_guess_in_picker_band_and_summary(unsure):
    at = upload(run_page("pages/1_Analyze.py"), ("two.wav", ANGRY_SAD))
    assert all(re.fullmatch(rf"\d\. [\d.]+-[\d.]+ s: not sure: perhaps {EMOTION} \(\d+%\)", option)
               for option in picker(at).options), picker(at).options
    recording = next(spec for spec in charts(at) if any(trace["type"] == "heatmap" for trace in spec["data"]))
    band = [trace["name"] for trace in recording["data"] if trace["type"] == "bar"]
    assert len(band) == 2 and all(re.fullmatch(rf"not sure: perhaps {EMOTION}", name) for name in band), band
    assert any(re.search(rf"of the speech was not sure: perhaps {EMOTION}", text.value) for text in at.markdown)
    [answer] = answers(at)
    assert "not sure" in answer and "best guess" in answer


def test_the_unfamiliar_warning_is_one_sentence_and_its_advice_fits_the_calibration(unfamiliar_voice):
    at = upload(run_page("pages/1_Analyze.py"), ("clip.wav", wav("03-01-05-02-01-01-12.flac")))
    [warning] = [box.value for box in at.warning if box.value.startswith(WARNING)]
    assert REASON_WORDS["unfamiliar_voice"] in warning and warning.count(".") == 1 and len(warning) < 160
    details = [expander for expander in at.expander if expander.label == app_ui.WARNING_DETAILS]
    [text] = [" ".join(markdown.value for markdown in expander.markdown) for expander in details]
    assert REASONS["unfamiliar_voice"] in text and VOICE_REMEDY in text  # not calibrated: calibrating is advised
    calibrate(at, page="analyze", data=wav("03-01-01-01-01-01-12.flac", "03-01-02-02-01-01-12.flac",
                                             gap_seconds=0.3))
    assert [box.value for box in at.warning if box.value.startswith(WARNING)] == [warning]
    [text] = [" ".join(markdown.value for markdown in expander.markdown) for expander in at.expander
              if expander.label == app_ui.WARNING_DETAILS]
    assert VOICE_REMEDY not in text and CALIBRATED_VOICE in text  # calibrated: no advice to calibrate


def caveats(at) -> list[str]:
    return [box.value for box in at.warning if box.value.startswith("Calibrated, but check your reference")]


def test_a_short_angry_reference_calibrates_with_a_word_and_an_ordinary_one_without():
    at = run_page("pages/1_Analyze.py")
    calibrate(at, page="analyze", data=wav("03-01-05-02-01-01-12.flac"))
    [caveat] = caveats(at)
    assert "short" in caveat and "angry" in caveat and "does not sound like an ordinary" in caveat
    assert any(box.value.startswith("Calibrated to your voice:") for box in at.success)  # calibrated all the same
    at.run()
    assert caveats(at) == [caveat]  # still said while that reference is in use
    at.button(key="analyze-forget-voice").click().run()
    assert caveats(at) == []
    calibrate(at, page="analyze", data=wav("03-01-01-01-01-01-12.flac", "03-01-02-02-01-01-12.flac", gap_seconds=0.3),
              generation=1)
    assert any(box.value.startswith("Calibrated to your voice:") for box in at.success) and caveats(at) == []


def scroll_scripts(at) -> list[str]:
    return [element.proto.body for element in at.get("html") if "scrollIntoView" in element.proto.body]


def test_tapping_an_example_scrolls_to_its_result_in_that_run_only():
    at = run_page("app.py")
    assert scroll_scripts(at) == []
    at.button(key="example-03-01-05-02-01-01-12").click().run()
    # Once as the run starts (the progress bar comes into view), once the result is drawn.
    scripts = scroll_scripts(at)
    assert len(scripts) == 2 and all(f".st-key-{app_ui.HOME_RESULT}" in script for script in scripts)
    assert len(answers(at)) == 1
    at.run()  # any later run (a widget of the result) keeps the page where the reader is
    assert scroll_scripts(at) == [] and len(answers(at)) == 1
    at.button(key="example-03-01-04-02-01-01-03").click().run()
    again = scroll_scripts(at)
    assert len(again) == 2 and not set(again) & set(scripts)  # new scripts: the browser runs them again


def test_the_batch_table_speaks_in_words_and_percentages(unfamiliar_voice):
    at = upload(run_page("pages/1_Analyze.py"),
                *[(path.name, path.read_bytes()) for path in sorted(EXAMPLES.glob("*-03.flac"))[:3]])
    table = at.dataframe[0].value
    assert list(table.columns) == ["file", "seconds", "answer", "confidence", "segments", "unlike the training data",
                                   "answered by"]
    assert all(re.fullmatch(rf"{EMOTION}|not sure: perhaps {EMOTION}", answer) for answer in table["answer"])
    assert all(re.fullmatch(r"\d{1,3}%", confidence) for confidence in table["confidence"])
    assert set(table["unlike the training data"]) == {REASON_WORDS["unfamiliar_voice"]}
    assert set(table["answered by"]) <= set(ANSWERED_BY_WORDS.values())
    words = table.drop(columns=["file"]).astype(str).to_numpy().ravel()
    assert not any("_" in cell for cell in words)  # no codes such as unfamiliar_voice or both_corpora


def test_an_answer_from_about_one_word_says_what_a_word_is_worth_with_the_models_own_figures():
    from ser.config import FeatureConfig
    from ser.reporting.results import load_robustness
    from ser.serving.analysis import WORD_SECONDS
    from ser.training.loco import CUT_SECONDS, word_cut
    from tests.test_app import ROOT

    assert CUT_SECONDS[1] == WORD_SECONDS  # the note's figures are measured on cuts of up to this length
    clip = decode_audio(EXAMPLES / "03-01-05-02-01-01-12.flac", sample_rate=16000)
    cut = word_cut(clip, name="word.wav", config=FeatureConfig())
    silence = np.zeros(8000, np.float32)  # a word said on its own, a pause around it
    at = upload(run_page("pages/1_Analyze.py"),
                ("word.wav", waveform_to_wav(np.concatenate([silence, cut, silence]), sample_rate=16000)))
    notes = [caption.value for caption in at.caption if "about one word" in caption.value]
    word = load_robustness(ROOT / "models" / "robustness.json").conditions["one_word"]
    assert len(notes) == 1 and f"right {word.accuracy:.0%} of the time" in notes[0], notes
    assert f"answers {max(word.answer_share, key=word.answer_share.get)} for" in notes[0]

    sentence = upload(run_page("pages/1_Analyze.py"), ("clip.wav", wav("03-01-05-02-01-01-12.flac")))
    assert not [caption for caption in sentence.caption if "about one word" in caption.value]


def test_the_word_note_leaves_out_figures_measured_on_another_model(tmp_path, monkeypatch):
    import json

    from tests.test_app import ROOT

    (tmp_path / "model.keras").symlink_to(ROOT / "models" / "model.keras")
    robustness = json.loads((ROOT / "models" / "robustness.json").read_text()) | {"model_sha256": "0" * 64}
    (tmp_path / "robustness.json").write_text(json.dumps(robustness))
    monkeypatch.setenv("SER_MODEL_DIR", str(tmp_path))
    app_ui._word_figures.clear()
    note = app_ui.one_word_note(0.8)
    assert note.startswith("Only 0.8 s of speech, about one word") and "right" not in note
