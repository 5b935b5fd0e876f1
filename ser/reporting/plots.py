"""Plotly figure builders for the analysis views: pure functions from arrays to figures.

No Streamlit here, so every figure can be built and checked in a unit test. Every chart
that shows emotions colours them with :data:`EMOTION_COLORS`, the same on every page.
Long recordings are decimated before plotting (a min/max envelope for the waveform, frame
pooling for the spectrogram) so a 15-minute file draws as fast as a 3-second one. The model
report's figures (confusion matrix, learning curves...) are in :mod:`ser.reporting.report_plots`.

Example
-------
>>> from ser.reporting.plots import probability_figure
>>> figure = probability_figure(probabilities={"neutral": 0.2, "angry": 0.8}, threshold=0.3)
>>> figure.data[0].type
'bar'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ser.config import FeatureConfig

#: One colour per emotion (colour-blind-friendlier Okabe-Ito-based palette), fixed app-wide.
EMOTION_COLORS: dict[str, str] = {
    "neutral": "#8C8C8C",
    "calm": "#56B4E9",
    "happy": "#E6B800",
    "sad": "#0072B2",
    "angry": "#D55E00",
    "fearful": "#9467BD",
    "disgust": "#009E73",
    "surprised": "#CC79A7",
}
#: Colour for a label outside the eight (a model trained on other classes still draws).
FALLBACK_COLOR = "#444444"
GENDER_COLORS = {"male": "#1F77B4", "female": "#E377C2"}
#: Points drawn for a waveform whatever its length (min/max pairs).
WAVEFORM_POINTS = 4000
#: Spectrogram columns drawn whatever the clip length.
SPECTROGRAM_COLUMNS = 1200
#: Magma, except its first stop: Streamlit's plotly renderer draws Magma's "#000004" as
#: lavender, which made silence look loud; pure black is drawn correctly.
SPECTROGRAM_COLORSCALE = [[0.0, "#000000"], [0.111, "#180f3d"], [0.222, "#440f76"], [0.333, "#721f81"],
                          [0.444, "#9e2f7f"], [0.556, "#cd4071"], [0.667, "#f1605d"], [0.778, "#fd9668"],
                          [0.889, "#feca8d"], [1.0, "#fcfdbf"]]
#: Colour range of spectrograms, dB below the loudest cell.
DYNAMIC_RANGE_DB = 80.0
#: Readable ticks for a log frequency axis.
FREQUENCY_TICKS = {"tickvals": [100, 200, 500, 1000, 2000, 4000, 8000],
                   "ticktext": ["100", "200", "500", "1k", "2k", "4k", "8k"]}
#: ln(power) -> dB.
LN_TO_DB = 10.0 / np.log(10.0)

_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 40}, "template": "plotly_white"}
#: The not-sure line's label, two short lines to fit the right margin (:data:`THRESHOLD_MARGIN` pixels).
THRESHOLD_LABEL = "not sure<br>below"
THRESHOLD_MARGIN = 64
#: Bar percentages that would have to shrink below this font size (narrow bars on a phone) are hidden, not
#: drawn over their neighbours; hovering a bar still shows its value.
BAR_TEXT_MIN = 9


def emotion_color(label: str) -> str:
    """The fixed colour of an emotion label."""
    return EMOTION_COLORS.get(label, FALLBACK_COLOR)


def decimate_waveform(waveform: np.ndarray, *, sample_rate: int,
                      max_points: int = WAVEFORM_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Min/max envelope of a waveform, so peaks survive decimation.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
    sample_rate : int
    max_points : int
        Upper bound on the returned length.

    Returns
    -------
    times : np.ndarray, shape (n,), seconds
    values : np.ndarray, shape (n,), with n <= max_points
        The input itself when short enough; else the min and max of each of
        ``n // 2`` equal buckets, interleaved.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.size <= max_points:
        return np.arange(waveform.size) / sample_rate, waveform
    buckets = max(1, max_points // 2)
    per_bucket = int(np.ceil(waveform.size / buckets))
    padded = np.pad(waveform, (0, per_bucket * buckets - waveform.size), mode="edge").reshape(buckets, per_bucket)
    starts = np.arange(buckets) * per_bucket
    times = np.repeat(starts / sample_rate, 2) + np.tile([0.0, 0.5 * per_bucket / sample_rate], buckets)
    values = np.stack([padded.min(axis=1), padded.max(axis=1)], axis=1).reshape(-1)
    return times, values


def _pool_frames(log_mel: np.ndarray, *, max_columns: int) -> tuple[np.ndarray, int]:
    """Average groups of frames so at most ``max_columns`` remain; returns (pooled, factor)."""
    factor = max(1, int(np.ceil(log_mel.shape[0] / max_columns)))
    if factor == 1:
        return log_mel, 1
    usable = (log_mel.shape[0] // factor) * factor
    pooled = log_mel[:usable].reshape(-1, factor, log_mel.shape[1]).mean(axis=1)
    return pooled, factor


def mel_band_frequencies(config: FeatureConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel band, shape (n_mels,)."""
    from ser.serving.features import mel_frequencies

    return mel_frequencies(n_mels=config.n_mels + 2, fmin=config.fmin, fmax=config.fmax)[1:-1]


