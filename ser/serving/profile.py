"""A personal voice profile: a person's own clips of a few emotions teach the model how *they* sound.

People differ in how they sound angry or sad far more than a model trained on twenty actors can
know. A profile holds, for each emotion the person recorded, the prototype (mean) of their clips in
the model's own representation: every view's emotion log-probabilities (the CNN, the functionals
and the voice-source view; :func:`embedding`). A later answer for that person combines the generic
model with how close the clip lies to each of their prototypes:

1. the generic answer is first calibrated on their neutral clips, exactly as ``--reference`` does
   (:mod:`ser.serving.speaker`, the neutral floor), so a profile with only neutral *is* that
   calibration;
2. among the enrolled emotions, the share the generic answer gives them together is kept, and
   split between them by the generic answer and the prototypes (log-linear, :data:`PERSONAL_WEIGHT`
   on the prototypes' posterior); emotions the person did not record keep the generic answer.

Nothing of the audio is kept: a profile is a few dozen numbers per emotion, the bundle version it
was made for, and how many seconds of speech each emotion had. Measured on speakers the model never
heard: ``python -m experiments.voice_profile --data ../shared/data`` (``models/voice_profile.json``).

Example
-------
>>> import numpy as np
>>> from ser.serving.profile import build_profile, Enrolment
>>> emotions = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
>>> rng = np.random.default_rng(0)
>>> def clip(emotion):  # a generic answer and its three views, all unsure
...     probabilities = np.full(8, 1 / 8)
...     views = np.tile(np.full(8, 1 / 8), 3) + 0.001 * rng.random(24)
...     views[emotions.index(emotion)] += 0.2  # the person's own way of sounding that emotion
...     return Enrolment(emotion=emotion, probabilities=probabilities, views=views / 3, seconds=2.0, name=emotion)
>>> profile = build_profile([clip("neutral"), clip("angry")], emotions=emotions, bundle_version="abc")
>>> sorted(profile.prototypes)
['angry', 'neutral']
>>> answer = profile.apply(np.full(8, 1 / 8), views=clip("angry").views)
>>> emotions[int(np.argmax(answer))]
'angry'
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ser.errors import SERError
from ser.serving.speaker import NEUTRAL_FLOOR, adaptation_from_scores, apply_neutral_bias

#: The profile file's format; a file with another is refused.
PROFILE_SCHEMA = "ser.voice_profile/1"
#: Weight of the person's prototypes against the generic answer among the enrolled emotions
#: (log-linear: 0 is the generic model, 1 the prototypes alone). Chosen in
#: ``experiments.voice_profile`` on RAVDESS folds by nested cross-validation (see its result file).
PERSONAL_WEIGHT = 0.7
#: Spread of one person's clips of one emotion around their prototype, per dimension of the
#: embedding (the variance of the isotropic Gaussian each prototype stands for).
PROTOTYPE_VARIANCE = 1.0
#: An enrolment clip is flagged (not refused) when the generic model, calibrated to the person's
#: neutral, gives its intended emotion less than this and is sure of another one.
MISMATCH_PROBABILITY = 0.05
#: Least probability kept before taking logarithms.
FLOOR = 1e-6


class ProfileError(SERError):
    """A profile cannot be built or used; the message says what to do."""


def embedding(views: np.ndarray, *, n_emotions: int) -> np.ndarray:
    """The representation a profile works in: each view's log-probabilities, centred per view.

    Parameters
    ----------
    views : np.ndarray, shape (n_views * n_emotions,) or (n, n_views * n_emotions)
        The views' emotion probabilities side by side (``ClipPrediction.views``).
    n_emotions : int

    Returns
    -------
    np.ndarray, shape (..., n_views * n_emotions)
        Log-odds-like coordinates: only the views' relative beliefs count, not their scale.
    """
    values = np.asarray(views, dtype=np.float64)
    if values.shape[-1] % n_emotions:
        raise ProfileError(f"the views hold {values.shape[-1]} numbers, not a multiple of {n_emotions} emotions; "
                           "the profile and the model do not match")
    logs = np.log(np.clip(values, FLOOR, 1.0)).reshape(*values.shape[:-1], -1, n_emotions)
    logs -= logs.mean(axis=-1, keepdims=True)
    return logs.reshape(values.shape)


@dataclasses.dataclass(frozen=True)
class Enrolment:
    """One enrolment clip, as the generic model scored it.

    Attributes
    ----------
    emotion : str
        What the person meant to sound like.
    probabilities : np.ndarray, shape (n_emotions,)
        The generic model's calibrated answer.
    views : np.ndarray, shape (n_views * n_emotions,)
        Every view's emotion probabilities (``ClipPrediction.views``).
    seconds : float
        Speech in the clip.
    name : str
        The file, for messages.
    """

    emotion: str
    probabilities: np.ndarray
    views: np.ndarray
    seconds: float
    name: str


@dataclasses.dataclass(frozen=True)
class Prototype:
    """One enrolled emotion: the mean embedding of its clips, how many, and their speech in seconds."""

    mean: tuple[float, ...]
    clips: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class VoiceProfile:
    """A person's voice profile (JSON, :meth:`to_json` / :func:`read_profile`).

    Attributes
    ----------
    bundle_version : str
        ``Bundle.version`` of the model it was made with; another model refuses it.
    emotions : tuple of str
        The model's emotions, in its order.
    prototypes : dict
        Enrolled emotion -> :class:`Prototype`.
    neutral_bias : float
        The neutral floor's log-odds bias from the neutral clips (:mod:`ser.serving.speaker`).
    reference_neutral : float
        Probability of neutral the generic model gave the neutral clips before calibration.
    personal_weight, prototype_variance : float
        How the prototypes are combined with the generic answer (:data:`PERSONAL_WEIGHT`, ...).
    warnings : tuple of str
        Enrolment clips the generic model heard very differently from their label.
    created : str
        UTC time it was built (ISO 8601).
    """

    bundle_version: str
    emotions: tuple[str, ...]
    prototypes: dict[str, Prototype]
    neutral_bias: float
    reference_neutral: float
    personal_weight: float = PERSONAL_WEIGHT
    prototype_variance: float = PROTOTYPE_VARIANCE
    warnings: tuple[str, ...] = ()
    created: str = ""

    @property
    def enrolled(self) -> list[str]:
        """Enrolled emotions in the model's order."""
        return [emotion for emotion in self.emotions if emotion in self.prototypes]

    @property
    def seconds(self) -> float:
        """Speech the profile was built from, in seconds."""
        return float(sum(prototype.seconds for prototype in self.prototypes.values()))

    def personal_posterior(self, views: np.ndarray) -> np.ndarray:
        """How likely each enrolled emotion is from the prototypes alone.

        Parameters
        ----------
        views : np.ndarray, shape (n_views * n_emotions,) or (n, n_views * n_emotions)

        Returns
        -------
        np.ndarray, shape (..., n_enrolled)
            In :attr:`enrolled` order; sums to 1.
        """
        point = embedding(views, n_emotions=len(self.emotions))
        means = np.array([self.prototypes[emotion].mean for emotion in self.enrolled])
        if means.shape[-1] != point.shape[-1]:
            raise ProfileError(f"the profile's prototypes have {means.shape[-1]} numbers but the model's views "
                               f"{point.shape[-1]}; build the profile again with this model")
        distances = ((point[..., None, :] - means) ** 2).sum(axis=-1)
        scores = -distances / (2.0 * self.prototype_variance)
        scores -= scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        return weights / weights.sum(axis=-1, keepdims=True)

    def apply(self, probabilities: np.ndarray, *, views: np.ndarray | None) -> np.ndarray:
        """The answer for this person: the generic ``probabilities`` calibrated and combined with the prototypes.

        Parameters
        ----------
        probabilities : np.ndarray, shape (n_emotions,) or (n, n_emotions)
            The generic model's calibrated answer(s).
        views : np.ndarray, shape (n_views * n_emotions,) or (n, ...), or None
            The same clips' views; None (an answer averaged over segments, or from a model without
            views) applies the neutral calibration only.

        Returns
        -------
        np.ndarray, same shape as ``probabilities``
        """
        neutral = self.emotions.index("neutral")
        generic = apply_neutral_bias(probabilities, neutral=neutral, bias=self.neutral_bias)
        enrolled = [self.emotions.index(emotion) for emotion in self.enrolled]
        if views is None or len(enrolled) < 2:
            return generic
        personal = self.personal_posterior(views)
        inside = generic[..., enrolled]
        share = inside.sum(axis=-1, keepdims=True)
        mixed = ((1.0 - self.personal_weight) * np.log(np.clip(inside / share, FLOOR, 1.0))
                 + self.personal_weight * np.log(np.clip(personal, FLOOR, 1.0)))
        mixed = np.exp(mixed - mixed.max(axis=-1, keepdims=True))
        answer = generic.copy()
        answer[..., enrolled] = share * mixed / mixed.sum(axis=-1, keepdims=True)
        return answer

    def summary(self) -> dict:
        """What an answer's JSON says about the profile (no prototypes)."""
        return {"bundle_version": self.bundle_version, "enrolled": self.enrolled,
                "clips": {emotion: self.prototypes[emotion].clips for emotion in self.enrolled},
                "seconds": round(self.seconds, 2), "neutral_bias": round(self.neutral_bias, 4),
                "warnings": list(self.warnings)}

    def to_json(self) -> str:
        """The profile file's text (numbers only: no audio, no transcript)."""
        document = {
            "schema": PROFILE_SCHEMA,
            "bundle_version": self.bundle_version,
            "emotions": list(self.emotions),
            "prototypes": {emotion: {"mean": [round(value, 6) for value in prototype.mean],
                                     "clips": prototype.clips, "seconds": round(prototype.seconds, 3)}
                           for emotion, prototype in self.prototypes.items()},
            "neutral_bias": self.neutral_bias,
            "reference_neutral": self.reference_neutral,
            "personal_weight": self.personal_weight,
            "prototype_variance": self.prototype_variance,
            "warnings": list(self.warnings),
            "created": self.created,
        }
        return json.dumps(document, indent=1)


