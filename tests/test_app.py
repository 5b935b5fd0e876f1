"""Every page of the Streamlit app under AppTest (no browser): it runs, and it shows the right things.

The Live page's WebRTC component cannot run under AppTest, so ``streamlit_webrtc``'s two
entry points are replaced by fakes that record their arguments and feed real audio frames.
"""

from __future__ import annotations

import base64
import json
import re
import types

import numpy as np
import pytest
import streamlit_webrtc
from streamlit.testing.v1 import AppTest

from ser.config import read_json
from ser.reporting.model_card import CONDITION_NAMES, LENGTH_CONDITIONS
from ser.reporting.unfamiliarity_results import AUDIO_SHORT_NAMES
from ser.serving import live_reading
from ser.serving.analysis import waveform_to_wav
from ser.serving.audio import decode_audio
from ser.serving.unfamiliarity import CHECKS, load_unfamiliarity
from tests.conftest import EXAMPLES, ROOT

TIMEOUT = 120  # seconds; the first run imports TensorFlow and loads the model
METRICS = read_json(ROOT / "models" / "metrics.json")
EMOTIONS = read_json(ROOT / "models" / "labels.json")["emotion"]
CLIP = EXAMPLES / "03-01-05-02-01-01-12.flac"
#: Speech a Live reading needs (``ser.serving.live_reading``).
MIN_SPEECH = live_reading.MIN_SPEECH_SECONDS
UNFAMILIARITY_EXPANDER = "When it warns: unlike the training data"