def _add_timeline_traces(figure: go.Figure, *, starts: np.ndarray, ends: np.ndarray, probabilities: np.ndarray,
                         emotions: Sequence[str], row: int | None = None) -> None:
    centres = (np.asarray(starts) + np.asarray(ends)) / 2
    for index, label in enumerate(emotions):
        trace = go.Scatter(
            x=centres,
            y=probabilities[:, index],
            mode="lines+markers",
            name=label,
            line={"color": emotion_color(label), "width": 2},
            marker={"size": 5},
            connectgaps=False,  # unvoiced windows (NaN) stay gaps
            hovertemplate=f"{label}: %{{y:.0%}} at %{{x:.1f}} s<extra></extra>",
        )
        if row is None:
            figure.add_trace(trace)
        else:
            figure.add_trace(trace, row=row, col=1)


def waveform_figure(*, waveform: np.ndarray, sample_rate: int, timeline: Any = None,
                    emotions: Sequence[str] = (), max_points: int = WAVEFORM_POINTS) -> go.Figure:
    """The waveform, with the emotion timeline underneath on the same time axis.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
    sample_rate : int
    timeline : ser.serving.bundle.Timeline, optional
        When given, a second row shows each emotion's probability at every window centre,
        with x shared with the waveform (zooming one zooms both).
    emotions : sequence of str
        Column labels of ``timeline.probabilities``.
    """
    times, values = decimate_waveform(waveform, sample_rate=sample_rate, max_points=max_points)
    wave = go.Scattergl(x=times, y=values, mode="lines", name="waveform", line={"color": "#4C566A", "width": 1},
                        showlegend=False, hoverinfo="skip")
    if timeline is None:
        figure = go.Figure(wave)
        figure.update_layout(height=220, xaxis_title="time (s)", yaxis_title="amplitude", **_LAYOUT)
        return figure
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.4, 0.6],
                           subplot_titles=("waveform", "emotion timeline (probability per window)"))
    figure.add_trace(wave, row=1, col=1)
    _add_timeline_traces(figure, starts=timeline.starts, ends=timeline.ends,
                         probabilities=timeline.probabilities, emotions=emotions, row=2)
    figure.update_yaxes(title_text="amplitude", row=1, col=1)
    figure.update_yaxes(title_text="probability", range=[0, 1], tickformat=".0%", row=2, col=1)
    figure.update_xaxes(title_text="time (s)", row=2, col=1)
    figure.update_layout(height=460, legend={"orientation": "h", "y": -0.18}, **_LAYOUT)
    return figure


