"""Streamlit helpers shared by the app's pages (UI only; all the work is in ``ser/``).

The model bundle is loaded once per process (``st.cache_resource``; a Bundle is
thread-safe), ``metrics.json`` is read once, and an analysis is cached by the clip's
bytes so re-running a page (every widget click does) does not score the clip again.
:func:`show_analysis` is the one view of a result, used for uploads, recordings, live
takes and the examples alike.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import streamlit as st

from ser.config import read_json
from ser.errors import SERError
from ser.reporting import plots
from ser.serving.analysis import Analysis, analyze_audio
from ser.serving.bundle import Bundle, load_bundle
from ser.training.data import parse_ravdess_name

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "assets" / "examples"
#: Upload types offered by the file picker (the content, not the extension, decides the decoder).
UPLOAD_TYPES = ["wav", "flac", "ogg", "mp3", "m4a", "webm"]


def model_dir() -> Path:
    """The bundle folder: ``SER_MODEL_DIR`` if set, else ``models/`` next to the app."""
    return Path(os.environ.get("SER_MODEL_DIR") or ROOT / "models")


def page_setup(title: str) -> None:
    """Page config shared by every page (wide layout: the charts need the width).

    No ``page_icon``: a Material icon as favicon is fetched from Google's font servers, and
    the app must work offline; Streamlit's bundled favicon is used instead.
    """
    st.set_page_config(page_title=f"{title} · Speech emotion", layout="wide")


@st.cache_resource(show_spinner="Loading the model…")
def _load_bundle(path: str) -> Bundle:
    return load_bundle(path)


def get_bundle() -> Bundle:
    """The model bundle of :func:`model_dir`, loaded once per server process."""
    return _load_bundle(str(model_dir()))


@st.cache_data(show_spinner=False)
def _read_metrics(path: str, modified: float) -> dict[str, Any]:
    return read_json(Path(path))  # ``modified`` is only part of the cache key: a new file is re-read


def get_metrics() -> dict[str, Any] | None:
    """``metrics.json`` of the bundle, or None when the bundle has none."""
    path = model_dir() / "metrics.json"
    return _read_metrics(str(path), path.stat().st_mtime) if path.is_file() else None


@st.cache_data(show_spinner=False, max_entries=16)
def _analyze(data: bytes, name: str, bundle_path: str) -> Analysis:
    return analyze_audio(data, name=name, bundle=_load_bundle(bundle_path))


def analyze(data: bytes, name: str) -> Analysis:
    """:func:`ser.serving.analysis.analyze_audio` with the shared bundle, cached by content, name and bundle."""
    return _analyze(data, name, str(model_dir()))


def chart(figure: Any, *, key: str) -> None:
    """Draw a plotly figure as built: Streamlit's chart theme would replace its colour scales."""
    st.plotly_chart(figure, key=key, theme=None, config={"displaylogo": False})


def bundle_or_stop() -> Bundle:
    """The bundle, or an explanation and a stopped page when it cannot be loaded."""
    try:
        return get_bundle()
    except SERError as error:
        st.error(f"The model could not be loaded: {error}")
        st.stop()
        raise  # unreachable: st.stop() raises; keeps type checkers happy


def example_clips() -> list[tuple[Path, str]]:
    """Example files with a readable label like "angry · actor 12 (female)", sorted by name."""
    clips = []
    for path in sorted(EXAMPLES_DIR.glob("*.flac")):
        item = parse_ravdess_name(path)
        clips.append((path, f"{item.emotion} · actor {item.actor:02d} ({item.gender})"))
    return clips


def plain(text: str) -> str:
    """Escape Markdown punctuation so user-controlled text (file names, messages) shows as typed."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", str(text))


def _top(values: dict[str, float] | None) -> tuple[str, float] | None:
    if not values:
        return None
    label = max(values, key=values.get)
    return label, values[label]


def show_prediction(analysis: Analysis, *, bundle: Bundle) -> None:
    """The answer in words: emotion + calibrated confidence, or a plain "not sure"."""
    prediction = analysis.prediction
    if prediction.sure:
        st.success(f"Predicted emotion: **{prediction.emotion}** — {prediction.confidence:.0%} confidence")
    else:
        st.warning(
            f"Predicted emotion: **not sure** — the best guess, *{prediction.emotion}*, has only "
            f"{prediction.confidence:.0%} confidence, below the {bundle.confidence_threshold:.0%} the model "
            "needs to be right clearly more often than chance."
        )
    extras = []
    for head, word in (("gender", "voice"), ("intensity", "intensity")):
        top = _top(getattr(prediction, head))
        if top:
            extras.append(f"{word}: {top[0]} ({top[1]:.0%})")
    if extras:
        st.caption(" · ".join(extras) + f" · {prediction.speech_seconds:.1f} s of sound scored")


def show_analysis(analysis: Analysis, *, bundle: Bundle, key: str) -> None:
    """Full view of one clip: player, answer, probabilities, waveform (+ timeline), spectrogram, downloads.

    Parameters
    ----------
    analysis : Analysis
    bundle : Bundle
        For the threshold, the emotion order and the feature config.
    key : str
        Unique per call on a page (widget keys of the download buttons).
    """
    st.text(f"{analysis.name} · {analysis.duration:.1f} s")  # st.text: a file name is never rendered as markup
    left, right = st.columns([2, 3])
    with left:
        st.audio(analysis.waveform, sample_rate=analysis.sample_rate)
        show_prediction(analysis, bundle=bundle)
        if analysis.timeline is not None:
            voiced = int(analysis.timeline.voiced.sum())
            answer = (
                "the answer scores the whole clip at once, as one utterance"
                if analysis.prediction is not analysis.timeline.overall
                else f"the answer averages the {voiced} windows with speech"
            )
            st.caption(
                f"Longer than the model's {bundle.config.window_seconds:g} s window: the timeline scores "
                f"{len(analysis.timeline.starts)} windows {bundle.config.window_hop_seconds:g} s apart; {answer}."
            )
    with right:
        chart(
            plots.probability_figure(probabilities=analysis.prediction.probabilities,
                                     threshold=bundle.confidence_threshold, height=280),
            key=f"{key}-probabilities",
        )
    chart(
        plots.waveform_figure(waveform=analysis.waveform, sample_rate=analysis.sample_rate,
                              timeline=analysis.timeline, emotions=bundle.emotions),
        key=f"{key}-waveform",
    )
    chart(plots.spectrogram_figure(log_mel=analysis.log_mel, config=bundle.config), key=f"{key}-spectrogram")
    stem = Path(analysis.name).stem or "clip"
    first, second, _ = st.columns([1, 1, 3])
    first.download_button("Download JSON", analysis.to_json(), file_name=f"{stem}-emotion.json",
                          mime="application/json", key=f"{key}-json")
    second.download_button("Download CSV", analysis.to_csv(), file_name=f"{stem}-emotion.csv", mime="text/csv",
                           key=f"{key}-csv")


def analyze_and_show(data: bytes, *, name: str, key: str) -> Analysis | None:
    """Analyse bytes and show the result, or show the library's message for bad input."""
    bundle = bundle_or_stop()
    try:
        with st.spinner(f"Analysing {name}…"):
            analysis = analyze(data, name)
    except SERError as error:
        st.error(plain(str(error)))
        return None
    show_analysis(analysis, bundle=bundle, key=key)
    return analysis