def run_page(name: str) -> AppTest:
    """Run ``app.py`` (the navigation) and open page ``name``, as a user following a link would."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if name != "app.py":
        at.switch_page(name)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def answers(at: AppTest) -> list[str]:
    """Texts of the success/info/warning boxes that carry the prediction."""
    return [box.value for box in [*at.success, *at.info, *at.warning] if "Predicted emotion" in box.value]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def values(data) -> np.ndarray:
    """A plotly JSON array: plain lists, or the typed-array form {dtype, bdata, shape} numpy data takes."""
    if isinstance(data, dict) and "bdata" in data:
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        return array.reshape([int(n) for n in str(data.get("shape", array.size)).split(",")])
    return np.asarray(data)


def assert_one_emotion_shown(at: AppTest) -> None:
    texts = answers(at)
    assert len(texts) == 1, texts
    assert any(f"*{label}*" in texts[0] for label in EMOTIONS)


def test_home_shows_headline_and_analyses_an_example():
    at = run_page("app.py")
    assert at.metric[0].value == f"{METRICS['headline']['accuracy']:.1%}"
    assert any(METRICS["headline"]["protocol"] in caption.value for caption in at.caption)
    example = next(button for button in at.button if button.key == "example-03-01-05-02-01-01-12")
    example.click().run()
    assert not at.exception
    assert_one_emotion_shown(at)


def test_home_says_in_one_sentence_which_voices_the_model_knows():
    at = run_page("app.py")
    labels = [metric.label for metric in at.metric]
    assert labels[:3] == ["accuracy", "unweighted average recall", "chance"]
    assert at.metric[2].value == f"{1 / len(EMOTIONS):.1%}"
    genders = [row["gender"] for row in METRICS["cross_validation"]["per_actor"]]
    sentence = next(block.value for block in at.markdown if block.value.startswith("It knows the voices of"))
    assert f"{len(METRICS['data']['actors'])} of the 24 North-American English actors of RAVDESS" in sentence
    assert f"{genders.count('female')} women, {genders.count('male')} men" in sentence
    assert "in a studio" in sentence and "other languages" in sentence and "unacted speech" in sentence
    assert sentence.count(".") == 1 and sentence.endswith(".")  # one sentence
    threshold = read_json(ROOT / "models" / "config.json")["calibration"]["confidence_threshold"]
    shown = rf"below\s+{re.escape(f'{threshold:.1%}')}\."  # the Model page's format
    assert any(re.search(shown, block.value) for block in at.markdown)


def test_upload_one_file_gives_prediction_charts_and_downloads():
    at = run_page("pages/1_Analyze.py")
    at.file_uploader(key="uploads").set_value((CLIP.name, CLIP.read_bytes(), "audio/flac")).run()
    assert not at.exception
    assert_one_emotion_shown(at)
    kinds = [spec["data"][0]["type"] for spec in charts(at)]
    assert "bar" in kinds  # probabilities
    recording = next(spec for spec in charts(at) if any(trace["type"] == "heatmap" for trace in spec["data"]))
    assert [trace["type"] for trace in recording["data"]][::2] == ["scattergl", "heatmap"]  # wave, band, spectrogram
    axes = [recording["layout"][name]["range"] for name in ("xaxis", "xaxis2", "xaxis3")]
    assert axes[0] == axes[1] == axes[2] and axes[0][1] == pytest.approx(3.637, abs=0.01)  # one time axis
    bars = next(spec for spec in charts(at) if spec["data"][0]["type"] == "bar")
    assert bars["data"][0]["x"] == EMOTIONS
    assert values(bars["data"][0]["y"]).sum() == pytest.approx(1.0, abs=1e-4)
    assert len(at.get("download_button")) == 3  # JSON, CSV and the HTML report


def test_several_uploads_give_a_table_and_bad_files_an_explanation():
    at = run_page("pages/1_Analyze.py")
    files = [(path.name, path.read_bytes(), "audio/flac") for path in sorted(EXAMPLES.glob("*-12.flac"))[:3]]
    files.append(("broken.wav", b"RIFF....not audio", "audio/wav"))
    at.file_uploader(key="uploads").set_value(files).run()
    assert not at.exception
    table = at.dataframe[0].value  # dataframe keys are not exposed by AppTest: by order
    assert list(table["file"]) == [name for name, *_ in files[:3]]
    assert set(table["answer"]) <= {*EMOTIONS, *(f"not sure: perhaps {label}" for label in EMOTIONS)}  # as the view
    assert any("broken.wav" in str(frame.value) for frame in at.dataframe)  # the failure, by name
    assert any("could not be analysed" in error.value for error in at.error)


def test_recording_goes_through_the_same_analysis():
    at = run_page("pages/1_Analyze.py")
    recording = waveform_to_wav(decode_audio(CLIP, sample_rate=16000), sample_rate=16000)
    at.audio_input(key="recorder").set_value(("recording.wav", recording, "audio/wav")).run()
    assert not at.exception
    assert_one_emotion_shown(at)


def test_silent_recording_is_explained_not_crashed():
    at = run_page("pages/1_Analyze.py")
    silence = waveform_to_wav(np.zeros(16000 * 2, np.float32), sample_rate=16000)
    at.audio_input(key="recorder").set_value(("recording.wav", silence, "audio/wav")).run()
    assert not at.exception
    assert not answers(at)
    assert any("no speech" in error.value.lower() for error in at.error)


def segment_picker(at: AppTest):
    """The one "Hear one segment" picker on the page (its key names the recording it plays)."""
    [picker] = [box for box in at.selectbox if box.label == "Hear one segment"]
    return picker


def test_long_recording_gets_a_segment_view_that_survives_navigation():
    """Two examples with a pause: a band of two segments under the waveform, a summary, a player for
    one segment; after visiting Home the Analyze page shows the kept result without scoring again."""
    import app_ui

    angry, sad = (decode_audio(EXAMPLES / name, sample_rate=16000)
                  for name in ("03-01-05-02-01-01-12.flac", "03-01-04-02-01-01-03.flac"))
    long = waveform_to_wav(np.concatenate([angry, np.zeros(16000, np.float32), sad]), sample_rate=16000)
    at = run_page("pages/1_Analyze.py")
    at.file_uploader(key="uploads").set_value(("two.wav", long, "audio/wav")).run()
    assert not at.exception
    chooser = segment_picker(at)
    assert len(chooser.options) == 2 and "angry" in chooser.options[0]
    assert any("of the speech" in markdown.value for markdown in at.markdown)
    recording = next(spec for spec in charts(at) if any(trace["type"] == "heatmap" for trace in spec["data"]))
    assert sum(trace["type"] == "bar" for trace in recording["data"]) == 2
    players = len(at.get("audio"))
    chooser.set_value(1).run()
    assert not at.exception and len(at.get("audio")) == players

    scored = []
    original = app_ui.analyze_audio
    app_ui.analyze_audio = lambda *args, **kwargs: scored.append(1) or original(*args, **kwargs)
    try:
        at.switch_page("app.py").run()
        at.switch_page("pages/1_Analyze.py").run()
        at.file_uploader(key="uploads").set_value([]).run()  # the uploader forgets its files when left
    finally:
        app_ui.analyze_audio = original
    assert not at.exception and not scored
    assert any("last analysis" in caption.value for caption in at.caption)
    assert segment_picker(at).options == chooser.options and segment_picker(at).key == chooser.key


def test_choosing_a_file_of_a_batch_never_scores_again():
    import app_ui

    at = run_page("pages/1_Analyze.py")
    files = [(path.name, path.read_bytes(), "audio/flac") for path in sorted(EXAMPLES.glob("*-03.flac"))[:3]]
    at.file_uploader(key="uploads").set_value(files).run()
    scored = []
    original = app_ui.analyze_audio
    app_ui.analyze_audio = lambda *args, **kwargs: scored.append(1) or original(*args, **kwargs)
    try:
        at.selectbox[0].set_value(2).run()
    finally:
        app_ui.analyze_audio = original
    assert not at.exception and not scored
    assert any(files[2][0] in text.value for text in at.text)


def tables(at: AppTest) -> list:
    """The page's static tables as DataFrames."""
    return [element.value for element in at.table]