def spectrogram_figure(*, log_mel: np.ndarray, config: FeatureConfig, title: str = "log-mel spectrogram",
                       max_columns: int = SPECTROGRAM_COLUMNS, height: int = 300,
                       show_scale: bool = True) -> go.Figure:
    """Log-mel spectrogram as a heatmap: time in seconds across, frequency in Hz up, dB colour.

    Parameters
    ----------
    log_mel : np.ndarray, shape (frames, n_mels)
        Natural-log mel power as returned by ``ser.serving.features.log_mel_spectrogram``.
    config : FeatureConfig
        Gives the frame rate and the mel bands' frequencies.
    max_columns : int
        Longer spectrograms are average-pooled over time to at most this many columns.
    """
    pooled, factor = _pool_frames(np.asarray(log_mel, dtype=np.float32), max_columns=max_columns)
    seconds_per_column = factor / config.frames_per_second
    times = (np.arange(pooled.shape[0]) + 0.5 * (factor > 1)) * seconds_per_column
    decibels = pooled.T * LN_TO_DB
    peak = float(np.max(decibels)) if decibels.size else 0.0
    # 80 dB of dynamic range, the usual display choice. Clipped here rather than left to
    # zmin: Streamlit's plotly renderer does not clamp out-of-range cells to the end colour.
    decibels = np.clip(decibels, peak - DYNAMIC_RANGE_DB, peak)
    figure = go.Figure(
        go.Heatmap(
            x=times,
            y=mel_band_frequencies(config),
            z=decibels,
            zmin=peak - DYNAMIC_RANGE_DB,
            zmax=peak,
            colorscale=SPECTROGRAM_COLORSCALE,
            colorbar={"title": {"text": "dB"}} if show_scale else None,
            showscale=show_scale,
            hovertemplate="%{x:.2f} s, %{y:.0f} Hz: %{z:.0f} dB<extra></extra>",
        )
    )
    figure.update_layout(title=title, height=height, xaxis_title="time (s)", yaxis_title="frequency (Hz)", **_LAYOUT)
    figure.update_yaxes(type="log", **FREQUENCY_TICKS)  # mel bands are roughly log-spaced
    return figure


#: Colour of a segment the model is not sure about or could not score (drawn hatched).
UNSURE_COLOR = "#BBBBBB"


def _band_colour(answer: str) -> str:
    return emotion_color(answer) if answer in EMOTION_COLORS else UNSURE_COLOR


