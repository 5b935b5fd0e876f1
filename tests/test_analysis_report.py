"""The one-file report, the arousal/valence figures and the cues an analysis carries.

The report must open offline: it parses as HTML, its SVG as XML, and it names no other host.
"""

from __future__ import annotations

import dataclasses
import datetime
import html.parser
import math
import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from ser.reporting.affect_plots import DERIVATION, affect_timeline_figure, circumplex_figure
from ser.reporting.analysis_report import cue_rows, cue_value, render_report, waveform_svg
from ser.serving.analysis import Analysis, analyze_audio, waveform_to_wav
from ser.serving.bundle import ClipPrediction, load_bundle
from ser.serving.cues import CUE_WORDS, CueReference, VoiceCues, describe_cues
from ser.serving.segments import Segment
from tests.conftest import synthetic_voice

RATE = 16000
EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
#: Elements that have no end tag in HTML.
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
#: SVG elements that may be written self-closing.
SELF_CLOSING = {"path", "rect", "circle", "line", "polyline"}


class TagChecker(html.parser.HTMLParser):
    """Collects the document's text and fails on an end tag that closes nothing open."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag not in VOID | SELF_CLOSING:
            self.problems.append(f"<{tag}/>")

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parsed(document: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(document)
    checker.close()
    assert not checker.problems and not checker.open, (checker.problems, checker.open)
    return checker


def assert_offline(document: str) -> None:
    """No URL of any host: nothing to fetch, nowhere to link."""
    assert not re.search(r"(?i)\b(?:https?:|ftp:|//[a-z0-9.-]+\.[a-z]{2,})", document), \
        re.findall(r"(?i)https?:\S{0,60}", document)
    assert not re.search(r"(?i)<(script|link|img|iframe|object)\b", document)


def prediction(emotion: str, confidence: float, *, threshold: float = 0.465) -> ClipPrediction:
    rest = (1 - confidence) / (len(EMOTIONS) - 1)
    probabilities = {label: confidence if label == emotion else rest for label in EMOTIONS}
    return ClipPrediction(emotion=emotion, confidence=confidence, probabilities=probabilities,
                          sure=confidence >= threshold, gender={"male": 0.2, "female": 0.8},
                          intensity={"normal": 0.3, "strong": 0.7}, speech_seconds=2.0)


def make_analysis(*, name: str = "clip.wav", segments: int = 1, sure: bool = True) -> Analysis:
    seconds = 3.0 * segments
    waveform = np.concatenate([synthetic_voice(seconds=3.0, seed=seed) for seed in range(segments)])
    parts = tuple(Segment(start=3.0 * i, end=3.0 * (i + 1), prediction=prediction("angry" if i % 2 == 0 else "sad",
                                                                                  0.9 if sure else 0.3))
                  for i in range(segments))
    return Analysis(name=name, sample_rate=RATE, waveform=waveform, duration=seconds,
                    log_mel=np.zeros((10, 64), np.float32), prediction=parts[0].prediction, segments=parts,
                    model_version="abc123def456", threshold=0.465, analysis_seconds=0.5,
                    cues=VoiceCues(20.0, 8.0, -30.0, 7.0, 4.5, -25.0, 2.5),
                    analysed_at=datetime.datetime(2026, 12, 2, 10, 30, tzinfo=datetime.UTC))


def comparisons_for(analysis: Analysis):
    fields = list(CUE_WORDS)
    reference = CueReference(centre=VoiceCues(**dict.fromkeys(fields, 0.0)),
                             spread=VoiceCues(**dict.fromkeys(fields, 5.0)), whom="most female training voices")
    return describe_cues(analysis.cues, reference=reference)


def test_report_parses_holds_the_answer_and_names_no_other_host():
    analysis = make_analysis(name='<script>alert("x")</script> take.wav', segments=2)
    document = render_report(analysis, comparisons=comparisons_for(analysis), compared_with="the female actors",
                             about="It knows the voices of 20 actors.")
    text = " ".join(parsed(document).text)
    assert_offline(document)
    assert "<script>" not in document  # the file name is escaped, never markup
    assert '<script>alert("x")</script> take.wav' in text
    for expected in ("angry, 90% confidence", "abc123def456", "46.5%", "2026-12-02 10:30 UTC",
                     "Russell's (1980) circumplex", "It knows the voices of 20 actors.",
                     "Compared with the female actors"):
        assert expected in text, expected
    for comparison in comparisons_for(analysis):
        assert comparison.sentence in text
    for label in EMOTIONS:
        assert label in text
    assert text.count("angry") >= 2 and "sad" in text  # both segments in the table
    assert "default-src 'none'" in document  # the browser is told to fetch nothing


def test_report_says_not_sure_below_the_threshold_and_shows_no_cue_section_without_cues():
    analysis = make_analysis(sure=False)
    text = " ".join(parsed(render_report(analysis)).text)
    assert "not sure: the best guess, angry, has 30% confidence" in text
    assert "What the model hears" not in text


def test_waveform_svg_is_xml_with_one_band_rect_per_segment_in_its_colour():
    waveform = synthetic_voice(seconds=4.0)
    svg = waveform_svg(waveform=waveform, sample_rate=RATE,
                       segments=[(0.0, 1.5, "angry"), (1.5, 3.0, "not sure"), (3.0, 4.0, 'x"<y')], width=400)
    root = ElementTree.fromstring(svg)
    assert root.tag == "svg" and "http" not in svg
    rects = root.findall("rect")
    assert [rect.get("fill") for rect in rects] == ["#D55E00", "#BBBBBB", "#BBBBBB"]
    assert float(rects[0].get("width")) == pytest.approx(150, abs=0.2)  # 1.5 of 4 s of 400 px
    assert rects[2].find("title").text.endswith('x"<y')
    path = root.find("path").get("d")
    assert path.count("M") <= 600
    assert len(svg) < 40_000  # a 10-minute file draws as small as a 4-second one
    long = waveform_svg(waveform=np.tile(waveform, 150), sample_rate=RATE)
    assert len(long) < 40_000 and ElementTree.fromstring(long) is not None


def test_waveform_svg_of_silence_and_of_nothing():
    assert ElementTree.fromstring(waveform_svg(waveform=np.zeros(RATE), sample_rate=RATE)).tag == "svg"
    assert ElementTree.fromstring(waveform_svg(waveform=np.zeros(0), sample_rate=RATE)).tag == "svg"


def test_cue_values_read_in_their_units():
    assert cue_value("pitch_semitones", 12.0) == "110 Hz"  # an octave above 55 Hz
    assert cue_value("syllables_per_second", 4.56) == "4.6 syllables per second"
    assert cue_value("loudness_dbfs", math.nan) == "n/a"
    rows = cue_rows(comparisons_for(make_analysis()))
    assert [list(row) for row in rows][0] == ["cue", "this recording", "reference"]
    assert [row["cue"] for row in rows] == [words[0] for words in CUE_WORDS.values()]


def test_circumplex_figure_places_the_emotions_and_the_points():
    figure = circumplex_figure(arousal=[0.9, math.nan, -0.3], valence=[-0.1, 0.2, -0.7], labels=["a", "b", "c"],
                               overall=(0.5, -0.3))
    assert figure.layout.yaxis.scaleanchor == "x"
    places = figure.data[1]
    assert list(places.customdata) == EMOTIONS and "text" not in places.mode  # named by annotations, outside
    assert math.hypot(places.x[EMOTIONS.index("angry")], places.y[EMOTIONS.index("angry")]) == pytest.approx(1)
    points = figure.data[2]
    assert list(points.x) == [-0.1, -0.7] and list(points.hovertext) == ["a", "c"]  # the NaN point left out
    assert list(points.text) == ["1", "3"] and points.textposition == "middle center"  # numbers inside markers
    assert figure.data[3].name == "whole recording"
    with pytest.raises(ValueError, match="one value per point"):
        circumplex_figure(arousal=[0.1, 0.2], valence=[0.1])
    assert "probabilities" in DERIVATION and "Russell" in DERIVATION


def test_emotion_names_sit_outside_the_circle_where_no_answer_can_be():
    """Issue 24 point 5: the points covered the emotion labels. An answer is a probability-weighted
    mean of places on the unit circle, so it stays inside; every name starts outside it, hanging away
    from the centre, and inside the axes so a phone's width does not cut it."""
    from ser.serving.affect import affect_of

    rng = np.random.default_rng(1)
    answers = [affect_of(dict(zip(EMOTIONS, rng.dirichlet(np.full(8, 0.2)).tolist(), strict=True)))
               for _ in range(200)]
    figure = circumplex_figure(arousal=[a.arousal for a in answers], valence=[a.valence for a in answers])
    assert max(math.hypot(a.arousal, a.valence) for a in answers) <= 1 + 1e-9
    names = {note.text.split(" ")[0]: note for note in figure.layout.annotations}
    assert set(names) == set(EMOTIONS)
    limit = figure.layout.xaxis.range[1]
    for name, note in names.items():
        radius = math.hypot(note.x, note.y)
        assert 1.1 <= radius < limit - 0.3, name
        # the anchor is on the centre's side of the text: the text runs outwards
        if note.x > 0.3:
            assert note.xanchor == "left", name
        if note.x < -0.3:
            assert note.xanchor == "right", name
        if note.y > 0.3:
            assert note.yanchor == "bottom", name
        if note.y < -0.3:
            assert note.yanchor == "top", name
    assert names["neutral"].text.endswith("(centre)") and names["neutral"].y < -1  # not on the centre's points