def table_with(at: AppTest, column: str):
    return next(frame for frame in tables(at) if column in frame.columns)


def shown_text(at: AppTest) -> list[str]:
    """Every text a reader sees: titles, headers, Markdown, captions, boxes, metrics, expanders, options, tables."""
    texts = [element.value for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning",
                                        "error", "success") for element in at.get(kind)]
    texts += [part for metric in at.metric for part in (metric.label, metric.value, metric.proto.help)]
    texts += [expander.label for expander in at.expander]
    texts += [str(option) for control in at.get("segmented_control") for option in control.options]
    for frame in tables(at):
        texts += [str(column) for column in frame.columns] + [str(cell) for cell in frame.to_numpy().ravel()]
    return texts


def without_code(text: str) -> str:
    """Text without its `code spans` (commands are typed as they are run)."""
    return re.sub(r"`[^`]*`", "", text)


def test_model_page_opens_with_the_headline_and_a_plain_summary():
    at = run_page("pages/3_Model.py")
    headline = METRICS["headline"]
    assert [(metric.label, metric.value) for metric in at.metric] == [
        ("accuracy on unseen speakers", f"{headline['accuracy']:.1%}"),
        ("unweighted average recall", f"{headline['uar']:.1%}"),
        ("chance", f"{1 / len(EMOTIONS):.1%}"),
    ]
    summary = at.markdown[0].value  # the first text after the headline
    cv = METRICS["cross_validation"]
    weakest = min(cv["per_class"], key=lambda name: cv["per_class"][name]["recall"])
    for expected in ("**Trained on:**", f"{len(METRICS['data']['actors'])} North-American English actors",
                     "**On a voice it never heard:**", f"**{headline['accuracy']:.1%}**",
                     f"{weakest} ({cv['per_class'][weakest]['recall']:.1%})",
                     f"{cv['per_actor_spread']['min']:.1%}", f"{cv['per_actor_spread']['max']:.1%}"):
        assert expected in summary, expected
    robustness = read_json(ROOT / "models" / "robustness.json")["conditions"]
    worst = min((name for name in robustness if name != "clean" and name not in LENGTH_CONDITIONS),
                key=lambda name: robustness[name]["accuracy"])
    assert f"{robustness[worst]['accuracy']:.1%} for {CONDITION_NAMES[worst]}" in summary
    # the detail comes after, in expanders
    assert [expander.label for expander in at.expander][0] == "How it was measured"
    assert any(cv["protocol"] in block.value for block in at.expander[0].markdown)


def test_model_page_text_is_readable_and_in_one_number_format():
    at = run_page("pages/3_Model.py")
    texts = [without_code(text) for text in shown_text(at) if text]
    # hyper-parameters and package versions are shown as they are set
    as_set = {str(cell) for column in ("value", "version") for cell in table_with(at, column)[column]}
    prose = [text for text in texts if text not in as_set]
    for text in prose:
        assert not re.search(r"\b(uar|macro_f1|LEAKY)\b", text), text
        assert not re.search(r"\b[a-z]+_[a-z0-9_]+\b", text), text  # no raw field names
        assert "))" not in text and ".." not in text, text
        for figure in re.findall(r"\d+(?:\.\d+)?%", text):
            assert re.fullmatch(r"\d+\.\d%", figure), (figure, text)  # percentages with one decimal
    temperature = f"{METRICS['cross_validation']['calibration']['temperature']:.2f}"
    fractions = {match for text in prose for match in re.findall(r"(?<![\d.])0\.\d+(?![\d.%]| s\b)", text)}
    assert fractions <= {temperature}  # no fractions beside the percentages
    for frame in tables(at):
        figures = [column for column in frame.columns if column not in {"emotion", "condition", "view", "model",
                                                                          "fold", "test actors", "epochs", "clips",
                                                                          "setting", "value", "package", "version",
                                                                          "voices", "check", "what it measures",
                                                                          "fires when"}]
        for column in figures:
            assert all(re.fullmatch(r"\d+\.\d%|not measured", str(cell)) for cell in frame[column]), column
        assert len(frame.columns) <= 5  # a phone's width


