"""Streamlit helpers shared by the app's pages (UI only; all the work is in ``ser/``).

The model bundle is loaded once per process (``st.cache_resource``; a Bundle is
thread-safe), ``metrics.json`` is read once, and an analysis is cached by the clip's
bytes so re-running a page (every widget click does) does not score the clip again.
:func:`show_analysis` is the one view of a result, used for uploads, recordings, live
takes and the examples alike. When the session is calibrated to the speaker's voice
(``app_calibration``), every analysis is adapted to it as it is handed out (the kept one is
unadapted), so calibrating or forgetting never scores a clip again.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from ser.config import read_json
from ser.errors import SERError
from ser.reporting import plots
from ser.serving.analysis import NOT_SURE, Analysis, adapt_analysis, analyze_audio
from ser.serving.bundle import Bundle, ClipPrediction, load_bundle
from ser.serving.cues import VoiceCues
from ser.serving.joint_views import BOTH_CORPORA, ROUTED_NOTE
from ser.serving.segments import Segment
from ser.serving.speaker import SpeakerAdaptation
from ser.serving.unfamiliarity import Unfamiliarity
from ser.serving.words import answer_words
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


#: Seconds of audio whose analyses a browser session keeps (the latest; ~4 MB per minute held),
#: so a batch of short clips is never re-scored while a few long files stay bounded.
KEPT_SECONDS = 1800.0


#: Session key of the calibration to the speaker's voice: {bundle folder: SpeakerAdaptation}. Written by
#: app_calibration, read here; only ever in st.session_state (this browser session), never on disk.
VOICE = "voice-calibration"


#: Session key of the cues of the speaker's calibration recording: {bundle folder: VoiceCues}; the
#: "why" compares each analysis with them while the session is calibrated.
VOICE_CUES = "voice-calibration-cues"


def speaker_cues(bundle: Bundle) -> VoiceCues | None:
    """Cues of this session's calibration recording, while the session is calibrated for ``bundle``."""
    if speaker_adaptation(bundle) is None:
        return None
    return st.session_state.get(VOICE_CUES, {}).get(str(bundle.path))


def speaker_adaptation(bundle: Bundle) -> SpeakerAdaptation | None:
    """This session's calibration to the speaker's voice for ``bundle``; None when there is none."""
    return st.session_state.get(VOICE, {}).get(str(bundle.path))


def for_speaker(analysis: Analysis) -> Analysis:
    """``analysis`` adapted to the session's calibration (itself when there is none): no audio is scored."""
    bundle = get_bundle()
    return adapt_analysis(analysis, adaptation=speaker_adaptation(bundle), bundle=bundle)


def _kept() -> dict[str, Analysis]:
    """This session's analyses by content, name and bundle (oldest first)."""
    return st.session_state.setdefault("analyses", {})


def analysis_key(data: bytes, name: str) -> str:
    return f"{hashlib.sha1(data).hexdigest()}|{name}|{model_dir()}"


def analyze(data: bytes, name: str) -> Analysis:
    """:func:`ser.serving.analysis.analyze_audio` with the shared bundle, kept in the session.

    A clip already analysed in this session (same bytes, name and bundle) is never scored
    again: re-running a page, choosing a file of a batch or coming back from another page
    shows the kept result. While a new clip is scored, a progress bar counts its segments
    and estimates the time left. The answer is adapted to the speaker (:func:`for_speaker`).
    """
    key = analysis_key(data, name)
    kept = _kept()
    if key in kept:
        return for_speaker(kept[key])
    bar = st.progress(0.0, text=f"Analysing {name}…")

    def progress(done: int, total: int, elapsed: float) -> None:
        left = elapsed / done * (total - done)
        bar.progress(done / total, text=f"Analysing {name}: {done} of {total} segments, about {left:.0f} s left")

    try:
        analysis = analyze_audio(data, name=name, bundle=get_bundle(), progress=progress)
    finally:
        bar.empty()
    kept[key] = analysis
    while len(kept) > 1 and sum(item.duration for item in kept.values()) > KEPT_SECONDS:
        kept.pop(next(iter(kept)))
    return for_speaker(analysis)


def session_analyses() -> dict[str, Analysis]:
    """Every analysis this session keeps, by :func:`analysis_key`, oldest first (a copy: for listing)."""
    return dict(_kept())


