"""Is a calibration reference what it should be: a few seconds of the speaker's ordinary voice?

:func:`ser.serving.speaker.calibrate_bundle` refuses a reference without speech or with less
than :data:`ser.serving.speaker.MIN_REFERENCE_SECONDS` of it. Anything else calibrates, but a
reference can still be a poor one, and the person should be told so (issue 24: a 2 s angry clip
was taken as "your ordinary voice" without a word). :class:`ReferenceVerdict` says, in a typed
result the app and ``python -m ser predict --reference`` both show:

``short``
    less than :data:`SHORT_REFERENCE_SECONDS` of speech: the app asks for 5 to 10 s of
    recording, a few sentences; a shorter one is about one sentence, whose tone weighs too much.
``not_ordinary``
    the shipped model hears the reference as far from an ordinary voice: its answer for the
    reference (:func:`reference_answer`, the answer calibration reads) gives neutral and calm
    together less than :data:`ORDINARY_SHARE_FLOOR`. Measured by ``python -m experiments.reference_check``
    (see the constant): no ordinary voice of 168 falls below it, most strong acted clips do.

Example
-------
>>> import numpy as np
>>> from ser.serving.reference import check_reference
>>> labels = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
>>> angry = np.array([[0.0005, 0.0005, 0.02, 0.01, 0.92, 0.02, 0.02, 0.009]])
>>> verdict = check_reference(angry, labels=labels, seconds=2.0)
>>> verdict.short, verdict.not_ordinary, verdict.heard_as
(True, True, 'angry')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

#: Least speech (seconds, as :attr:`ser.serving.speaker.SpeakerAdaptation.reference_seconds` counts it:
#: silence trimmed from each model window) a reference should hold; below it the app and the CLI say it
#: is short. One acted RAVDESS sentence (3.4-3.6 s of recording) holds 1.6-2.0 s by this count, two
#: joined (7.5 s, what the app's "5 to 10 seconds" asks for) 3.8 s: the line falls between one and two.
SHORT_REFERENCE_SECONDS = 3.0
#: The labels of an ordinary voice: an answer of neutral or calm is what a calm reference should get.
ORDINARY_LABELS: tuple[str, ...] = ("neutral", "calm")
#: Below this neutral + calm share of the model's answer for the reference, it "does not sound ordinary".
#: Measured with the shipped model, calibrating exactly as the app does (``python -m experiments.reference_check``):
#: ordinary voices are often heard as anything but neutral (speechocean762's read English by Mandarin
#: speakers mostly as disgust, median share 0.18, lowest 0.0026 of 124 speakers; ASED neutral lowest 0.026
#: of 44), so the floor sits under all of them: 0 ordinary voices warned, while 78% of strong acted
#: RAVDESS clips (angry, happy, fearful, surprised; 58 of 74), 40% of ASED speakers' happy clips (21 of 52)
#: and 18% of their angry ones (4 of 22) fall below it. A floor of 0.003 would warn 1 of the 124 ordinary
#: speakers; 0.05 would warn 17% of them. So it flags a reference that is plainly acted or shouted, not
#: every emotional one: the "short" check and the panel's instructions carry the rest.
ORDINARY_SHARE_FLOOR = 0.002
#: What makes a good reference (said with every problem).
ADVICE = "A good reference is 5 to 10 s of recording, a few sentences said as you normally talk."


@dataclasses.dataclass(frozen=True)
class ReferenceVerdict:
    """What a calibration reference is like, and what is wrong with it.

    Attributes
    ----------
    seconds : float
        Speech in the reference (silence around it trimmed).
    ordinary_share : float
        Neutral + calm in the model's answer for the reference, in [0, 1].
    heard_as : str
        The emotion the model heard most in the reference.
    heard_share : float
        Its probability in that answer.
    """

    seconds: float
    ordinary_share: float
    heard_as: str
    heard_share: float

    @property
    def short(self) -> bool:
        """Less speech than :data:`SHORT_REFERENCE_SECONDS`."""
        return self.seconds < SHORT_REFERENCE_SECONDS

    @property
    def not_ordinary(self) -> bool:
        """The model hears the reference as far from neutral or calm (:data:`ORDINARY_SHARE_FLOOR`)."""
        return self.ordinary_share < ORDINARY_SHARE_FLOOR

    @property
    def fine(self) -> bool:
        """Neither short nor unlike an ordinary voice."""
        return not (self.short or self.not_ordinary)

    @property
    def problems(self) -> tuple[str, ...]:
        """One plain sentence per problem; empty when :attr:`fine`."""
        problems = []
        if self.short:
            problems.append(f"It is short: {self.seconds:.1f} s of speech, about one sentence.")
        if self.not_ordinary:
            problems.append(f"It does not sound like an ordinary, calm voice: the model heard it as {self.heard_as} "
                            f"({self.heard_share:.0%}), hardly neutral or calm ({self.ordinary_share:.1%}).")
        return tuple(problems)

    @property
    def message(self) -> str:
        """The problems and what to do, in one line for the app and the CLI; "" when :attr:`fine`."""
        if self.fine:
            return ""
        return " ".join([*self.problems, ADVICE])


def reference_answer(probabilities: np.ndarray) -> np.ndarray:
    """The model's answer for a whole reference from its pieces' answers: their normalised geometric mean
    (what :func:`ser.serving.speaker.neutral_floor_bias` lifts to the floor).

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_pieces, n_emotions)

    Returns
    -------
    np.ndarray, shape (n_emotions,), summing to 1

    Raises
    ------
    ValueError
        If ``probabilities`` is not a non-empty 2-D array of finite values.
    """
    values = np.asarray(probabilities, dtype=np.float64)
    if values.ndim != 2 or not values.size or not np.all(np.isfinite(values)):
        raise ValueError(f"reference probabilities must be a non-empty (n_pieces, n_emotions) array of finite "
                         f"values, got shape {values.shape}")
    logs = np.log(np.clip(values, 1e-12, 1.0)).mean(axis=0)
    answer = np.exp(logs - logs.max())
    return answer / answer.sum()


def check_reference(probabilities: np.ndarray, *, labels: Sequence[str], seconds: float) -> ReferenceVerdict:
    """The verdict on a calibration reference from the model's answers for its pieces.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_pieces, n_emotions)
        The model's calibrated answers for the reference's pieces, columns in ``labels`` order.
    labels : sequence of str
        The model's emotions.
    seconds : float
        Speech the pieces hold.

    Raises
    ------
    ValueError
        If the widths of ``probabilities`` and ``labels`` differ, or ``seconds`` is negative.
    """
    answer = reference_answer(probabilities)
    if answer.size != len(labels):
        raise ValueError(f"{answer.size} probabilities per piece for {len(labels)} labels; pass the model's labels")
    if not seconds >= 0:
        raise ValueError(f"seconds must be zero or more, got {seconds}")
    best = int(np.argmax(answer))
    ordinary = float(sum(answer[index] for index, label in enumerate(labels) if label in ORDINARY_LABELS))
    return ReferenceVerdict(seconds=float(seconds), ordinary_share=ordinary, heard_as=str(labels[best]),
                            heard_share=float(answer[best]))