def recording_figure(*, waveform: np.ndarray, sample_rate: int, log_mel: np.ndarray, config: FeatureConfig,
                     segment_starts: Sequence[float] = (), segment_ends: Sequence[float] = (),
                     segment_answers: Sequence[str] = (), segment_details: Sequence[str] = (),
                     max_points: int = WAVEFORM_POINTS, max_columns: int = SPECTROGRAM_COLUMNS) -> go.Figure:
    """Waveform, segment band and spectrogram of one recording in one figure on one time axis.

    One figure with shared x, so the three rows have the same width and end at the same
    second (``[0, duration]``); titles are axis labels, so no toolbar can cover them.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
    sample_rate : int
    log_mel : np.ndarray, shape (frames, n_mels)
        Natural-log mel power of the same recording.
    config : FeatureConfig
    segment_starts, segment_ends : sequence of float, length n_segments
        Segment bounds in seconds.
    segment_answers : sequence of str, length n_segments
        An emotion (drawn in its colour), or "not sure" / "no speech" (grey, hatched).
    segment_details : sequence of str, length n_segments
        Hover text of each segment (e.g. the best guess and its confidence).
    """
    duration = np.asarray(waveform).size / sample_rate
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.3, 0.12, 0.58])
    times, values = decimate_waveform(waveform, sample_rate=sample_rate, max_points=max_points)
    figure.add_trace(go.Scattergl(x=times, y=values, mode="lines", name="waveform", showlegend=False,
                                  line={"color": "#4C566A", "width": 1}, hoverinfo="skip"), row=1, col=1)
    starts, ends = np.asarray(segment_starts, dtype=float), np.asarray(segment_ends, dtype=float)
    details = list(segment_details) or [""] * len(starts)
    shown: set[str] = set()
    for start, end, answer, detail in zip(starts, ends, segment_answers, details, strict=True):
        unsure = answer not in EMOTION_COLORS
        figure.add_trace(go.Bar(
            x=[end - start], base=[start], y=["segments"], orientation="h", name=answer,
            marker={"color": _band_colour(answer), "line": {"color": "white", "width": 1},
                    "pattern": {"shape": "/" if unsure else ""}},
            legendgroup=answer, showlegend=answer not in shown,
            hovertemplate=f"{start:.1f}-{end:.1f} s: {answer} {detail}<extra></extra>",
        ), row=2, col=1)
        shown.add(answer)
    pooled, factor = _pool_frames(np.asarray(log_mel, dtype=np.float32), max_columns=max_columns)
    decibels = pooled.T * LN_TO_DB
    peak = float(np.max(decibels)) if decibels.size else 0.0
    figure.add_trace(go.Heatmap(
        x=(np.arange(pooled.shape[0]) + 0.5 * (factor > 1)) * factor / config.frames_per_second,
        y=mel_band_frequencies(config), z=np.clip(decibels, peak - DYNAMIC_RANGE_DB, peak),
        zmin=peak - DYNAMIC_RANGE_DB, zmax=peak, colorscale=SPECTROGRAM_COLORSCALE, showscale=False,
        hovertemplate="%{x:.2f} s, %{y:.0f} Hz: %{z:.0f} dB<extra></extra>",
    ), row=3, col=1)
    figure.update_xaxes(range=[0, duration])
    figure.update_xaxes(title_text="time (s)", row=3, col=1)
    figure.update_yaxes(title_text="wave", showticklabels=False, row=1, col=1)
    figure.update_yaxes(showticklabels=False, fixedrange=True, row=2, col=1)
    figure.update_yaxes(title_text="Hz", type="log", row=3, col=1, **FREQUENCY_TICKS)
    figure.update_layout(height=430, barmode="overlay", bargap=0,
                         legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
                         margin={"l": 50, "r": 10, "t": 30, "b": 40}, template="plotly_white")
    return figure


