"""An arousal/valence view of an answer: Russell's (1980) circumplex.

:func:`affect_of` places the model's answer on the circumplex (see :data:`CIRCUMPLEX_DEGREES`):
a presentation of the probabilities, not a second measurement. Kept apart from the voice cues
(:mod:`ser.serving.cues`), which measure the audio.

Example
-------
>>> from ser.serving.affect import affect_of
>>> round(affect_of({"angry": 1.0, "neutral": 0.0}).arousal, 2)
0.98
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Affect:
    """Arousal and valence of an answer, each in [-1, 1] (see :func:`affect_of`)."""

    arousal: float
    valence: float


#: Direction of each emotion on Russell's (1980) circumplex, degrees anticlockwise from pleasure
#: (0 = pleasure, 90 = arousal, 180 = displeasure, 270 = sleepiness). Read from the placement of
#: the nearest of his 28 adjectives (happy, astonished, angry, afraid, sad, calm), rounded to 5
#: degrees; disgust is not among them and is placed by us between distress (135) and displeasure
#: (180). Neutral sits at the centre.
CIRCUMPLEX_DEGREES: dict[str, float | None] = {
    "neutral": None,
    "calm": 315.0,
    "happy": 10.0,
    "sad": 210.0,
    "angry": 100.0,
    "fearful": 115.0,
    "disgust": 155.0,
    "surprised": 70.0,
}


def affect_of(probabilities: Mapping[str, float]) -> Affect:
    """Arousal and valence of an answer: the probability-weighted mean of the emotions' circumplex points.

    Each emotion is a point on the unit circle at :data:`CIRCUMPLEX_DEGREES` (neutral at the
    centre); valence is the horizontal and arousal the vertical coordinate of the weighted
    mean. A confident "angry" gives arousal ~0.98, valence ~-0.17; an even spread gives about
    zero. It is a presentation of the model's answer, not a second measurement.

    Raises
    ------
    ValueError
        If an emotion has no circumplex place or the probabilities do not sum to about 1.
    """
    unknown = sorted(set(probabilities) - set(CIRCUMPLEX_DEGREES))
    if unknown:
        raise ValueError(f"no circumplex place for {unknown}; known: {sorted(CIRCUMPLEX_DEGREES)}")
    total = float(sum(probabilities.values()))
    if not math.isclose(total, 1.0, abs_tol=1e-3):
        raise ValueError(f"probabilities must sum to 1, got {total:.4f}")
    arousal = valence = 0.0
    for emotion, probability in probabilities.items():
        degrees = CIRCUMPLEX_DEGREES[emotion]
        if degrees is not None:
            valence += probability * math.cos(math.radians(degrees))
            arousal += probability * math.sin(math.radians(degrees))
    return Affect(arousal=arousal, valence=valence)