def test_many_segments_are_unnumbered_points_shaded_in_time_order():
    """49 segments drew an unreadable cluster of numbers: many points carry no text, their hover says which."""
    rng = np.random.default_rng(2)
    arousal, valence = rng.uniform(-0.5, 0.5, 49), rng.uniform(-0.5, 0.5, 49)
    labels = [f"{index + 1}. segment" for index in range(49)]
    figure = circumplex_figure(arousal=arousal, valence=valence, labels=labels, overall=(0.0, 0.0))
    points = figure.data[2]
    assert "text" not in points.mode and "lines" not in points.mode
    assert list(points.hovertext) == labels and "%{hovertext}" in points.hovertemplate
    assert list(points.marker.color) == list(range(49))  # shade = time order, light to dark
    assert "earlier" in points.name and figure.data[3].marker.symbol == "diamond-open"
    # few but crowded: numbers would touch, so none either
    crowded = circumplex_figure(arousal=[0.5, 0.52, -0.5], valence=[0.1, 0.12, 0.3])
    assert "text" not in crowded.data[2].mode
    spread = circumplex_figure(arousal=[0.5, -0.5, 0.0], valence=[0.5, -0.5, 0.6])
    assert list(spread.data[2].text) == ["1", "2", "3"]


def test_affect_timeline_has_one_step_per_segment_on_the_recording_axis():
    figure = affect_timeline_figure(starts=[0, 3], ends=[3, 5], arousal=[0.5, math.nan], valence=[-0.2, 0.1],
                                    duration=5.0)
    arousal, valence = figure.data
    assert list(arousal.x) == [0, 3, None, 3, 5, None]
    assert list(arousal.y) == [0.5, 0.5, None, None, None, None]
    assert list(valence.y)[3:5] == [0.1, 0.1]
    assert list(figure.layout.xaxis.range) == [0, 5.0]