def kept_analyses(keys: list[str]) -> list[Analysis]:
    """The session's analyses with these keys (:func:`analysis_key`), those still kept, in order,
    adapted to the speaker (:func:`for_speaker`)."""
    kept = _kept()
    return [for_speaker(kept[key]) for key in keys if key in kept]


def chart(figure: Any, *, key: str) -> None:
    """Draw a plotly figure as built: Streamlit's chart theme would replace its colour scales."""
    # No mode bar: on a phone it covers the titles; zooming by dragging still works.
    st.plotly_chart(figure, key=key, theme=None, config={"displaylogo": False, "displayModeBar": False})


#: Key of the Home page's container of an example's result (the DOM class ``st-key-<key>``).
HOME_RESULT = "home-result"
#: Scrolls the page to the element of class ``st-key-<key>`` once it is drawn (polled: the script may
#: run before Streamlit draws the container's content), at most for 10 s.
SCROLL_SCRIPT = """<script>
(() => {{
  const started = Date.now();
  const timer = setInterval(() => {{
    const target = document.querySelector(".st-key-{key}");
    if (target) {{
      clearInterval(timer);
      target.style.scrollMarginTop = "3.5rem";  // below Streamlit's header bar, which covers the top
      target.scrollIntoView({{behavior: "smooth", block: "start"}});
    }}
    else if (Date.now() - started > 10000) {{ clearInterval(timer); }}
  }}, 100);
}})(); /* {nonce} */
</script>"""


def scroll_into_view(key: str) -> None:
    """Scroll the browser to the container with widget key ``key`` (``st.container(key=key)``).

    Call it only in the run that should scroll (e.g. the one a button started): every call
    carries a new nonce, so the browser runs it again even when the previous run drew the same.
    """
    nonce = st.session_state["scroll-nonce"] = st.session_state.get("scroll-nonce", 0) + 1
    # The key is the app's own constant, not user input: safe to put in the script.
    st.html(SCROLL_SCRIPT.format(key=key, nonce=nonce), unsafe_allow_javascript=True)


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


def in_words(prediction: ClipPrediction) -> str:
    """ "fearful (61%)", or "not sure: perhaps sad (31%)": an answer in one short line."""
    return answer_words(prediction, confidence=True)


def show_prediction(analysis: Analysis, *, bundle: Bundle) -> None:
    """The answer in words: emotion + calibrated confidence, or a plain "not sure"; calibrated to
    the speaker, the answer without the calibration under it."""
    prediction = analysis.prediction
    if prediction.sure and warns(analysis.unfamiliarity):
        # Not green: the confidence was calibrated on voices like the training actors', and on
        # unlike audio the model is sure and wrong far more often (the Model page measures it).
        st.info(
            f"Predicted emotion: **{prediction.emotion}** — the model says {prediction.confidence:.0%}, but that "
            "confidence was measured on voices like its training actors' and overstates for this input."
        )
    elif prediction.sure:
        st.success(f"Predicted emotion: **{prediction.emotion}** — {prediction.confidence:.0%} confidence")
    else:
        st.warning(
            f"Predicted emotion: **not sure** — the best guess, *{prediction.emotion}*, has only "
            f"{prediction.confidence:.0%} confidence, below the {bundle.confidence_threshold:.0%} the model "
            "needs to be right clearly more often than chance."
        )
    show_unfamiliarity(analysis.unfamiliarity, prediction=prediction, calibrated=analysis.adapted)
    if analysis.about_one_word:
        st.caption(one_word_note(prediction.speech_seconds))
    if analysis.unadapted is not None:
        if analysis.profiled:
            st.caption(f"Read with your voice profile. Generic answer: {in_words(analysis.unadapted)}")
        else:
            st.caption(f"Calibrated to your voice. Without calibration: {in_words(analysis.unadapted)}")
    extras = []
    for head, word in (("gender", "voice"), ("intensity", "intensity")):
        top = _top(getattr(prediction, head))
        if top:
            extras.append(f"{word}: {top[0]} ({top[1]:.0%})")
    if extras:
        st.caption(" · ".join(extras) + f" · {prediction.speech_seconds:.1f} s of sound scored")


