"""The "why" of every analysis, what voices the model knows, the Compare page and the one-file report,
under AppTest (no browser)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ser.config import read_json
from ser.serving.analysis import waveform_to_wav
from ser.serving.audio import decode_audio
from tests.conftest import EXAMPLES, ROOT
from tests.test_analysis_report import assert_offline, parsed
from tests.test_app import TIMEOUT, answers, charts, run_page, values

METRICS = read_json(ROOT / "models" / "metrics.json")
ANGRY = EXAMPLES / "03-01-05-02-01-01-12.flac"  # actor 12, female
SAD = EXAMPLES / "03-01-04-02-01-01-03.flac"  # actor 03, male


def upload(at: AppTest, *paths) -> AppTest:
    files = [(path.name, path.read_bytes(), "audio/flac") for path in paths]
    at.file_uploader(key="uploads").set_value(files[0] if len(files) == 1 else files).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def cue_lines(at: AppTest) -> list[str]:
    """The cue sentences shown as a bulleted list."""
    return [line[2:] for block in at.markdown for line in block.value.splitlines()
            if re.match(r"- (Pitch|Loudness|Speaking rate|Voice clarity)", line)]


def circumplexes(at: AppTest) -> list[dict]:
    return [spec for spec in charts(at) if spec["layout"].get("yaxis", {}).get("scaleanchor") == "x"]


def assert_why_shown(at: AppTest, *, whom: str) -> None:
    lines = cue_lines(at)
    assert {line.split(":")[0] for line in lines} >= {"Pitch", "Pitch range", "Loudness", "Speaking rate"}, lines
    assert all(line.endswith(f"{whom}.") for line in lines), lines
    assert circumplexes(at), "no arousal/valence view"
    captions = [caption.value for caption in at.caption]
    assert any("Russell's (1980) circumplex" in text and "probabilities" in text and "Arousal" in text
               for text in captions)


def test_one_file_shows_the_cues_in_words_against_the_training_voices_of_its_gender():
    at = upload(run_page("pages/1_Analyze.py"), ANGRY)
    assert_why_shown(at, whom="most female training voices")
    assert any(caption.value.startswith("Compared with the female actors of the training data speaking neutrally")
               for caption in at.caption)
    pitch = next(line for line in cue_lines(at) if line.startswith("Pitch:"))
    assert "higher" in pitch  # an angry line sits above the actors' neutral voices
    # the answer on the circumplex: one point, high arousal, for a confident "angry"
    points = circumplexes(at)[0]["data"][2]
    arousal = values(points["y"])
    assert arousal.size == 1 and arousal[0] > 0.5
    table = next(frame for frame in (element.value for element in at.table) if "this recording" in frame.columns)
    assert table["this recording"].iloc[0].endswith(" Hz")


def test_a_recording_gets_the_same_why_and_a_male_voice_is_compared_with_men():
    at = run_page("pages/1_Analyze.py")
    recording = waveform_to_wav(decode_audio(SAD, sample_rate=16000), sample_rate=16000)
    at.audio_input(key="recorder").set_value(("recording.wav", recording, "audio/wav")).run()
    assert not at.exception
    assert_why_shown(at, whom="most male training voices")


def test_long_audio_gets_one_affect_point_per_segment_and_arousal_over_time():
    angry, sad = (decode_audio(path, sample_rate=16000) for path in (ANGRY, SAD))
    long = waveform_to_wav(np.concatenate([angry, np.zeros(16000, np.float32), sad]), sample_rate=16000)
    at = run_page("pages/1_Analyze.py")
    at.file_uploader(key="uploads").set_value(("two.wav", long, "audio/wav")).run()
    assert not at.exception
    circle = circumplexes(at)[0]
    points = circle["data"][2]
    arousal = values(points["y"])
    assert arousal.size == 2 and list(points["text"]) == ["1", "2"]
    assert arousal[0] > arousal[1]  # angry then sad: arousal falls
    assert circle["data"][3]["name"] == "whole recording"
    timeline = next(spec for spec in charts(at) if [trace.get("name") for trace in spec["data"]] == ["arousal",
                                                                                                      "valence"])
    recording = next(spec for spec in charts(at) if any(trace["type"] == "heatmap" for trace in spec["data"]))
    assert timeline["layout"]["xaxis"]["range"] == recording["layout"]["xaxis"]["range"]  # the waveform's time axis
    assert timeline["layout"]["xaxis"]["range"][1] == pytest.approx((len(angry) + len(sad)) / 16000 + 1, abs=0.01)
    assert any("What the model hears (the whole recording)" in block.value for block in at.markdown)
    # a woman's angry line, then a man's sad one: one reading of the voice for the recording (64% male),
    # too unclear to pick one gender's voices, so both segments and the whole are compared with everyone
    assert_why_shown(at, whom="most training voices")
    [whom] = [caption.value for caption in at.caption if caption.value.startswith("Compared with ")]
    assert "men and women alike" in whom and "gender is unclear" in whom and "over the whole recording" in whom
    table = next(element.value for element in at.dataframe if "segment" in element.value.columns)
    assert len(table) == 2 and {"pitch", "loudness", "speaking rate"} <= set(table.columns)
    assert table["pitch"].iloc[0] != table["pitch"].iloc[1]  # each segment's own cues, against the same voices


def test_every_segment_is_compared_with_the_voices_the_whole_recording_was_read_as():
    """The segments' own gender answers disagree (a woman, then a man); their cues still share one reference."""
    import app_ui
    import app_why
    from ser.serving.analysis import analyze_audio

    angry, sad = (decode_audio(path, sample_rate=16000) for path in (ANGRY, SAD))
    data = waveform_to_wav(np.concatenate([angry, np.zeros(16000, np.float32), sad]), sample_rate=16000)
    analysis = analyze_audio(data, name="two.wav", bundle=app_ui.get_bundle())
    heard = {max(s.prediction.gender, key=s.prediction.gender.get) for s in analysis.segments}
    assert heard == {"male", "female"}, heard  # the premise: read one by one, the voices differ
    whole, _ = app_why.comparisons_of(analysis)
    per_segment = app_why.segment_comparisons(analysis)
    assert [index for index, _ in per_segment] == [1, 2]
    for _, comparisons in per_segment:
        assert {c.cue: c.reference for c in comparisons} == {c.cue: c.reference for c in whole}


