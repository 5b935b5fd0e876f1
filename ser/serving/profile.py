"""A personal voice profile: a person's own clips of a few emotions teach the model how *they* sound.

People differ in how they sound angry or sad far more than a model trained on twenty actors can know.
A profile is a small re-fit of the model's answer to one person (:func:`fit_personal`): on the
person's enrolment clips, a linear correction of the generic answer's log-probabilities from the
clip's openSMILE functionals (standardised as the functional view reads them), one column per
emotion the person recorded, pulled towards no correction at all by an L2 prior
(:data:`PRIOR_STRENGTH`): with a clip or two per emotion it learns what separates *this* voice's
emotions without forgetting what the model knows. In order, for every later answer:

1. the generic answer is calibrated on the person's neutral clips exactly as ``--reference`` does
   (:mod:`ser.serving.speaker`, the neutral floor), so a profile with only neutral *is* that
   calibration;
2. with two or more emotions enrolled, their log-probabilities get the person's correction;
   emotions the person did not record keep the generic model's (the correction is fitted with a
   loss over the enrolled emotions only, so it never learns "not surprised" from a voice that was
   never asked to sound surprised).

Nothing of the audio is kept: the file holds the correction's weights, the bundle version it was
made for, and how many clips and seconds each emotion had. Measured on speakers the model never
heard: ``python -m ser profile-check --data ../shared/data`` (``models/voice_profile.json``).
Prototypes of each emotion in the model's own answers (its views' log-probabilities) were tried
first and rejected: on RAVDESS (K = 2 clips per emotion) they lowered accuracy (generic 65.5%).

Example
-------
>>> import numpy as np
>>> from ser.serving.profile import Enrolment, build_profile
>>> emotions = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
>>> rng = np.random.default_rng(0)
>>> voice = {emotion: rng.standard_normal(50) for emotion in emotions}  # how this person sounds
>>> def clip(emotion):  # a generic answer that cannot tell, and the clip's features
...     return Enrolment(emotion=emotion, probabilities=np.full(8, 1 / 8),
...                      features=voice[emotion] + 0.3 * rng.standard_normal(50), seconds=2.0, name=emotion)
>>> profile = build_profile([clip("neutral"), clip("angry"), clip("sad")], emotions=emotions, bundle_version="v")
>>> profile.enrolled_emotions
['neutral', 'sad', 'angry']
>>> answer = profile.apply(np.full(8, 1 / 8), features=clip("angry").features)
>>> emotions[int(np.argmax(answer))]
'angry'
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from ser.errors import SERError
from ser.serving.speaker import NEUTRAL_FLOOR, SpeakerAdaptation, adaptation_from_scores, apply_neutral_bias

#: The profile file's format; a file with another is refused.
PROFILE_SCHEMA = "ser.voice_profile/1"
#: L2 strength of the prior that keeps the person's correction near none (the generic model). Chosen
#: in ``python -m ser profile-check`` on RAVDESS folds by nested cross-validation (its result file).
PRIOR_STRENGTH = 30.0
#: An enrolment clip is flagged (not refused) when the generic model, calibrated to the person's
#: neutral, gives its intended emotion less than this and is sure of another one.
MISMATCH_PROBABILITY = 0.05
#: Least probability kept before taking logarithms.
FLOOR = 1e-9


class ProfileError(SERError):
    """A profile cannot be built or used; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Enrolment:
    """One enrolment clip, as the generic model scored it.

    Attributes
    ----------
    emotion : str
        What the person meant to sound like.
    probabilities : np.ndarray, shape (n_emotions,)
        The generic model's calibrated answer.
    features : np.ndarray, shape (n_features,)
        The clip's standardised functionals (``ClipPrediction.features``).
    seconds : float
        Speech in the clip.
    name : str
        The file, for messages.
    """

    emotion: str
    probabilities: np.ndarray
    features: np.ndarray
    seconds: float
    name: str


@dataclasses.dataclass(frozen=True)
class EnrolledEmotion:
    """How much of one emotion the person recorded."""

    clips: int
    seconds: float