@st.cache_data(show_spinner=False)
def _word_figures(folder: str, modified: float) -> tuple[float, float, str, float] | None:
    from ser.reporting.model_card import most_given
    from ser.reporting.provenance import model_sha256
    from ser.reporting.results import load_robustness
    from ser.reporting.schema import ResultsError

    try:
        robustness = load_robustness(Path(folder) / "robustness.json")
    except (OSError, ResultsError):
        return None  # no file, or one another version wrote: the note says what it can without figures
    word, clean = robustness.conditions.get("one_word"), robustness.conditions.get("clean")
    top = most_given(word.answer_share) if word is not None else None
    if clean is None or top is None or robustness.model_sha256 != model_sha256(Path(folder) / "model.keras"):
        return None  # measured on another model: its figures say nothing about this one
    return word.accuracy, clean.accuracy, top[0], top[1]


def one_word_note(speech_seconds: float) -> str:
    """What an answer from about a word is worth, with the bundle's own figures (``robustness.json``) when it
    measured them on this model."""
    path = model_dir() / "robustness.json"
    figures = _word_figures(str(model_dir()), path.stat().st_mtime) if path.is_file() else None
    note = f"Only {speech_seconds:.1f} s of speech, about one word: treat the answer as a guess."
    if figures is not None:
        word, clean, emotion, share = figures
        note += (f" On single words of studio actors it never heard, the main model is right {word:.0%} of the time "
                 f"({clean:.0%} on whole sentences) and answers {emotion} for {share:.0%} of them.")
    return note + " A sentence or two gives a surer reading."


def warns(unfamiliarity: Unfamiliarity | None) -> bool:
    """Whether the input was checked (:mod:`ser.serving.unfamiliarity`) and found unlike the training data."""
    return unfamiliarity is not None and not unfamiliarity.familiar


#: Label of the expander under the one-sentence warning that holds its details.
WARNING_DETAILS = "Why, and what helps"


def show_unfamiliarity(unfamiliarity: Unfamiliarity | None, *, prediction: ClipPrediction | None = None,
                       calibrated: bool | None = None) -> None:
    """One short warning sentence under the answer when the input is unlike the training data, its
    details (each reason, why it matters, what helps) one click away; nothing when it looks familiar
    or was not checked. When ``prediction`` was answered by the joint views
    (:mod:`ser.serving.joint_views`), a caption under it says so.

    ``calibrated``: whether the answer is calibrated to the speaker, so calibrating is not advised
    again; None reads it from the session (:func:`speaker_adaptation`)."""
    routed = prediction is not None and prediction.answered_by == BOTH_CORPORA
    if warns(unfamiliarity):
        if calibrated is None:
            calibrated = speaker_adaptation(get_bundle()) is not None
        st.warning(unfamiliarity.sentence)
        with st.expander(WARNING_DETAILS):
            st.markdown(" ".join(unfamiliarity.messages))
            st.markdown(unfamiliarity.advice(calibrated=calibrated))
    if routed:  # also when most of the speech was routed though no single reason held half of it
        st.caption(ROUTED_NOTE)


def summary_sentence(analysis: Analysis) -> str:
    """ "62% of the speech sounded calm, 25% angry, 13% not sure": shares of the scored speech
    by each segment's answer, largest first."""
    seconds: dict[str, float] = {}
    for segment in analysis.segments:
        if segment.prediction is not None:
            label = answer_words(segment.prediction)
            seconds[label] = seconds.get(label, 0.0) + segment.speech_seconds
    total = sum(seconds.values())
    if total <= 0:
        return ""
    parts = [f"{share / total:.0%} {label}" for label, share in sorted(seconds.items(), key=lambda item: -item[1])]
    first = parts[0].split(" ", 1)
    head = f"{first[0]} of the speech {'was' if first[1].startswith(NOT_SURE) else 'sounded'} {first[1]}"
    return ", ".join([head, *parts[1:]]) + "."


def _segment_label(index: int, segment: Segment) -> str:
    return f"{index + 1}. {segment.start:.1f}-{segment.end:.1f} s: {answer_words(segment.prediction, confidence=True)}"


def segment_picker_key(analysis: Analysis, *, key: str) -> str:
    """Widget key of the segment picker of ``analysis``: one per recording and per set of answers.

    Keyed by the view alone, the picker of the next file analysed in the same place would be the
    same widget, and the browser kept showing the previous file's choice and label (issue 24) until
    the list was opened. The digest covers the audio and every segment's label, so another file, or
    the same one calibrated (its answers change), gets a fresh picker, while re-runs keep the choice.
    """
    labels = "\n".join(_segment_label(index, segment) for index, segment in enumerate(analysis.segments))
    digest = hashlib.sha1(analysis.waveform.tobytes())
    digest.update(labels.encode())
    return f"{key}-segment-{digest.hexdigest()[:16]}"