def build_profile(enrolments: Sequence[Enrolment], *, emotions: Sequence[str], bundle_version: str,
                  confidence_threshold: float = 0.5) -> VoiceProfile:
    """A profile from scored enrolment clips.

    Parameters
    ----------
    enrolments : sequence of Enrolment
        At least one neutral clip; any subset of ``emotions``, one or more clips each.
    emotions : sequence of str
        The model's emotions in its order.
    bundle_version : str
        ``Bundle.version`` of the model that scored them.
    confidence_threshold : float
        The model's "not sure" threshold (for the mismatch warning).

    Raises
    ------
    ProfileError
        No clips, an emotion the model does not know, or no neutral clip.
    """
    emotions = tuple(emotions)
    if not enrolments:
        raise ProfileError("no enrolment clips: give at least one neutral clip, e.g. neutral=my_voice.wav")
    unknown = sorted({clip.emotion for clip in enrolments} - set(emotions))
    if unknown:
        raise ProfileError(f"unknown emotion {', '.join(unknown)}; the model knows {', '.join(emotions)}")
    if "neutral" not in emotions or not any(clip.emotion == "neutral" for clip in enrolments):
        raise ProfileError("a profile needs at least one neutral clip (your ordinary voice): "
                           "add neutral=FILE")
    neutral = emotions.index("neutral")
    references = np.stack([clip.probabilities for clip in enrolments if clip.emotion == "neutral"])
    adaptation = adaptation_from_scores(references, neutral=neutral, floor=NEUTRAL_FLOOR)
    warnings = []
    for clip in enrolments:
        calibrated = apply_neutral_bias(clip.probabilities, neutral=neutral, bias=adaptation.bias)
        best = int(np.argmax(calibrated))
        if calibrated[emotions.index(clip.emotion)] < MISMATCH_PROBABILITY and calibrated[best] >= confidence_threshold:
            warnings.append(f"{clip.name} (meant {clip.emotion}) sounded {emotions[best]} to the model "
                            f"({calibrated[best]:.0%}); if you did not sound {clip.emotion}, record it again")
    prototypes = {}
    for emotion in emotions:
        mine = [clip for clip in enrolments if clip.emotion == emotion]
        if mine:
            points = embedding(np.stack([clip.views for clip in mine]), n_emotions=len(emotions))
            prototypes[emotion] = Prototype(mean=tuple(float(v) for v in points.mean(axis=0)), clips=len(mine),
                                            seconds=float(sum(clip.seconds for clip in mine)))
    return VoiceProfile(
        bundle_version=bundle_version, emotions=emotions, prototypes=prototypes, neutral_bias=adaptation.bias,
        reference_neutral=adaptation.reference_neutral, warnings=tuple(warnings),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )


