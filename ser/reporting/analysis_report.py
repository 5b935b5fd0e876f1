"""A one-file HTML report of one analysis, to share: it opens offline and asks no server for anything.

:func:`render_report` fills ``templates/analysis_report.html.j2`` (Jinja2, HTML-escaped) with
the file name, when it was analysed, the model version and its not-sure threshold, the answer
and every emotion's probability, the arousal/valence reading, the segments, the voice cues in
words, and the waveform as an inline SVG drawn from the samples (:func:`waveform_svg`, a few
kilobytes; no script, stylesheet, font or image is fetched, and the file holds no link to
another host).

Example
-------
>>> from ser.reporting.analysis_report import waveform_svg
>>> import numpy as np
>>> svg = waveform_svg(waveform=np.sin(np.arange(16000) / 5.0), sample_rate=16000, segments=[(0.0, 1.0, "angry")])
>>> svg.startswith("<svg") and "http" not in svg
True
"""

from __future__ import annotations

import datetime
import functools
import html
import math
from collections.abc import Sequence

import jinja2
import numpy as np
from markupsafe import Markup

from ser.reporting.affect_plots import DERIVATION
from ser.reporting.plots import EMOTION_COLORS, UNSURE_COLOR, emotion_color
from ser.serving.affect import affect_of
from ser.serving.analysis import Analysis, answer_label
from ser.serving.cues import CueComparison
from ser.serving.joint_views import BOTH_CORPORA, ROUTED_NOTE
from ser.serving.words import answer_words

#: Columns of the drawn waveform (min/max per column).
SVG_COLUMNS = 600
#: Each cue's unit in the tables, and how its value is shown (pitch in Hz, though compared in semitones).
CUE_UNITS: dict[str, tuple[str, str]] = {
    "pitch_semitones": ("Hz", ".0f"),
    "pitch_range_semitones": ("semitones", ".1f"),
    "loudness_dbfs": ("dB re full scale", ".0f"),
    "loudness_variability_db": ("dB", ".1f"),
    "syllables_per_second": ("syllables per second", ".1f"),
    "harmonics_to_noise_db": ("dB harmonics to noise", ".1f"),
    "jitter_percent": ("% jitter", ".1f"),
}


def cue_value(cue: str, value: float) -> str:
    """One cue's value with its unit ("212 Hz", "4.7 syllables per second"); "n/a" when not finite."""
    if not math.isfinite(value):
        return "n/a"
    unit, spec = CUE_UNITS[cue]
    if cue == "pitch_semitones":
        value = 55.0 * 2 ** (value / 12)  # compared in semitones, read in Hz
    return f"{format(value, spec)} {unit}"


def cue_rows(comparisons: Sequence[CueComparison]) -> list[dict[str, str]]:
    """The cues as a three-column table: what, this recording, the reference (units in the cells)."""
    return [{"cue": comparison.label, "this recording": cue_value(comparison.cue, comparison.value),
             "reference": cue_value(comparison.cue, comparison.reference)} for comparison in comparisons]