def test_model_page_confusion_matrix_shares_and_counts():
    at = run_page("pages/3_Model.py")
    matrix = METRICS["cross_validation"]["confusion_matrix"]
    heatmaps = [spec for spec in charts(at) if spec["data"][0]["type"] == "heatmap"]
    assert heatmaps[0]["data"][0]["x"] == matrix["labels"]
    rows = np.array(matrix["counts"]).sum(axis=1) > 0
    np.testing.assert_allclose(values(heatmaps[0]["data"][0]["z"])[rows].sum(axis=1), 1.0)  # shares by default
    at.segmented_control(key="cm-view").set_value("clips").run()
    z = values([spec for spec in charts(at) if spec["data"][0]["type"] == "heatmap"][0]["data"][0]["z"])
    np.testing.assert_array_equal(z, matrix["counts"])
    report = table_with(at, "emotion")
    assert list(report["emotion"]) == list(METRICS["cross_validation"]["per_class"])
    per_class = METRICS["cross_validation"]["per_class"].values()
    assert list(report["recall"]) == [f"{row['recall']:.1%}" for row in per_class]


def shipped(name: str) -> dict:
    """A copy of one of the shipped result files, to edit."""
    return read_json(ROOT / "models" / name)


@pytest.fixture
def model_dir_with(tmp_path, monkeypatch):
    """Point the app at a copy of the bundle with exactly the given result files (name -> JSON)."""
    def make(files: dict[str, dict]) -> None:
        for name in ("model.keras", "labels.json", "config.json"):
            (tmp_path / name).symlink_to(ROOT / "models" / name)
        for name, data in files.items():
            (tmp_path / name).write_text(json.dumps(data))
        monkeypatch.setenv("SER_MODEL_DIR", str(tmp_path))
    return make


def test_model_page_shows_baselines_and_leaky_split_when_present(model_dir_with):
    evaluation = shipped("evaluation.json")
    evaluation["leaky_random_split"].update(protocol="random 80/20 clip split", accuracy=0.91, uar=0.9)
    evaluation["baselines"] = [{"name": "MFCC + SVM", "description": "seed-style", "accuracy": 0.4, "uar": 0.38,
                                "macro_f1": 0.37, "leaky_accuracy": 0.8, "leaky_uar": 0.79, "seconds": 1.0}]
    model_dir_with({"metrics.json": shipped("metrics.json"), "evaluation.json": evaluation})
    at = run_page("pages/3_Model.py")
    table = table_with(at, "model")
    assert list(table["model"])[1] == "MFCC + SVM"
    assert table["accuracy, leaky split"].tolist() == ["91.0%", "80.0%"]
    assert table["accuracy, unseen speakers"].tolist()[1] == "40.0%"
    assert any("How the leaky split was made: Random 80/20 clip split." in caption.value for caption in at.caption)
    assert any("**MFCC + SVM**: seed-style." in block.value for block in at.markdown)


def test_model_page_shows_each_view_of_the_fused_model(model_dir_with):
    metrics = shipped("metrics.json")
    metrics["cross_validation"]["views"] = {
        "log_mel_cnn": {"accuracy": 0.5, "uar": 0.49, "macro_f1": 0.48},
        "functionals": {"accuracy": 0.6, "uar": 0.61, "macro_f1": 0.6},
        "fused": {"accuracy": 0.62, "uar": 0.62, "macro_f1": 0.61},
        "averaged": {"accuracy": 0.61, "uar": 0.6, "macro_f1": 0.6},
    }
    metrics["training"]["recipe"]["n_functionals"] = 4321
    model_dir_with({"metrics.json": metrics})
    at = run_page("pages/3_Model.py")
    views = table_with(at, "view")
    assert views["view"].tolist() == [
        "log-mel CNN alone", "functionals alone", "all views, geometric mean (shipped)", "all views, plain average"
    ]
    assert views["accuracy"].tolist() == ["50.0%", "60.0%", "62.0%", "61.0%"]
    assert any("4321 openSMILE" in block.value for block in at.markdown)
    comparison = table_with(at, "model")
    assert comparison["model"].tolist()[0] == "**this model** (log-mel CNN + functionals)"
    assert comparison["accuracy, leaky split"].tolist() == ["not measured"]
    assert any("No baselines" in info.value for info in at.info)  # no evaluation.json here