def test_a_segment_that_is_not_sure_names_its_best_guess_in_the_table_and_on_the_circle():
    """The segment labels say "not sure: perhaps sad", as the answer above them does, not a bare "not sure"."""
    import copy

    import app_ui
    import app_why
    from ser.serving.analysis import analyze_audio

    unsure = copy.copy(app_ui.get_bundle())  # the same model; a threshold no answer reaches
    unsure.confidence_threshold = 1.5
    angry, sad = (decode_audio(path, sample_rate=16000) for path in (ANGRY, SAD))
    data = waveform_to_wav(np.concatenate([angry, np.zeros(16000, np.float32), sad]), sample_rate=16000)
    analysis = analyze_audio(data, name="two.wav", bundle=unsure)
    guesses = [segment.prediction.emotion for segment in analysis.segments]
    assert len(guesses) == 2 and not any(segment.prediction.sure for segment in analysis.segments)
    rows = app_why.segment_rows(analysis)
    assert [row["answer"] for row in rows] == [f"not sure: perhaps {guess}" for guess in guesses]
    _, _, labels = app_why._points(analysis)
    assert len(labels) == 2
    for label, segment in zip(labels, analysis.segments, strict=True):
        assert label.endswith(f": not sure: perhaps {segment.prediction.emotion} "
                              f"({segment.prediction.confidence:.0%})"), label


def test_the_detail_view_of_a_batch_shows_the_why():
    at = upload(run_page("pages/1_Analyze.py"), ANGRY, SAD)
    assert_why_shown(at, whom="most female training voices")  # the first file, in detail
    at.selectbox[0].set_value(1).run()
    assert_why_shown(at, whom="most male training voices")