def show_segments(analysis: Analysis, *, key: str) -> None:
    """The summary sentence and a player for any one segment (long recordings only)."""
    st.markdown(summary_sentence(analysis))
    segments = analysis.segments
    chosen = st.selectbox("Hear one segment", range(len(segments)), key=segment_picker_key(analysis, key=key),
                          format_func=lambda index: _segment_label(index, segments[index]))
    segment = segments[chosen]
    rate = analysis.sample_rate
    st.audio(analysis.waveform[int(segment.start * rate) : int(segment.end * rate)], sample_rate=rate)


def show_analysis(analysis: Analysis, *, bundle: Bundle, key: str, reference_cues: VoiceCues | None = None) -> None:
    """Full view of one clip: player, answer, probabilities, waveform + segments + spectrogram, the
    "why" (cues in words, arousal/valence), downloads (JSON, CSV, one-file HTML report).

    Parameters
    ----------
    analysis : Analysis
    bundle : Bundle
        For the threshold, the emotion order and the feature config.
    key : str
        Unique per call on a page (widget keys of the download buttons).
    reference_cues : VoiceCues, optional
        Cues of the speaker's own calibration recording: the cues are compared with them, else
        with the training actors of the gender the model heard, or all of them when that gender is
        unclear (read below ``ser.serving.cues.CLEAR_GENDER``, 70%).
    """
    import app_why  # here, not at the top: app_why builds on this module
    st.text(f"{analysis.name} · {analysis.duration:.1f} s")  # st.text: a file name is never rendered as markup
    left, right = st.columns([2, 3])
    with left:
        st.audio(analysis.waveform, sample_rate=analysis.sample_rate)
        show_prediction(analysis, bundle=bundle)
        if len(analysis.segments) > 1:
            st.caption(f"Cut where the speaker pauses into {len(analysis.segments)} segments, each scored as one "
                       "utterance; the answer weighs them by their seconds of speech.")
    with right:
        chart(
            plots.probability_figure(probabilities=analysis.prediction.probabilities,
                                     threshold=bundle.confidence_threshold, height=280,
                                     unadapted=analysis.unadapted.probabilities if analysis.unadapted else None),
            key=f"{key}-probabilities",
        )
    if len(analysis.segments) > 1:
        show_segments(analysis, key=key)
    segments = analysis.segments
    chart(
        plots.recording_figure(
            waveform=analysis.waveform, sample_rate=analysis.sample_rate, log_mel=analysis.log_mel,
            config=bundle.config, segment_starts=[segment.start for segment in segments],
            segment_ends=[segment.end for segment in segments],
            segment_answers=[answer_words(segment.prediction) for segment in segments],
            segment_details=[
                f"({segment.prediction.confidence:.0%})" if segment.prediction is not None else segment.problem
                for segment in segments
            ],
        ),
        key=f"{key}-recording",
    )
    if reference_cues is None and analysis.adapted:
        reference_cues = speaker_cues(bundle)  # compare with the speaker's own ordinary voice
    app_why.show_why(analysis, key=key, reference_cues=reference_cues)
    stem = Path(analysis.name).stem or "clip"
    first, second, third, _ = st.columns([1, 1, 1.6, 1.4])
    first.download_button("Download JSON", analysis.to_json(), file_name=f"{stem}-emotion.json",
                          mime="application/json", key=f"{key}-json")
    second.download_button("Download CSV", analysis.to_csv(), file_name=f"{stem}-emotion.csv", mime="text/csv",
                           key=f"{key}-csv")
    with third:
        app_why.report_button(analysis, key=key, reference_cues=reference_cues)


def analyze_and_show(data: bytes, *, name: str, key: str, reference_cues: VoiceCues | None = None,
                     on_analysed: Callable[[Analysis], None] | None = None) -> Analysis | None:
    """Analyse bytes and show the result, or show the library's message for bad input.

    ``on_analysed`` runs as soon as the analysis exists, before the (slower) view is drawn: a page
    that remembers what it showed must not lose it when the user leaves while charts are drawn.
    """
    bundle = bundle_or_stop()
    try:
        analysis = analyze(data, name)
    except SERError as error:
        st.error(plain(str(error)))
        return None
    if on_analysed is not None:
        on_analysed(analysis)
    show_analysis(analysis, bundle=bundle, key=key, reference_cues=reference_cues)
    return analysis