@pytest.mark.parametrize("pause", [0.0, 1.2])  # one utterance; two segments
def test_analysis_carries_cues_of_the_whole_clip_and_each_segment(tiny_bundle, pause):
    bundle = load_bundle(tiny_bundle)
    voice = np.concatenate([synthetic_voice(seconds=2.0, seed=1, pitch=120.0), np.zeros(int(pause * RATE), np.float32),
                            synthetic_voice(seconds=2.0, seed=2, pitch=200.0)])
    analysis = analyze_audio(waveform_to_wav(voice, sample_rate=RATE), name="clip.wav", bundle=bundle)
    cues = analysis.cues
    assert cues is not None and all(math.isfinite(value) for value in dataclasses.astuple(cues))
    assert 110 < cues.pitch_hz < 210
    assert analysis.analysed_at is not None and analysis.analysed_at.tzinfo is not None
    segments = [segment for segment in analysis.segments if segment.prediction is not None]
    assert len(segments) == (1 if pause == 0 else 2)
    assert all(segment.cues is not None for segment in segments)
    if len(segments) == 1:
        assert cues == segments[0].cues
    else:
        low, high = sorted(segment.cues.pitch_hz for segment in segments)
        assert low < cues.pitch_hz < high and high / low > 1.4  # the two voices, and the whole between them
        weights = [segment.speech_seconds for segment in segments]
        expected = np.average([segment.cues.jitter_percent for segment in segments], weights=weights)
        assert cues.jitter_percent == pytest.approx(expected)


def test_report_says_when_the_joint_views_answered_and_only_then():
    import dataclasses

    from ser.serving.joint_views import BOTH_CORPORA, ROUTED_NOTE

    analysis = make_analysis()
    assert ROUTED_NOTE not in " ".join(parsed(render_report(analysis)).text)
    answer = dataclasses.replace(analysis.prediction, answered_by=BOTH_CORPORA)
    routed = dataclasses.replace(analysis, prediction=answer)
    assert ROUTED_NOTE in " ".join(parsed(render_report(routed)).text)