def _tick_step(duration: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if duration / step <= 10:
            return step
    return 1200.0


def waveform_svg(*, waveform: np.ndarray, sample_rate: int, segments: Sequence[tuple[float, float, str]] = (),
                 width: int = 760, height: int = 150, columns: int = SVG_COLUMNS) -> str:
    """The waveform (scaled to its peak) with a band of segments under it, as an inline SVG element.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
    sample_rate : int
    segments : sequence of (start seconds, end seconds, answer)
        An emotion is drawn in its colour, anything else ("not sure", "no speech") in grey.
    width, height : int
        Size in CSS pixels (the SVG scales to its container's width).
    columns : int
        Min/max pairs drawn, whatever the length of the audio.

    Returns
    -------
    str
        ``<svg ...>...</svg>``, without a namespace URL (inline SVG in HTML needs none).
    """
    samples = np.asarray(waveform, dtype=np.float32).reshape(-1)
    duration = samples.size / sample_rate if samples.size else 0.0
    wave_height, band_top, band_height = height - 50, height - 42, 14
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="waveform, {duration:.1f} s">']
    if samples.size:
        chunks = np.array_split(samples, min(columns, samples.size))
        lows, highs = np.array([c.min() for c in chunks]), np.array([c.max() for c in chunks])
        peak = max(float(np.max(np.abs(samples))), 1e-9)
        middle, half = wave_height / 2, wave_height / 2 - 2
        tops = middle - highs / peak * half
        bottoms = np.maximum(middle - lows / peak * half, tops + 1.0)  # silence still draws a 1 px line
        step = width / len(chunks)
        path = " ".join(f"M{(i + 0.5) * step:.1f} {top:.1f}V{bottom:.1f}"
                        for i, (top, bottom) in enumerate(zip(tops, bottoms, strict=True)))
        parts.append(f'<path d="{path}" stroke="#4C566A" stroke-width="{max(step, 1.0):.2f}" fill="none"/>')
    scale = width / duration if duration else 0.0
    for start, end, answer in segments:
        colour = emotion_color(answer) if answer in EMOTION_COLORS else UNSURE_COLOR
        parts.append(f'<rect x="{start * scale:.1f}" y="{band_top}" width="{max((end - start) * scale, 1):.1f}" '
                     f'height="{band_height}" fill="{colour}" stroke="white">'
                     f"<title>{start:.1f}-{end:.1f} s: {html.escape(answer)}</title></rect>")
    if duration:
        step = _tick_step(duration)
        for tick in np.arange(0, duration + 1e-9, step):
            x = min(max(tick * scale, 8), width - 8)
            parts.append(f'<text x="{x:.1f}" y="{height - 15}" font-size="11" text-anchor="middle" '
                         f'fill="#555">{tick:g}</text>')
        parts.append(f'<text x="{width - 2}" y="{height - 2}" font-size="10" text-anchor="end" '
                     f'fill="#777">time (s)</text>')
    parts.append("</svg>")
    return "".join(parts)


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ser.reporting", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # file names and labels are shown as typed, never as markup
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _when(moment: datetime.datetime | None) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "not recorded"


def render_report(analysis: Analysis, *, comparisons: Sequence[CueComparison] = (), compared_with: str = "",
                  about: str = "", created: datetime.datetime | None = None) -> str:
    """The report of one analysis as a self-contained HTML page.

    Parameters
    ----------
    analysis : Analysis
    comparisons : sequence of CueComparison
        :func:`ser.serving.cues.describe_cues` of ``analysis.cues`` (empty: no cue section).
    compared_with : str
        What the cues are compared with, as a phrase ("your calibration recording").
    about : str
        One sentence on which voices the model knows (:func:`ser.reporting.summary.voices_sentence`).
    created : datetime, optional
        When the report was made (now when omitted).

    Returns
    -------
    str
        An HTML5 document.
    """
    prediction = analysis.prediction
    affect = None
    if set(prediction.probabilities) <= set(EMOTION_COLORS):
        point = affect_of(prediction.probabilities)
        affect = {"arousal": point.arousal, "valence": point.valence}
    extras = [f"{word}: {max(values, key=values.get)} ({max(values.values()):.0%})"
              for word, values in (("voice", prediction.gender), ("intensity", prediction.intensity)) if values]
    segments = [{"index": index, "start": segment.start, "end": segment.end, "answer": answer_words(segment.prediction),
                 "confidence": segment.prediction.confidence if segment.prediction else None,
                 "speech": segment.speech_seconds, "problem": segment.problem}
                for index, segment in enumerate(analysis.segments, start=1)]
    context = {
        "analysis": analysis,
        "answer": answer_label(prediction),
        "prediction": prediction,
        "unfamiliar": (analysis.unfamiliarity.warning_for(calibrated=analysis.adapted)
                       if analysis.unfamiliarity is not None else ""),
        "routed": ROUTED_NOTE if prediction.answered_by == BOTH_CORPORA else "",
        "extras": extras,
        "analysed_at": _when(analysis.analysed_at),
        "created": _when(created or datetime.datetime.now(datetime.UTC)),
        "probabilities": [{"label": label, "value": value, "colour": emotion_color(label)}
                          for label, value in prediction.probabilities.items()],
        "affect": affect,
        "derivation": DERIVATION,
        "segments": segments,
        "comparisons": list(comparisons),
        "cue_rows": cue_rows(comparisons),
        "compared_with": compared_with,
        "about": about,
        "waveform": Markup(waveform_svg(  # built from numbers, labels escaped inside
            waveform=analysis.waveform, sample_rate=analysis.sample_rate,
            segments=[(row["start"], row["end"], row["answer"]) for row in segments])),
    }
    return _environment().get_template("analysis_report.html.j2").render(context)
