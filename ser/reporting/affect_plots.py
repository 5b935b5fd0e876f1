"""Plotly figures of the arousal/valence view of an answer: pure functions from numbers to figures.

The points come from :func:`ser.serving.affect.affect_of` (Russell's circumplex, each emotion
weighted by the model's probability). :func:`circumplex_figure` draws the circle with the eight
emotions at their places and the answer on it (one numbered point per segment for long audio,
joined in time order); :func:`affect_timeline_figure` draws arousal and valence against time,
one step per segment, on the recording's time axis.

Example
-------
>>> from ser.reporting.affect_plots import circumplex_figure
>>> figure = circumplex_figure(arousal=[0.96], valence=[-0.15])
>>> figure.layout.yaxis.scaleanchor
'x'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ser.reporting.plots import emotion_color
from ser.serving.affect import CIRCUMPLEX_DEGREES

#: How the view is derived, for captions and the report (one sentence).
DERIVATION = ("Arousal (how activated the voice sounds) and valence (how pleasant) are read off the answer: "
              "each emotion sits at its place on Russell's (1980) circumplex, neutral at the centre, and the "
              "point is their average weighted by the model's probabilities, a restatement of the answer, "
              "not a second measurement.")
ANSWER_COLOR = "#222222"
_LAYOUT = {"template": "plotly_white", "margin": {"l": 50, "r": 10, "t": 30, "b": 40}}


def _emotion_places(degrees: Mapping[str, float | None]) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = list(degrees)
    angles = [degrees[name] for name in names]
    x = np.array([0.0 if angle is None else math.cos(math.radians(angle)) for angle in angles])
    y = np.array([0.0 if angle is None else math.sin(math.radians(angle)) for angle in angles])
    return names, x, y


def _outside(x: float, y: float) -> str:
    """Where an emotion's label goes: above or below its point, to the side only where neighbours crowd,
    never past the circle's left or right edge (a phone's width clips it there)."""
    vertical = "top" if y >= 0 else "bottom"
    horizontal = "center" if abs(x) <= 0.3 or abs(x) >= 0.8 else "left" if x < 0 else "right"
    return f"{vertical} {horizontal}"


def circumplex_figure(*, arousal: Sequence[float], valence: Sequence[float], labels: Sequence[str] = (),
                      overall: tuple[float, float] | None = None,
                      degrees: Mapping[str, float | None] = CIRCUMPLEX_DEGREES, height: int = 380) -> go.Figure:
    """The circumplex with the emotions at their places and the answer's point(s).

    Parameters
    ----------
    arousal, valence : sequence of float, length n_points, each in [-1, 1]
        One point per segment in time order (one point for a single utterance); NaN points
        (unscored segments) are left out.
    labels : sequence of str, length n_points, optional
        Hover text of each point ("1. 0.0-3.6 s: angry").
    overall : (arousal, valence), optional
        The whole recording's answer, drawn as a larger diamond (with several points).
    degrees : mapping emotion -> degrees or None
        Places on the circle (:data:`ser.serving.affect.CIRCUMPLEX_DEGREES`; None is the centre).

    Returns
    -------
    plotly.graph_objects.Figure
        Equal axes from -1.25 to 1.25: valence across, arousal up.

    Raises
    ------
    ValueError
        If ``arousal`` and ``valence`` (and ``labels`` when given) differ in length.
    """
    arousal, valence = np.asarray(arousal, dtype=float), np.asarray(valence, dtype=float)
    if arousal.shape != valence.shape or (labels and len(labels) != arousal.size):
        raise ValueError("arousal, valence and labels need one value per point")
    figure = go.Figure()
    angle = np.linspace(0, 2 * np.pi, 121)
    figure.add_trace(go.Scatter(x=np.cos(angle), y=np.sin(angle), mode="lines", line={"color": "#CCCCCC"},
                                hoverinfo="skip", showlegend=False))
    names, x, y = _emotion_places(degrees)
    figure.add_trace(go.Scatter(
        x=x, y=y, mode="markers+text", text=names, textposition=[_outside(u, v) for u, v in zip(x, y, strict=True)],
        marker={"size": 11, "color": [emotion_color(name) for name in names]}, showlegend=False,
        hovertemplate="%{text}<extra>place on the circle</extra>",
    ))
    shown = np.isfinite(arousal) & np.isfinite(valence)
    texts = list(labels) if labels else [f"{index + 1}" for index in range(arousal.size)]
    several = arousal.size > 1
    figure.add_trace(go.Scatter(
        x=valence[shown], y=arousal[shown], mode="lines+markers+text" if several else "markers",
        text=[str(index + 1) for index in np.flatnonzero(shown)] if several else None, textposition="middle right",
        hovertext=[texts[index] for index in np.flatnonzero(shown)],
        hovertemplate="%{hovertext}<br>valence %{x:+.2f}, arousal %{y:+.2f}<extra></extra>",
        marker={"size": 9 if several else 16, "color": ANSWER_COLOR, "symbol": "circle" if several else "diamond"},
        line={"color": ANSWER_COLOR, "width": 1, "dash": "dot"},
        name="segments in time order" if several else "the answer", showlegend=several,
    ))
    if overall is not None and several:
        figure.add_trace(go.Scatter(x=[overall[1]], y=[overall[0]], mode="markers", name="whole recording",
                                    marker={"size": 16, "color": ANSWER_COLOR, "symbol": "diamond"},
                                    hovertemplate="whole recording<br>valence %{x:+.2f}, arousal %{y:+.2f}"
                                                  "<extra></extra>"))
    limits = [-1.25, 1.25]
    figure.update_xaxes(range=limits, zeroline=True, zerolinecolor="#BBBBBB", fixedrange=True,
                        title_text="valence: unpleasant ← → pleasant", tickvals=[-1, 0, 1])
    figure.update_yaxes(range=limits, zeroline=True, zerolinecolor="#BBBBBB", fixedrange=True, scaleanchor="x",
                        title_text="arousal: calm ← → excited", tickvals=[-1, 0, 1])
    figure.update_layout(height=height, legend={"orientation": "h", "y": -0.2, "x": 0}, **_LAYOUT)
    return figure


def affect_timeline_figure(*, starts: Sequence[float], ends: Sequence[float], arousal: Sequence[float],
                           valence: Sequence[float], duration: float, height: int = 240) -> go.Figure:
    """Arousal and valence over time, one flat step per segment (gaps where a segment is unscored).

    Parameters
    ----------
    starts, ends : sequence of float, length n_segments
        Segment bounds in seconds.
    arousal, valence : sequence of float, length n_segments
        NaN for an unscored segment.
    duration : float
        Length of the recording: the time axis is ``[0, duration]``, as the waveform's.
    """
    starts, ends = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    figure = go.Figure()
    for name, values, color in (("arousal", arousal, "#D55E00"), ("valence", valence, "#0072B2")):
        values = np.asarray(values, dtype=float)
        # Each segment as a flat line from its start to its end; None between segments breaks the line.
        x = [point for start, end in zip(starts, ends, strict=True) for point in (start, end, None)]
        y = [point for value in values for point in (value, value, None)]
        y = [None if point is not None and not math.isfinite(point) else point for point in y]
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line={"color": color, "width": 3},
                                    hovertemplate=f"{name} %{{y:+.2f}} at %{{x:.1f}} s<extra></extra>"))
    figure.add_hline(y=0, line_color="#BBBBBB")
    figure.update_xaxes(range=[0, duration], title_text="time (s)")
    figure.update_yaxes(range=[-1.05, 1.05], fixedrange=True, tickvals=[-1, 0, 1])
    figure.update_layout(height=height, legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
                         **_LAYOUT)
    return figure