def probability_figure(*, probabilities: Mapping[str, float], threshold: float | None = None,
                       height: int = 300, unadapted: Mapping[str, float] | None = None) -> go.Figure:
    """Bar chart of every emotion's calibrated probability, one fixed colour per emotion.

    Parameters
    ----------
    probabilities : mapping label -> probability
    threshold : float, optional
        Drawn as a dashed line: the confidence under which the app says "not sure", labelled
        (:data:`THRESHOLD_LABEL`) in the right margin, where no bar or percentage reaches.
    unadapted : mapping label -> probability, optional
        The answer without the calibration to the speaker's voice: drawn as hollow grey bars beside
        each emotion's bar (the first trace stays ``probabilities``).
    """
    labels = list(probabilities)
    values = [float(probabilities[label]) for label in labels]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            marker_color=[emotion_color(label) for label in labels],
            text=[f"{value:.0%}" for value in values],
            textposition="outside",
            cliponaxis=False,  # a 100% bar's label stays whole; the y range leaves room for it
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        )
    )
    if unadapted is not None:
        figure.update_traces(name="calibrated to your voice")
        figure.add_trace(go.Bar(
            x=labels, y=[float(unadapted[label]) for label in labels], name="without calibration",
            marker={"color": "rgba(0,0,0,0)", "line": {"color": "#555", "width": 1.5}},
            hovertemplate="%{x} without calibration: %{y:.1%}<extra></extra>",
        ))
    layout = dict(_LAYOUT)
    if threshold is not None and threshold > 0:
        figure.add_hline(y=threshold, line_dash="dash", line_color="#555")
        # Labelled in the right margin, beside the line's end: inside the plot any bar's percentage
        # (the winning one's, often) could land on it.
        figure.add_annotation(text=THRESHOLD_LABEL, x=1, xref="paper", xanchor="left", xshift=4, y=threshold,
                              yref="y", yanchor="middle", showarrow=False, align="left",
                              font={"size": 11, "color": "#555"})
        layout["margin"] = {**_LAYOUT["margin"], "r": THRESHOLD_MARGIN}
    # Up to 1.15: the percentage above a 100% bar stays inside the plot, clear of the legend above it.
    figure.update_layout(height=height, yaxis={"range": [0, 1.15], "tickformat": ".0%", "title": "probability",
                                               "tickvals": [0, 0.25, 0.5, 0.75, 1]},
                         showlegend=False, uniformtext={"minsize": BAR_TEXT_MIN, "mode": "hide"}, **layout)
    if unadapted is not None:
        figure.update_layout(showlegend=True, barmode="group",
                             legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return figure


def timeline_figure(*, starts: np.ndarray, ends: np.ndarray, probabilities: np.ndarray,
                    emotions: Sequence[str]) -> go.Figure:
    """Emotion probabilities over time on their own (used by the Live page's history)."""
    figure = go.Figure()
    _add_timeline_traces(figure, starts=starts, ends=ends, probabilities=np.asarray(probabilities),
                         emotions=emotions)
    figure.update_layout(height=260, xaxis_title="time (s)", yaxis={"range": [0, 1], "tickformat": ".0%"},
                         **_LAYOUT)
    return figure


def spectrogram_grid_figure(*, spectrograms: Mapping[tuple[str, str], np.ndarray], rows: Sequence[str],
                            columns: Sequence[str], config: FeatureConfig) -> go.Figure:
    """A grid of log-mel spectrograms (e.g. emotions down, male/female across) on one colour scale.

    Parameters
    ----------
    spectrograms : mapping (row, column) -> np.ndarray of shape (frames, n_mels)
    rows, columns : sequence of str
        Row and column labels; missing cells stay empty.
    """
    figure = make_subplots(rows=len(rows), cols=len(columns), shared_xaxes=True, shared_yaxes=True,
                           vertical_spacing=0.02, horizontal_spacing=0.03, column_titles=list(columns),
                           row_titles=list(rows))
    frequencies = mel_band_frequencies(config)
    peak = max((float(np.max(value)) * LN_TO_DB for value in spectrograms.values()), default=0.0)
    for r, row in enumerate(rows, start=1):
        for c, column in enumerate(columns, start=1):
            log_mel = spectrograms.get((row, column))
            if log_mel is None:
                continue
            times = np.arange(log_mel.shape[0]) / config.frames_per_second
            decibels = np.clip(np.asarray(log_mel).T * LN_TO_DB, peak - DYNAMIC_RANGE_DB, peak)
            figure.add_trace(
                go.Heatmap(x=times, y=frequencies, z=decibels, zmin=peak - DYNAMIC_RANGE_DB, zmax=peak,
                           colorscale=SPECTROGRAM_COLORSCALE, showscale=(r == 1 and c == 1),
                           colorbar={"title": {"text": "dB"}},
                           hovertemplate=f"{row}, {column}: %{{x:.2f}} s, %{{y:.0f}} Hz<extra></extra>"),
                row=r, col=c,
            )
    figure.update_yaxes(type="log", showticklabels=False)
    figure.update_yaxes(showticklabels=True, tickvals=[100, 1000, 4000], ticktext=["100", "1k", "4k"], col=1)
    figure.update_xaxes(title_text="time (s)", row=len(rows))
    figure.update_layout(height=150 * len(rows) + 60, template="plotly_white",
                         margin={"l": 60, "r": 90, "t": 40, "b": 40})
    return figure