def test_model_page_shows_the_robustness_table(model_dir_with):
    robustness = shipped("robustness.json")
    robustness.update(clips=1200, command="python -m ser robustness --data D", conditions={
        "clean": {"accuracy": 0.65, "uar": 0.66, "refused": 1, "same_answer_as_clean": 1199, "seen_in_training": False},
        "white_20db": {"accuracy": 0.58, "uar": 0.57, "refused": 3, "same_answer_as_clean": 900,
                       "seen_in_training": True, "answer_share": {"angry": 0.4, "sad": 0.6}},
        # A word is far worse than any recording, but it is not a recording condition: the summary skips it.
        "one_word": {"accuracy": 0.3, "uar": 0.3, "refused": 60, "same_answer_as_clean": 400,
                     "seen_in_training": False, "answer_share": {"surprised": 0.45, "sad": 0.55}},
    })
    model_dir_with({"metrics.json": shipped("metrics.json"), "robustness.json": robustness})
    at = run_page("pages/3_Model.py")
    table = table_with(at, "condition")
    assert table["condition"].tolist() == ["studio clip as recorded", "white noise, 20 dB below the speech\u00a0†",
                                           "one word, 0.5 s to 1.2 s of the speech"]
    assert table["accuracy"].tolist() == ["65.0%", "58.0%", "30.0%"]
    assert table["same answer as in the studio"].tolist() == ["99.9%", "75.0%", "33.3%"]
    assert table["refused as no speech"].tolist() == ["0.1%", "0.2%", "5.0%"]
    assert any("ser robustness --data D" in caption.value for caption in at.caption)
    assert any("white noise, 20 dB below the speech → sad 60.0%; one word, 0.5 s to 1.2 s of the speech → sad 55.0%."
               in caption.value for caption in at.caption)  # the studio row kept no shares: left out
    summary = at.markdown[0].value
    assert "accuracy falls from 65.0% on the studio recordings to 58.0% for white noise" in summary
    assert "one word" not in summary


def test_model_page_leaves_out_a_file_measured_on_another_model(model_dir_with):
    robustness = shipped("robustness.json") | {"model_sha256": "0" * 64}
    model_dir_with({"metrics.json": shipped("metrics.json"), "robustness.json": robustness})
    at = run_page("pages/3_Model.py")
    assert not any("condition" in frame.columns for frame in tables(at))
    assert "Off the studio" not in at.markdown[0].value  # the summary leaves the point out
    assert any("robustness.json was measured on another model.keras" in info.value for info in at.info)


def test_model_page_shows_voices_it_was_not_trained_on():
    at = run_page("pages/3_Model.py")
    check = read_json(ROOT / "models" / "corpus_check.json")
    restricted, app = check["all_sentences"]["restricted"], check["all_sentences"]["app"]
    assert "Voices it was not trained on" in [header.value for header in at.header]
    words = next(block.value for block in at.markdown if block.value.startswith("- **Right:**"))
    assert f"**{restricted['accuracy']:.1%}**" in words and "Amharic speakers of ASED" in words
    assert f"neutral speech is called neutral {app['recall']['neutral']:.1%}" in words
    assert "**With a reference:**" in words and "**When it is sure:**" in words
    assert f"{restricted['accuracy']:.1%}" in at.markdown[0].value  # one line of it in the page's summary
    rows = table_with(at, "right, among its 5 emotions")
    assert rows["right, among its 5 emotions"].tolist()[:4] == [
        f"{check[key][part]['restricted']['accuracy']:.1%}" if part else f"{check[key]['restricted']['accuracy']:.1%}"
        for key, part in (("all_sentences", None), ("common_sentences", None), ("calibrated", "unadapted"),
                          ("calibrated", "adapted"))]
    confidence = table_with(at, "wrong when sure")
    assert f"{app['wrong_when_sure']:.1%}" in confidence["wrong when sure"].tolist()
    answers = next(spec for spec in charts(at) if spec["data"][0].get("name") == "true emotions")
    assert [trace["name"] for trace in answers["data"]] == ["true emotions", "its answers", "with a reference"]
    assert answers["data"][0]["x"] == EMOTIONS  # every answer the app can give, so a collapse shows
    at.segmented_control(key="corpus-view").set_value("emotions it recognises").run()
    recall = next(spec for spec in charts(at) if spec["data"][0].get("name") == "without a reference")
    assert recall["data"][0]["x"] == check["emotions"]
    assert any("docs/cross-corpus.md" in caption.value for caption in at.caption)


