"""Compare page: any two analyses of this session side by side: waveform, answer, probabilities, cues.

Every analysis of the session (uploads and recordings on Analyze, the examples on Home, takes on
Live) is kept by ``app_ui`` (``app_ui.session_analyses``, the latest ``app_ui.KEPT_SECONDS`` of
audio); nothing is scored again here.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

import app_ui
import app_why
from ser.reporting import plots
from ser.reporting.analysis_report import cue_value
from ser.serving.analysis import Analysis
from ser.serving.cues import CUE_WORDS, VoiceCues
from ser.serving.words import answer_words

app_ui.page_setup("Compare")
st.title("Compare two analyses")
bundle = app_ui.bundle_or_stop()
analyses = list(app_ui.session_analyses().values())

if len(analyses) < 2:
    have = "none yet" if not analyses else "one so far"
    st.info(
        f"Comparing needs two analyses from this session, and there is {have}. Upload or record on **Analyze** "
        "(several files at once work too), try an example on **Home**, or analyse a take on **Live**; every "
        "analysis of this session is listed here."
    )
    st.page_link("pages/1_Analyze.py", label="Go to Analyze", icon=":material/search:")
    st.stop()


def label(index: int) -> str:
    analysis = analyses[index]
    when = f" · {analysis.analysed_at:%H:%M:%S}" if analysis.analysed_at else ""
    return f"{index + 1}. {analysis.name} · {analysis.duration:.1f} s · {answer_words(analysis.prediction)}{when}"


st.caption(f"{len(analyses)} analyses kept in this session, oldest first. Choose one for each side.")
choose_left, choose_right = st.columns(2)
left = choose_left.selectbox("Left", range(len(analyses)), index=len(analyses) - 2, format_func=label,
                             key="compare-left")
right = choose_right.selectbox("Right", range(len(analyses)), index=len(analyses) - 1, format_func=label,
                               key="compare-right")
if left == right:
    st.caption("The same analysis is on both sides: choose another on one of them.")


pair = (analyses[left], analyses[right])


def side_by_side(draw) -> None:
    """``draw(analysis, key)`` for the left and the right analysis in one row: rows keep the sides aligned."""
    for side, column, analysis in zip(("left", "right"), st.columns(2), pair, strict=True):
        with column:
            draw(analysis, f"compare-{side}")


def header(analysis: Analysis, key: str) -> None:
    st.text(f"{analysis.name} · {analysis.duration:.1f} s")  # st.text: a file name is never rendered as markup
    st.audio(analysis.waveform, sample_rate=analysis.sample_rate)


def probabilities(analysis: Analysis, key: str) -> None:
    app_ui.chart(plots.probability_figure(probabilities=analysis.prediction.probabilities,
                                          threshold=bundle.confidence_threshold, height=260),
                 key=f"{key}-probabilities")


def recording(analysis: Analysis, key: str) -> None:
    segments = analysis.segments
    app_ui.chart(plots.recording_figure(
        waveform=analysis.waveform, sample_rate=analysis.sample_rate, log_mel=analysis.log_mel, config=bundle.config,
        segment_starts=[segment.start for segment in segments], segment_ends=[segment.end for segment in segments],
        segment_answers=[answer_words(segment.prediction) for segment in segments],
    ), key=f"{key}-recording")


side_by_side(header)
side_by_side(lambda analysis, key: app_ui.show_prediction(analysis, bundle=bundle))
side_by_side(probabilities)
side_by_side(recording)
side_by_side(lambda analysis, key: app_why.show_cues(analysis, numbers=False))  # numbers: the table below


def cue_cell(cues: VoiceCues | None, field: str) -> str:
    return cue_value(field, getattr(cues, field)) if cues is not None else "n/a"


st.subheader("The cues side by side")
st.table([
    {"cue": CUE_WORDS[field.name][0], "left": cue_cell(pair[0].cues, field.name),
     "right": cue_cell(pair[1].cues, field.name)}
    for field in dataclasses.fields(VoiceCues)
])
st.caption(app_why.LOUDNESS_NOTE)
