"""What the bundle answers: one clip's :class:`ClipPrediction`, a long recording's :class:`Timeline`.

Plain frozen dataclasses, importable without TensorFlow (the plots, the batch results and the
tests build them by hand); :mod:`ser.serving.bundle` produces them and re-exports both names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ser.serving.joint_views import STUDIO


@dataclasses.dataclass(frozen=True)
class ClipPrediction:
    """The answer for one clip.

    ``probabilities`` is calibrated and ordered as the bundle's labels; ``sure`` is False
    when the top probability is below the bundle's confidence threshold. ``answered_by`` says
    which model gave the emotion probabilities: :data:`~ser.serving.joint_views.STUDIO` (the main
    model) or :data:`~ser.serving.joint_views.BOTH_CORPORA` (the joint views, for an input unlike
    the training data; gender and intensity are still the main model's).
    """

    emotion: str
    confidence: float
    probabilities: dict[str, float]
    sure: bool
    gender: dict[str, float] | None = None
    intensity: dict[str, float] | None = None
    speech_seconds: float = 0.0
    answered_by: str = STUDIO
    #: The clip's functionals as the functional view reads them (standardised), shape (n_functionals,), for a
    #: voice profile (:mod:`ser.serving.profile`); not part of the answer's dictionary or its equality.
    features: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        answer = dataclasses.asdict(dataclasses.replace(self, features=None))  # no deep copy of the features
        del answer["features"]
        return answer


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Emotion over time for a recording longer than one window.

    Attributes
    ----------
    starts, ends : np.ndarray, shape (n_windows,)
        Window bounds in seconds.
    probabilities : np.ndarray, shape (n_windows, n_emotions)
        Calibrated probabilities; rows of windows without speech are NaN.
    voiced : np.ndarray of bool, shape (n_windows,)
    overall : ClipPrediction
        The voiced windows' probabilities averaged.
    routed : np.ndarray of bool, shape (n_windows,), optional
        Windows whose emotion the joint views answered (their own functionals unlike the
        training data, :meth:`Bundle.timeline_of`); all False (or None) otherwise.
    """

    starts: np.ndarray
    ends: np.ndarray
    probabilities: np.ndarray
    voiced: np.ndarray
    overall: ClipPrediction
    routed: np.ndarray | None = None