def fit_personal(features: np.ndarray, logits: np.ndarray, labels: np.ndarray, *,
                 strength: float = PRIOR_STRENGTH) -> tuple[np.ndarray, np.ndarray]:
    """The person's correction: ``logits + features @ weights + bias`` fits their clips, L2 towards zero.

    Minimises ``sum_i CE(softmax(logits_i + x_i W + b), y_i) + strength / 2 (||W||^2 + ||b||^2)``. Its
    optimum lies in the span of the clips (``W = X^T A``), so it is solved for ``A`` (n_clips x n_classes)
    with the clips' Gram matrix: milliseconds for 20 clips of 6373 functionals.

    Parameters
    ----------
    features : np.ndarray, shape (n_clips, n_features)
    logits : np.ndarray, shape (n_clips, n_classes)
        The generic answer's log-probabilities over the classes being corrected.
    labels : np.ndarray of int, shape (n_clips,)
        Each clip's class among those.
    strength : float
        The prior's L2 strength (> 0).

    Returns
    -------
    weights : np.ndarray, shape (n_features, n_classes)
    bias : np.ndarray, shape (n_classes,)
    """
    features = np.asarray(features, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = logits.shape
    if features.shape[0] != n or labels.shape != (n,) or not strength > 0:
        raise ValueError(f"fit_personal needs matching rows and a positive strength; got features {features.shape}, "
                         f"logits {logits.shape}, labels {labels.shape}, strength {strength}")
    gram = features @ features.T
    rows = np.arange(n)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        dual, bias = theta[: n * k].reshape(n, k), theta[n * k :]
        scores = logits + gram @ dual + bias
        scores -= scores.max(axis=1, keepdims=True)
        probabilities = np.exp(scores)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        loss = -np.log(probabilities[rows, labels] + 1e-300).sum()
        loss += strength / 2 * (np.sum(dual * (gram @ dual)) + bias @ bias)
        error = probabilities
        error[rows, labels] -= 1.0
        gradient = np.concatenate([(gram @ (error + strength * dual)).ravel(), error.sum(axis=0) + strength * bias])
        return float(loss), gradient

    solution = minimize(objective, np.zeros(n * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    dual = solution.x[: n * k].reshape(n, k)
    return features.T @ dual, solution.x[n * k :]


@dataclasses.dataclass(frozen=True, eq=False)  # array fields: compare profiles by their JSON
class VoiceProfile:
    """A person's voice profile (JSON: :meth:`to_json`, :func:`read_profile`).

    Attributes
    ----------
    bundle_version : str
        ``Bundle.version`` of the model it was made with; another model refuses it.
    emotions : tuple of str
        The model's emotions, in its order.
    enrolled : dict
        Enrolled emotion -> :class:`EnrolledEmotion`, in the model's order.
    neutral_bias : float
        The neutral floor's log-odds bias from the neutral clips (:mod:`ser.serving.speaker`).
    reference_neutral : float
        Probability of neutral the generic model gave the neutral clips before calibration.
    weights : np.ndarray, shape (n_features, n_enrolled), float32
        The person's correction (:func:`fit_personal`); n_enrolled columns in :attr:`enrolled`'s order
        (zero columns when only neutral is enrolled).
    bias : np.ndarray, shape (n_enrolled,)
    prior_strength : float
    warnings : tuple of str
        Enrolment clips the generic model heard very differently from their label.
    created : str
        UTC time it was built (ISO 8601).
    """

    bundle_version: str
    emotions: tuple[str, ...]
    enrolled: dict[str, EnrolledEmotion]
    neutral_bias: float
    reference_neutral: float
    weights: np.ndarray
    bias: np.ndarray
    prior_strength: float = PRIOR_STRENGTH
    warnings: tuple[str, ...] = ()
    created: str = ""

    @property
    def enrolled_emotions(self) -> list[str]:
        """Enrolled emotions in the model's order."""
        return list(self.enrolled)

    @property
    def seconds(self) -> float:
        """Speech the profile was built from, in seconds."""
        return float(sum(entry.seconds for entry in self.enrolled.values()))

    @property
    def corrects(self) -> bool:
        """Whether it changes more than neutral's calibration (two or more emotions enrolled)."""
        return len(self.enrolled) >= 2

    def apply(self, probabilities: np.ndarray, *, features: np.ndarray | None) -> np.ndarray:
        """The answer for this person: the generic ``probabilities`` calibrated, then corrected.

        Parameters
        ----------
        probabilities : np.ndarray, shape (n_emotions,) or (n, n_emotions)
            The generic model's calibrated answer(s).
        features : np.ndarray, shape (n_features,) or (n, n_features), or None
            The same clips' standardised functionals; None (an answer averaged over segments, or from
            a model without them) applies the neutral calibration only.

        Returns
        -------
        np.ndarray, same shape as ``probabilities``

        Raises
        ------
        ProfileError
            If the features do not have the profile's size (another model's).
        """
        neutral = self.emotions.index("neutral")
        generic = apply_neutral_bias(probabilities, neutral=neutral, bias=self.neutral_bias)
        if features is None or not self.corrects:
            return generic
        features = np.asarray(features, dtype=np.float64)
        if features.shape[-1] != self.weights.shape[0]:
            raise ProfileError(f"the profile reads {self.weights.shape[0]} functionals but the model gives "
                               f"{features.shape[-1]}; build the profile again with this model")
        columns = [self.emotions.index(emotion) for emotion in self.enrolled]
        logits = np.log(np.clip(generic, FLOOR, 1.0))
        logits[..., columns] += features @ self.weights + self.bias
        logits -= logits.max(axis=-1, keepdims=True)
        answer = np.exp(logits)
        return answer / answer.sum(axis=-1, keepdims=True)

    def summary(self) -> dict:
        """What an answer's JSON says about the profile (no weights)."""
        return {"bundle_version": self.bundle_version, "enrolled": self.enrolled_emotions,
                "clips": {emotion: entry.clips for emotion, entry in self.enrolled.items()},
                "seconds": round(self.seconds, 2), "neutral_bias": round(self.neutral_bias, 4),
                "warnings": list(self.warnings)}

    def to_dict(self) -> dict:
        """:meth:`summary` (what the app's downloads and ``predict --json`` record about a calibration)."""
        return self.summary()

    def to_json(self) -> str:
        """The profile file's text: numbers only (no audio, no transcript); the weights as base64 float32."""
        weights = np.ascontiguousarray(self.weights, dtype="<f4")
        document = {
            "schema": PROFILE_SCHEMA,
            "bundle_version": self.bundle_version,
            "emotions": list(self.emotions),
            "enrolled": {emotion: dataclasses.asdict(entry) for emotion, entry in self.enrolled.items()},
            "neutral_bias": self.neutral_bias,
            "reference_neutral": self.reference_neutral,
            "weights": {"shape": list(weights.shape), "float32_base64": base64.b64encode(weights.tobytes()).decode()},
            "bias": [float(value) for value in self.bias],
            "prior_strength": self.prior_strength,
            "warnings": list(self.warnings),
            "created": self.created,
        }
        return json.dumps(document, indent=1)


def build_profile(enrolments: Sequence[Enrolment], *, emotions: Sequence[str], bundle_version: str,
                  confidence_threshold: float = 0.5, strength: float = PRIOR_STRENGTH,
                  calibration: SpeakerAdaptation | None = None) -> VoiceProfile:
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
    strength : float
        The prior's L2 strength (:data:`PRIOR_STRENGTH`).
    calibration : SpeakerAdaptation, optional
        The neutral clips' calibration as ``--reference`` computes it from their audio
        (:func:`ser.serving.speaker.calibrate_bundle`); by default from their answers here.

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
        raise ProfileError("a profile needs at least one neutral clip (your ordinary voice): add neutral=FILE")
    neutral = emotions.index("neutral")
    references = np.stack([clip.probabilities for clip in enrolments if clip.emotion == "neutral"])
    adaptation = calibration or adaptation_from_scores(references, neutral=neutral, floor=NEUTRAL_FLOOR)
    calibrated = apply_neutral_bias(np.stack([clip.probabilities for clip in enrolments]), neutral=neutral,
                                    bias=adaptation.bias)
    warnings = []
    for clip, answer in zip(enrolments, calibrated, strict=True):
        best = int(np.argmax(answer))
        if answer[emotions.index(clip.emotion)] < MISMATCH_PROBABILITY and answer[best] >= confidence_threshold:
            warnings.append(f"{clip.name} (meant {clip.emotion}) sounded {emotions[best]} to the model "
                            f"({answer[best]:.0%}); if you did not sound {clip.emotion}, record it again")
    enrolled = {emotion: EnrolledEmotion(clips=sum(clip.emotion == emotion for clip in enrolments),
                                         seconds=float(sum(clip.seconds for clip in enrolments
                                                           if clip.emotion == emotion)))
                for emotion in emotions if any(clip.emotion == emotion for clip in enrolments)}
    features = np.stack([np.asarray(clip.features, dtype=np.float64) for clip in enrolments])
    columns = [emotions.index(emotion) for emotion in enrolled]
    if len(enrolled) >= 2:
        labels = np.array([list(enrolled).index(clip.emotion) for clip in enrolments])
        weights, bias = fit_personal(features, np.log(np.clip(calibrated[:, columns], FLOOR, 1.0)), labels,
                                     strength=strength)
    else:
        weights, bias = np.zeros((features.shape[1], 1)), np.zeros(1)
    return VoiceProfile(
        bundle_version=bundle_version, emotions=emotions, enrolled=enrolled, neutral_bias=adaptation.bias,
        reference_neutral=adaptation.reference_neutral, weights=weights.astype(np.float32), bias=bias,
        prior_strength=strength, warnings=tuple(warnings),
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
        shape = tuple(int(size) for size in document["weights"]["shape"])
        weights = np.frombuffer(base64.b64decode(document["weights"]["float32_base64"], validate=True),
                                dtype="<f4").reshape(shape).astype(np.float32)
        profile = VoiceProfile(
            bundle_version=str(document["bundle_version"]),
            emotions=tuple(str(emotion) for emotion in document["emotions"]),
            enrolled={str(emotion): EnrolledEmotion(clips=int(entry["clips"]), seconds=float(entry["seconds"]))
                      for emotion, entry in document["enrolled"].items()},
            neutral_bias=float(document["neutral_bias"]),
            reference_neutral=float(document["reference_neutral"]),
            weights=weights,
            bias=np.array([float(value) for value in document["bias"]], dtype=np.float64),
            prior_strength=float(document["prior_strength"]),
            warnings=tuple(str(warning) for warning in document.get("warnings", ())),
            created=str(document.get("created", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ProfileError(f"{name} is damaged ({type(error).__name__}: {error}); build it again") from error
    columns = len(profile.enrolled) if profile.corrects else 1
    if ("neutral" not in profile.enrolled or not set(profile.enrolled) <= set(profile.emotions)
            or profile.weights.ndim != 2 or profile.weights.shape[1] != columns or profile.bias.shape != (columns,)
            or not np.all(np.isfinite(profile.weights)) or not np.all(np.isfinite(profile.bias))
            or not np.isfinite(profile.neutral_bias) or profile.neutral_bias < 0):
        raise ProfileError(f"{name} is damaged (no neutral, or numbers that do not fit); build it again")
    if bundle_version is not None and profile.bundle_version != bundle_version:
        raise ProfileError(f"{name} was made for another model (version {profile.bundle_version}, this one is "
                           f"{bundle_version}); record the enrolment clips again with this model")
    if emotions is not None and tuple(emotions) != profile.emotions:
        raise ProfileError(f"{name} was made for a model with other emotions; build it again with this model")
    return profile
