"""The "why" of an analysis, its one-file report, and which voices the model knows (Streamlit views).

:func:`show_why` is drawn by :func:`app_ui.show_analysis` under every analysis (uploads,
recordings, a batch's detail view, live takes, the examples): the cues the model hears in words,
compared with the speaker's own calibration recording when one is given (``reference_cues``),
else with the training actors of the gender the model heard in the whole recording, or with all
of them when that gender is unclear (:func:`ser.serving.cues.read_voice`): one reading of the voice
for the whole recording and each of its segments; and the arousal/valence view of the answer (one
point per segment for long audio). :func:`report_button` offers the analysis as one
HTML file (:mod:`ser.reporting.analysis_report`). The cues themselves are measured once, in the
analysis (:attr:`ser.serving.analysis.Analysis.cues`); nothing here computes audio features.
"""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

import app_ui
from ser.reporting.affect_plots import DERIVATION, affect_timeline_figure, circumplex_figure
from ser.reporting.analysis_report import cue_rows, render_report
from ser.reporting.results import load_training
from ser.reporting.schema import ResultsError
from ser.reporting.summary import voices_sentence
from ser.serving.affect import CIRCUMPLEX_DEGREES, affect_of
from ser.serving.analysis import Analysis
from ser.serving.cues import (
    ALL_VOICES,
    DEFAULT_CUES,
    CueComparison,
    CueReference,
    VoiceCues,
    describe_cues,
    load_cue_references,
    read_voice,
    reference_for,
)
from ser.serving.words import answer_words

LOUDNESS_NOTE = "Loudness also depends on the microphone and how close it was."


@st.cache_data(show_spinner=False)
def _voices_sentence(path: str, modified: int) -> str | None:
    try:
        return voices_sentence(load_training(Path(path)))  # ``modified``: a new file is re-read
    except ResultsError:
        return None


def known_voices() -> str | None:
    """One sentence on which voices the model knows, from the bundle's ``metrics.json`` (None without it)."""
    path = app_ui.model_dir() / "metrics.json"
    return _voices_sentence(str(path), path.stat().st_mtime_ns) if path.is_file() else None


def cues_path() -> Path | None:
    """The cue references: ``cues.json`` of the bundle, else the shipped one; None when neither exists."""
    for path in (app_ui.model_dir() / "cues.json", DEFAULT_CUES):
        if path.is_file():
            return path
    return None


@st.cache_resource(show_spinner=False)
def _references(path: str, modified: int) -> dict[str, CueReference]:
    return load_cue_references(path)


def cue_reference(analysis: Analysis, *, reference_cues: VoiceCues | None = None) -> CueReference | None:
    """What the analysis's cues are compared with: the speaker's own recording when given, else the
    training actors of the gender the model heard in the whole recording (all of them when it is
    unclear); None without reference data. The same for every segment of the recording."""
    path = cues_path()
    if path is None:
        return None
    references = _references(str(path), path.stat().st_mtime_ns)
    # The whole recording's gender answer, never a segment's: one reading of the voice per recording.
    return reference_for(gender=analysis.prediction.gender, references=references, own=reference_cues, path=path)


def compared_with(analysis: Analysis, *, reference: CueReference, own: bool) -> str:
    """The reference as a phrase for a caption or the report; it says when the voice's gender was unclear."""
    if own:
        return "your calibration recording"
    reading = read_voice(analysis.prediction.gender)
    scope = " over the whole recording" if len(analysis.segments) > 1 else ""
    heard = f"{reading.heard}{scope}, {reading.probability:.0%}" if reading else "no gender"
    if reference.whom == ALL_VOICES or reading is None:
        return ("all the actors of the training data speaking neutrally, men and women alike, because the "
                f"voice's gender is unclear (the model heard {heard})")
    return (f"the {reading.heard} actors of the training data speaking neutrally (the model heard a "
            f"{reading.heard} voice{scope}, {reading.probability:.0%})")


def comparisons_of(analysis: Analysis, *, reference_cues: VoiceCues | None = None
                   ) -> tuple[list[CueComparison], str]:
    """The cues in words and what they are compared with (empty when there are no cues or no reference)."""
    reference = cue_reference(analysis, reference_cues=reference_cues)
    if analysis.cues is None or reference is None:
        return [], ""
    return (describe_cues(analysis.cues, reference=reference),
            compared_with(analysis, reference=reference, own=reference_cues is not None))


def segment_comparisons(analysis: Analysis, *, reference_cues: VoiceCues | None = None
                        ) -> list[tuple[int, list[CueComparison]]]:
    """Each described segment's cues in words, as (1-based segment number, comparisons), all against
    the one reference of the whole recording (:func:`cue_reference`); empty without a reference."""
    reference = cue_reference(analysis, reference_cues=reference_cues)
    if reference is None:
        return []
    return [(index, describe_cues(segment.cues, reference=reference))
            for index, segment in enumerate(analysis.segments, start=1) if segment.cues is not None]