def test_model_page_shows_when_the_warning_fires_with_the_files_figures():
    at = run_page("pages/3_Model.py")
    measured = load_unfamiliarity(ROOT / "models" / "unfamiliarity.npz").measured
    expander = next(expander for expander in at.expander if expander.label == UNFAMILIARITY_EXPANDER)
    frames = [element.value for element in expander.table]
    assert list(frames[0].columns) == ["check", "what it measures", "fires when"]
    assert frames[0]["check"].tolist() == [code.replace("_", " ") for code in CHECKS]
    shown = {column: frame[column].tolist() for frame in frames[1:] for column in frame.columns if column != "check"}
    assert len(shown) == sum(1 for entry in measured.values() if "clips" in entry)
    for name, entry in measured.items():
        if "clips" not in entry:
            continue
        figures = entry["flagged_cross_fitted" if name == "ravdess" else "flagged"]
        assert shown[f"{AUDIO_SHORT_NAMES[name]} ({entry['clips']} clips)"] == [
            f"{figures[code]:.1%}" for code in (*CHECKS, "any")]
    caption = expander.caption[0].value
    assert f"one actor {measured['ravdess']['any_per_actor_max']:.1%}" in caption
    assert "python -m ser unfamiliarity --data ../shared/data --out models/" in caption and "Amharic" in caption


def test_model_page_without_the_corpus_check_says_how_to_measure_it(model_dir_with):
    model_dir_with({"metrics.json": shipped("metrics.json")})
    at = run_page("pages/3_Model.py")
    assert "Voices it was not trained on" in [header.value for header in at.header]
    assert any("python -m ser corpus-check" in info.value for info in at.info)
    assert not any("wrong when sure" in frame.columns for frame in tables(at))
    assert "Another language" not in at.markdown[0].value
    warning = next(expander for expander in at.expander if expander.label == UNFAMILIARITY_EXPANDER)
    assert "python -m ser unfamiliarity" in warning.info[0].value and not warning.table  # no detector here


def test_model_page_explains_a_metrics_file_in_another_format(model_dir_with):
    model_dir_with({"metrics.json": {"labels": EMOTIONS, "headline": METRICS["headline"]}})
    at = run_page("pages/3_Model.py")
    assert any("missing key(s)" in error.value and "python -m ser train" in error.value for error in at.error)


def test_dataset_page_draws_every_example():
    at = run_page("pages/4_Dataset.py")
    grid = next(spec for spec in charts(at) if len(spec["data"]) > 1 and spec["data"][0]["type"] == "heatmap")
    assert len(grid["data"]) == len(list(EXAMPLES.glob("*.flac")))
    counts = next(spec for spec in charts(at) if spec["data"][0]["type"] == "bar")
    np.testing.assert_array_equal(values(counts["data"][0]["y"]),
                                  list(METRICS["data"]["speech_per_emotion"].values()))


class FakeWebrtc:
    """Stands in for streamlit_webrtc: records the arguments, hands out the frame callback and
    ends the stream as the real sink does (``on_ended`` after the last frame)."""

    def __init__(self) -> None:
        self.playing = False
        self.callback = None
        self.on_ended = None
        self.kwargs: dict = {}

    def create_audio_sink_track(self, callback, key, on_ended=None, **_):
        self.callback = callback
        self.on_ended = on_ended
        return types.SimpleNamespace(key=key)

    def webrtc_streamer(self, **kwargs):
        self.kwargs = kwargs
        return types.SimpleNamespace(state=types.SimpleNamespace(playing=self.playing, signalling=False))

    def send(self, signal: np.ndarray) -> float:
        """Feed a 48 kHz mono signal as streamlit-webrtc would: packed s16 stereo, 20 ms frames.
        Returns the seconds sent."""
        import av

        pcm = np.round(np.clip(signal, -1, 1) * 32767).astype(np.int16)
        frames = 0
        for start in range(0, pcm.size - 959, 960):
            chunk = pcm[start : start + 960]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk], 1).reshape(1, -1), format="s16",
                                               layout="stereo")
            frame.sample_rate = 48000
            self.callback(frame)
            frames += 1
        return frames * 960 / 48000

    def send_clip(self) -> float:
        """The example clip (angry, actor 12)."""
        return self.send(decode_audio(CLIP, sample_rate=48000))

    def stop(self) -> None:
        self.playing = False
        if self.on_ended is not None:
            self.on_ended()


@pytest.fixture
def fake_webrtc(monkeypatch) -> FakeWebrtc:
    fake = FakeWebrtc()
    monkeypatch.setattr(streamlit_webrtc, "create_audio_sink_track", fake.create_audio_sink_track)
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake.webrtc_streamer)
    monkeypatch.delenv("SER_ICE_SERVERS", raising=False)
    return fake


def texts(at: AppTest) -> list[str]:
    """Every text the page shows in markdown, captions, boxes and progress bars."""
    boxes = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success, *at.text]
    return [element.value for element in boxes] + [element.proto.text for element in at.get("progress")]


def shown(at: AppTest, fragment: str) -> list[str]:
    return [text for text in texts(at) if fragment in text]


def meter_readings(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if re.search(r"Now[:,]|Last reading", m.value)]