def test_a_calibration_recording_becomes_the_reference():
    """``show_analysis(..., reference_cues=...)``: the speaker's own cues replace the training voices."""

    def page():  # runs as its own script: imports inside
        import app_ui
        from ser.testing import EXAMPLES

        own = app_ui.analyze((EXAMPLES / "03-01-01-01-01-01-12.flac").read_bytes(), "calibration.flac")  # neutral
        angry = EXAMPLES / "03-01-05-02-01-01-12.flac"
        app_ui.analyze_and_show(angry.read_bytes(), name=angry.name, key="calibrated", reference_cues=own.cues)

    at = AppTest.from_function(page, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert_why_shown(at, whom="your usual voice")
    assert any(caption.value.startswith("Compared with your calibration recording") for caption in at.caption)


def test_home_and_analyze_say_in_one_sentence_what_voices_the_model_knows():
    actors = len(METRICS["data"]["actors"])
    for page in ("app.py", "pages/1_Analyze.py"):
        at = run_page(page)
        texts = [element.value for kind in ("markdown", "caption") for element in at.get(kind)]
        sentence = next(text for text in texts if text.startswith("It knows the voices of"))
        assert f"{actors} of the 24 North-American English actors of RAVDESS" in sentence, sentence
        assert "professionals acting emotions in a studio" in sentence
        for weaker in ("other languages", "unacted speech", "phone calls"):
            assert weaker in sentence
        assert sentence.count(".") == 1 and sentence.endswith(".")


def test_compare_says_how_to_get_two_analyses():
    at = run_page("pages/5_Compare.py")
    info = " ".join(box.value for box in at.info)
    assert "two analyses" in info and "Analyze" in info and "none yet" in info
    assert not answers(at)


def test_compare_shows_two_analyses_of_the_session_side_by_side():
    at = upload(run_page("pages/1_Analyze.py"), ANGRY, SAD)
    at.switch_page("pages/5_Compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    left, right = at.selectbox(key="compare-left"), at.selectbox(key="compare-right")
    assert len(left.options) == 2 and left.value == 0 and right.value == 1
    shown = answers(at)
    assert len(shown) == 2 and "angry" in shown[0] and "sad" in shown[1]
    kinds = [[trace["type"] for trace in spec["data"]] for spec in charts(at)]
    assert sum(kind == ["bar"] for kind in kinds) == 2  # probabilities
    assert sum("heatmap" in kind for kind in kinds) == 2  # waveform, segments, spectrogram
    assert len(at.get("audio")) == 2
    assert len(cue_lines(at)) >= 8  # the cues of both, in words
    table = next(element.value for element in at.table if "left" in element.value.columns)
    assert list(table.columns) == ["cue", "left", "right"]
    assert table["left"].iloc[0] != table["right"].iloc[0] and table["left"].iloc[0].endswith(" Hz")
    right.set_value(0).run()
    assert not at.exception and any("same analysis" in caption.value for caption in at.caption)


def _icons(path) -> list[tuple[str, str]]:
    """(function, icon) of every call with an ``icon=`` argument in a script: st.Page, st.page_link."""
    import ast

    calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]
    return [(ast.unparse(call.func), keyword.value.value) for call in calls for keyword in call.keywords
            if keyword.arg == "icon" and isinstance(keyword.value, ast.Constant)]


def test_every_page_icon_is_one_the_app_ships_not_an_emoji():
    """Issue 24 point 10: emoji icons drew as empty boxes without an emoji font. Material icons draw
    from the font Streamlit serves itself; the browser test checks they render with the network closed."""
    from streamlit.string_util import validate_material_icon

    icons = [icon for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))] for icon in _icons(path)]
    functions = {function for function, _ in icons}
    assert {"st.Page", "st.page_link"} <= functions and len(icons) >= 9  # six pages and the links to Analyze
    for function, icon in icons:
        assert icon.startswith(":material/") and validate_material_icon(icon) == icon, (function, icon)
    # A Material page icon becomes the tab's favicon, fetched from Google, unless the app sets its own first.
    source = (ROOT / "app.py").read_text()
    assert source.index("st.set_page_config(page_icon=FAVICON)") < source.index("st.navigation(")
    favicon = ROOT / "assets" / "favicon.png"
    assert favicon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    at = run_page("app.py")
    assert not at.exception and "Compare" in source


def test_each_analysis_offers_a_one_file_report_that_opens_offline(monkeypatch):
    import app_why

    reports: list[str] = []
    original = app_why.render_report
    monkeypatch.setattr(app_why, "render_report", lambda *args, **kwargs: reports.append(original(*args, **kwargs))
                        or reports[-1])
    at = upload(run_page("pages/1_Analyze.py"), ANGRY)
    button = next(button for button in at.get("download_button") if button.proto.label == "Download report (HTML)")
    assert json.loads(json.dumps(button.proto.url)) and reports
    document = reports[-1]
    text = " ".join(parsed(document).text)
    assert_offline(document)
    answer = answers(at)[0]
    emotion = re.search(r"\*\*(\w+)\*\*", answer).group(1)
    assert f"{emotion}, " in text and ANGRY.name in text
    assert "most female training voices" in text and "It knows the voices of" in text
    assert "<svg" in document and len(document) < 200_000