def segment_rows(analysis: Analysis, *, reference_cues: VoiceCues | None = None) -> list[dict[str, str]]:
    """One table row per described segment: when, its answer, and each cue's difference in a word."""
    rows = []
    for index, comparisons in segment_comparisons(analysis, reference_cues=reference_cues):
        segment = analysis.segments[index - 1]
        rows.append({"segment": f"{index}. {segment.start:.1f}-{segment.end:.1f} s",
                     "answer": answer_words(segment.prediction)}
                    | {comparison.label: comparison.word for comparison in comparisons})
    return rows


def show_cues(analysis: Analysis, *, reference_cues: VoiceCues | None = None, numbers: bool = True) -> None:
    """The cues the model hears, one line each in words, and (``numbers``) their values in an expander;
    for a recording cut into segments, also each segment's cues against the same reference."""
    comparisons, whom = comparisons_of(analysis, reference_cues=reference_cues)
    if not comparisons:
        st.caption("No voice cues to show: the recording holds too little voiced speech, or the cue "
                   "references (models/cues.json) are missing.")
        return
    several = len(analysis.segments) > 1
    st.markdown(f"**What the model hears{' (the whole recording)' if several else ''}**")
    st.markdown("\n".join(f"- {comparison.sentence}" for comparison in comparisons))
    st.caption(f"Compared with {whom}. {LOUDNESS_NOTE}")
    if numbers:
        with st.expander("The numbers"):
            st.table(cue_rows(comparisons))
    if several and (rows := segment_rows(analysis, reference_cues=reference_cues)):
        with st.expander("Each segment's cues"):
            st.caption("Every segment is compared with the same voices as the whole recording: one reading "
                       "of the voice, not one per sentence.")
            st.dataframe(rows, hide_index=True, width="stretch")


def _points(analysis: Analysis) -> tuple[list[float], list[float], list[str]]:
    arousal, valence, labels = [], [], []
    for index, segment in enumerate(analysis.segments, start=1):
        point = affect_of(segment.prediction.probabilities) if segment.prediction else None
        arousal.append(point.arousal if point else math.nan)
        valence.append(point.valence if point else math.nan)
        # As the segment picker names it: a "not sure" with its best guess and confidence.
        labels.append(f"{index}. {segment.start:.1f}-{segment.end:.1f} s: "
                      f"{answer_words(segment.prediction, confidence=True)}")
    return arousal, valence, labels


def show_affect(analysis: Analysis, *, key: str) -> None:
    """Arousal and valence of the answer on the circumplex; for several segments, one point each and over time."""
    if not set(analysis.prediction.probabilities) <= set(CIRCUMPLEX_DEGREES):
        st.caption("No arousal/valence view: this model's emotions have no place on the circumplex.")
        return
    overall = affect_of(analysis.prediction.probabilities)
    st.markdown("**Arousal and valence of the answer**")
    if len(analysis.segments) > 1:
        arousal, valence, labels = _points(analysis)
        app_ui.chart(circumplex_figure(arousal=arousal, valence=valence, labels=labels,
                                       overall=(overall.arousal, overall.valence), height=360),
                     key=f"{key}-circumplex")
        app_ui.chart(affect_timeline_figure(starts=[s.start for s in analysis.segments],
                                            ends=[s.end for s in analysis.segments], arousal=arousal,
                                            valence=valence, duration=analysis.duration, height=220),
                     key=f"{key}-affect-time")
    else:
        app_ui.chart(circumplex_figure(arousal=[overall.arousal], valence=[overall.valence], height=360),
                     key=f"{key}-circumplex")
    st.caption(f"Arousal {overall.arousal:+.2f}, valence {overall.valence:+.2f} (each from -1 to +1). {DERIVATION}")


def show_why(analysis: Analysis, *, key: str, reference_cues: VoiceCues | None = None) -> None:
    """Why this answer: the cues in words beside the arousal/valence view."""
    st.subheader("Why this answer")
    left, right = st.columns([1, 1])
    with left:
        show_cues(analysis, reference_cues=reference_cues)
    with right:
        show_affect(analysis, key=key)


def report_html(analysis: Analysis, *, reference_cues: VoiceCues | None = None) -> str:
    """The one-file HTML report of the analysis, with the cues compared as on screen."""
    comparisons, whom = comparisons_of(analysis, reference_cues=reference_cues)
    return render_report(analysis, comparisons=comparisons, compared_with=whom, about=known_voices() or "")


def report_button(analysis: Analysis, *, key: str, reference_cues: VoiceCues | None = None) -> None:
    """A "Download report (HTML)" button: one self-contained file that opens offline."""
    stem = Path(analysis.name).stem or "clip"
    st.download_button("Download report (HTML)", report_html(analysis, reference_cues=reference_cues),
                       file_name=f"{stem}-emotion-report.html", mime="text/html", key=f"{key}-report",
                       help="One file to share: the answer, probabilities, segments, cues in words and the "
                            "waveform. It opens in any browser, offline.")