def test_live_page_before_start_explains_the_meter(fake_webrtc):
    at = run_page("pages/2_Live.py")
    # No public STUN server unless configured: an explicit empty list for browser and server.
    assert fake_webrtc.kwargs["rtc_configuration"] == {"iceServers": []}
    assert fake_webrtc.kwargs["mode"] == streamlit_webrtc.WebRtcMode.SENDONLY
    # The microphone as it is: no browser gain control or noise suppression in front of the meter.
    assert fake_webrtc.kwargs["media_stream_constraints"]["audio"] == {
        "autoGainControl": False, "noiseSuppression": False, "echoCancellation": False}
    assert shown(at, "Not listening yet") and shown(at, "Microphone level: – (not streaming)")
    assert not shown(at, "Listening") and not meter_readings(at)
    assert not [button for button in at.button if button.key == "analyse-take"]


def test_live_page_streams_stops_with_history_kept_and_analyses_the_take(fake_webrtc):
    at = run_page("pages/2_Live.py")
    fake_webrtc.playing = True
    at.run()  # connected, no audio yet
    assert shown(at, "Connecting")
    clip = decode_audio(CLIP, sample_rate=48000)
    sent = fake_webrtc.send(clip[: int(1.6 * 48000)])  # speech started 1.1 s in: 0.5 s of it so far
    at.run()
    assert not at.exception
    # The counter is the audio received, to the frame.
    assert shown(at, f"**Listening** · {sent:.1f} s of audio received")
    level = shown(at, "Microphone level:")[0]
    assert "dBFS" in level and "peak" in level
    # Not enough speech for a reading yet: the meter says it is listening, and for how much.
    assert not meter_readings(at) and shown(at, f"need {MIN_SPEECH:g} s of speech")
    assert not shown(at, "No signal")

    # The rest of the sentence and a pause: read whole, as one sentence (less than MIN_SPEECH of
    # speech in it, so this is its first reading, made once the pause ended it).
    sent += fake_webrtc.send(np.concatenate([clip[int(1.6 * 48000) :], np.zeros(48000, np.float32)]))
    at.run()
    meter = meter_readings(at)
    assert len(meter) == 1 and meter[0].startswith("<div style='font-size:1.6rem'>Last reading (at")
    assert any(f"<b>{label}</b>" in meter[0] or f"<b>not sure: perhaps {label}</b>" in meter[0] for label in EMOTIONS)
    assert shown(at, "Scored on what you said since your last pause") and shown(at, "in all, as one sentence")
    assert not shown(at, "No signal")

    sent += fake_webrtc.send(np.concatenate([decode_audio(CLIP, sample_rate=48000), np.zeros(48000, np.float32)]))
    at.run()
    assert shown(at, f"{sent:.1f} s of audio received")
    timelines = [spec for spec in charts(at) if spec["data"][0]["type"] == "scatter"]
    assert len(timelines) == 1  # the history: two readings so far
    history = charts(at)

    fake_webrtc.stop()
    at.run()  # stopped: what the user was watching stays, "Listening" goes
    assert not at.exception
    assert not shown(at, "Listening")
    assert shown(at, f"**Stopped** · {sent:.1f} s of audio received")
    assert meter_readings(at) and "Last reading (at" in meter_readings(at)[0]
    assert charts(at) == history  # the same probabilities and history chart
    at.button(key="analyse-take").click().run()
    assert not at.exception
    assert_one_emotion_shown(at)
    assert shown(at, f"live-take.wav · {sent:.1f} s")  # the whole take, analysed like an upload
    assert charts(at)[: len(history)] == history  # the readings are still there above it


def test_a_new_take_starts_a_new_history(fake_webrtc):
    at = run_page("pages/2_Live.py")
    fake_webrtc.playing = True
    at.run()
    fake_webrtc.send_clip()
    at.run()
    fake_webrtc.stop()
    at.run()
    at.button(key="analyse-take").click().run()
    assert answers(at)
    fake_webrtc.playing = True
    at.run()  # started again: until audio arrives the old take is still on screen
    assert shown(at, "Connecting") and meter_readings(at)
    sent = fake_webrtc.send(np.zeros(48000, np.float32))  # a second of silence
    at.run()
    assert not at.exception
    assert shown(at, f"{sent:.1f} s of audio received")
    assert not meter_readings(at) and not answers(at)  # the earlier take's readings and analysis are gone
    assert shown(at, "No reading yet") and shown(at, f"once you have spoken for {MIN_SPEECH:g} s")


@pytest.fixture
def unsure_model_dir(tmp_path, monkeypatch):
    """The shipped bundle with a confidence threshold no answer reaches: every answer is "not sure"."""
    for path in (ROOT / "models").iterdir():
        if path.name != "config.json":
            (tmp_path / path.name).symlink_to(path)
    config = read_json(ROOT / "models" / "config.json")
    config["calibration"]["confidence_threshold"] = 1.5  # above any probability, 1.0 included
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("SER_MODEL_DIR", str(tmp_path))