def read_profile(source: str | Path | bytes, *, bundle_version: str | None = None,
                 emotions: Sequence[str] | None = None) -> VoiceProfile:
    """A profile from its file (a path) or its text (bytes), checked against the model that will use it.

    Raises
    ------
    ProfileError
        Not a profile, a damaged one, or one made for another model (``bundle_version`` or ``emotions``).
    """
    name = str(source) if isinstance(source, (str, Path)) else "the profile"
    try:
        text = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
        document = json.loads(text)
    except OSError as error:
        raise ProfileError(f"{name}: cannot read it ({error.strerror}); check the path") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProfileError(f"{name} is not a voice profile (not JSON); build one with python -m ser profile") \
            from error
    if not isinstance(document, dict) or document.get("schema") != PROFILE_SCHEMA:
        raise ProfileError(f"{name} is not a voice profile of this app ({PROFILE_SCHEMA}); "
                           "build one with python -m ser profile")
    try:
        profile = VoiceProfile(
            bundle_version=str(document["bundle_version"]),
            emotions=tuple(str(emotion) for emotion in document["emotions"]),
            prototypes={str(emotion): Prototype(mean=tuple(float(v) for v in entry["mean"]),
                                                clips=int(entry["clips"]), seconds=float(entry["seconds"]))
                        for emotion, entry in document["prototypes"].items()},
            neutral_bias=float(document["neutral_bias"]),
            reference_neutral=float(document["reference_neutral"]),
            personal_weight=float(document["personal_weight"]),
            prototype_variance=float(document["prototype_variance"]),
            warnings=tuple(str(warning) for warning in document.get("warnings", ())),
            created=str(document.get("created", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ProfileError(f"{name} is damaged ({type(error).__name__}: {error}); build it again") from error
    sizes = {len(prototype.mean) for prototype in profile.prototypes.values()}
    if ("neutral" not in profile.prototypes or len(sizes) != 1 or not np.all(np.isfinite(
            [value for prototype in profile.prototypes.values() for value in prototype.mean]))
            or not 0.0 <= profile.personal_weight <= 1.0 or not profile.prototype_variance > 0
            or not np.isfinite(profile.neutral_bias) or profile.neutral_bias < 0):
        raise ProfileError(f"{name} is damaged (no neutral prototype, or numbers out of range); build it again")
    if bundle_version is not None and profile.bundle_version != bundle_version:
        raise ProfileError(f"{name} was made for another model (version {profile.bundle_version}, this one is "
                           f"{bundle_version}); record the enrolment clips again with this model")
    if emotions is not None and tuple(emotions) != profile.emotions:
        raise ProfileError(f"{name} was made for a model with other emotions; build it again with this model")
    return profile