def test_a_live_reading_that_is_not_sure_names_its_best_guess(fake_webrtc, unsure_model_dir):
    """As the Analyze page says it ("not sure: perhaps angry"), not a bare or differently worded "not sure"."""
    at = run_page("pages/2_Live.py")
    fake_webrtc.playing = True
    at.run()
    fake_webrtc.send(np.concatenate([decode_audio(CLIP, sample_rate=48000), np.zeros(48000, np.float32)]))
    at.run()
    assert not at.exception
    [meter] = meter_readings(at)
    guess = re.search(r"<b>not sure: perhaps (\w+)</b> · (\d+)%", meter)
    assert guess and guess.group(1) in EMOTIONS, meter
    assert 0 < int(guess.group(2)) < 100 and "maybe" not in meter


@pytest.mark.parametrize(("gain", "warning"), [(4.0, "Clipping"), (0.003, "Too quiet"), (0.0, "No signal")])
def test_live_page_warns_when_the_microphone_clips_or_is_too_quiet(fake_webrtc, gain, warning):
    at = run_page("pages/2_Live.py")
    fake_webrtc.playing = True
    at.run()
    fake_webrtc.send(gain * decode_audio(CLIP, sample_rate=48000))
    at.run()
    assert not at.exception
    warnings = [box.value for box in at.warning]
    assert any(warning in text for text in warnings), warnings
    others = {"Clipping", "Too quiet", "No signal"} - {warning}
    assert not any(other in text for text in warnings for other in others)


def test_live_page_explains_when_webrtc_cannot_start(fake_webrtc, monkeypatch):
    def broken(**_):
        raise RuntimeError("aiortc is not available")

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", broken)
    at = run_page("pages/2_Live.py")
    assert any("cannot start" in error.value and "aiortc is not available" in error.value for error in at.error)
    assert any("Analyze" in str(link.proto) for link in at.get("page_link"))


def test_live_page_uses_configured_ice_servers(fake_webrtc, monkeypatch):
    server = {"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}
    monkeypatch.setenv("SER_ICE_SERVERS", json.dumps([server]))
    run_page("pages/2_Live.py")
    assert fake_webrtc.kwargs["rtc_configuration"] == {
        "iceServers": [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]
    }


def test_pages_are_ui_only():
    """Pages call ser/ for all the work: no model, feature or decoding code in them."""
    for path in [ROOT / "app.py", ROOT / "app_ui.py", ROOT / "app_calibration.py", ROOT / "app_why.py",
                 *sorted((ROOT / "pages").glob("*.py"))]:
        source = path.read_text()
        for forbidden in ("import keras", "import tensorflow", "librosa", "soundfile", "np.fft"):
            assert forbidden not in source, f"{path.name} uses {forbidden}"


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#RRGGBB`` colours."""

    def luminance(color: str) -> float:
        channels = [int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted([luminance(first), luminance(second)], reverse=True)
    return (high + 0.05) / (low + 0.05)


#: Streamlit's dark theme background (its default for ``theme.dark.backgroundColor``).
STREAMLIT_DARK_BACKGROUND = "#171614"


def test_streamlit_config_sets_theme_upload_limit_and_no_statistics():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["maxUploadSize"] > 0
    # No forced base: a light and a dark theme, and the system's setting picks one.
    assert "base" not in config["theme"]
    light, dark = config["theme"]["light"], config["theme"]["dark"]
    # Streamlit draws small text in the primary colour (active tabs, white labels on primary
    # buttons): WCAG AA's 4.5:1 wherever it is drawn, body text at AAA's 7:1.
    for background in (light["backgroundColor"], light["secondaryBackgroundColor"]):
        assert contrast(light["primaryColor"], background) >= 4.5
    assert contrast(light["primaryColor"], "#FFFFFF") >= 4.5
    assert contrast(light["textColor"], light["backgroundColor"]) >= 7.0
    assert contrast(dark["primaryColor"], dark.get("backgroundColor", STREAMLIT_DARK_BACKGROUND)) >= 4.5


def test_live_page_reads_ice_servers_from_secrets(fake_webrtc):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.secrets["ice_servers"] = [{"urls": ["stun:stun.example.org:3478"]}]
    at.switch_page("pages/2_Live.py").run()
    assert not at.exception
    assert fake_webrtc.kwargs["rtc_configuration"] == {"iceServers": [{"urls": ["stun:stun.example.org:3478"]}]}
