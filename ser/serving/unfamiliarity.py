"""Does this input sound unlike the model's training data? Four measured checks, each with its own reason.

The shipped model learned from 20 North American actors reading two English sentences in a studio
(RAVDESS actors 1-20). On other audio it can be confident and wrong, so every analysed recording
carries an :class:`Unfamiliarity`: the checks that fired, each a stable code with one plain
sentence. Each check reads the ComParE functionals the model computes anyway (no second pass):

``not_speech``
    distance from RAVDESS speech in its first principal components (Mahalanobis, plus the energy
    outside them): music, tones, noise;
``phone_line``
    how high the brightest sounds reach: the 99th percentile over frames of the 90 % spectral
    roll-off (``pcm_fftMag_spectralRollOff90.0_sma_percentile99.0``, Hz). Studio speech's "s" and
    "t" reach 6-8 kHz; a phone line stops at 3.4 kHz;
``synthetic_voice``
    the mean cycle-to-cycle pitch jitter (``jitterLocal_sma_amean``): human voices are never
    perfectly periodic, formant synthesisers and tones are;
``unfamiliar_voice``
    a logistic-regression domain classifier on the standardised functionals, RAVDESS (in) against
    ASED (Amharic, another studio and speaking style; out).

Every threshold is set on held-out RAVDESS actors (about 0.5 % of unseen training-corpus clips fire
each check); what each catches is measured on held-out ASED speakers and on conditions never used
for fitting (``docs/familiarity.md``). The detector is written by
``python -m ser unfamiliarity`` to ``models/unfamiliarity.npz`` (float16/float32 arrays and
a JSON header, no pickle).

Example
-------
>>> from ser.serving.unfamiliarity import load_unfamiliarity
>>> detector = load_unfamiliarity()
>>> detector.assess(functionals_of_the_utterance).reasons      # doctest: +SKIP
('phone_line',)
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import BundleError
from ser.serving.familiarity import functional_rows, principal_distance

#: Where ``python -m ser unfamiliarity`` writes the detector (next to model.keras).
DEFAULT_UNFAMILIARITY = Path(__file__).resolve().parents[2] / "models" / "unfamiliarity.npz"
PRODUCER = "python -m ser unfamiliarity --data ../shared/data --out models/"


def producer(*, ordinary: bool) -> str:
    """The command that builds the detector, with ``--ordinary`` when its voice check learnt the ordinary voices.

    >>> producer(ordinary=True)
    'python -m ser unfamiliarity --data ../shared/data --ordinary --out models/'
    """
    return PRODUCER.replace(" --out", " --ordinary --out") if ordinary else PRODUCER
#: The checks in the order of :meth:`UnfamiliarityDetector.statistics`' columns.
CHECKS: tuple[str, ...] = ("not_speech", "phone_line", "synthetic_voice", "unfamiliar_voice")
#: One plain sentence per reason, for users.
REASONS: dict[str, str] = {
    "not_speech": "It sounds more like music, a tone or noise than a speaking voice.",
    "phone_line": "The high frequencies are missing, as on a phone line or a low-quality recording.",
    "synthetic_voice": "The pitch is steadier than any human voice the model learned from, as in a computer voice.",
    "unfamiliar_voice": "The voice or recording is unlike the training actors' (for example another language, "
                        "microphone or way of speaking).",
}
#: Each reason in a few words, for the one-sentence warning under an answer and the batch table.
REASON_WORDS: dict[str, str] = {
    "not_speech": "it sounds like music, a tone or noise",
    "phone_line": "it sounds like a phone line",
    "synthetic_voice": "the voice is as steady as a computer's",
    "unfamiliar_voice": "the voice is unlike the training actors'",
}
#: Why a warning matters, whatever fired.
BACKGROUND = ("The model learned from 20 North American actors reading English in a studio, and on other audio it "
              "can be confident and wrong: treat the answer as a rough guess.")
#: What helps, per reason; the voice's depends on whether the answer is calibrated (:meth:`Unfamiliarity.advice`).
REMEDIES: dict[str, str] = {
    "not_speech": "Record someone speaking, without music or loud noise behind them.",
    "phone_line": "Record with the device's own microphone rather than over a phone or video call.",
    "synthetic_voice": "The model is made for human voices; a computer voice's answer means little.",
}
#: The remedy for an unfamiliar voice, before and after calibrating to the speaker.
VOICE_REMEDY = ("Calibrating to your voice (a few seconds of your ordinary speech, under \"Calibrate to your "
                "voice\") helps with an unfamiliar voice.")
CALIBRATED_VOICE = ("This answer is already calibrated to your voice, which is what helps most with an unfamiliar "
                    "voice; it can still be off.")
#: The statistic of each check fires above (+1) or below (-1) its threshold.
DIRECTIONS: dict[str, int] = {"not_speech": 1, "phone_line": -1, "synthetic_voice": -1, "unfamiliar_voice": 1}
#: The ComParE functionals the two one-number checks read.
BAND_FUNCTIONAL = "pcm_fftMag_spectralRollOff90.0_sma_percentile99.0"
STEADINESS_FUNCTIONAL = "jitterLocal_sma_amean"


@dataclasses.dataclass(frozen=True)
class Unfamiliarity:
    """Which checks fired for one recording (or one segment).

    Attributes
    ----------
    reasons : tuple of str
        Codes from :data:`CHECKS` that fired, in that order; empty when the input looks familiar.
    """

    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [reason for reason in self.reasons if reason not in REASONS]
        if unknown:
            raise ValueError(f"unknown unfamiliarity reasons {unknown}; known: {list(CHECKS)}")

    @property
    def familiar(self) -> bool:
        """True when no check fired."""
        return not self.reasons

    @property
    def messages(self) -> tuple[str, ...]:
        """One plain sentence per reason."""
        return tuple(REASONS[reason] for reason in self.reasons)

    @property
    def warning(self) -> str:
        """The whole warning for a reader not calibrated to the speaker ("" when familiar)."""
        return self.warning_for(calibrated=False)

    def warning_for(self, *, calibrated: bool) -> str:
        """The whole warning ("" when familiar): the reasons, then :meth:`advice`.

        Parameters
        ----------
        calibrated : bool
            Whether the answer is calibrated to the speaker (then calibrating is not advised).
        """
        if self.familiar:
            return ""
        return "This input is unlike the model's training data. " + " ".join(self.messages) + " " + \
            self.advice(calibrated=calibrated)

    @property
    def sentence(self) -> str:
        """The warning in one short sentence with its reasons, "" when familiar:
        "Unlike the training data: it sounds like a phone line, so treat the answer as a rough guess." """
        if self.familiar:
            return ""
        words = [REASON_WORDS[reason] for reason in self.reasons]
        reasons = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
        return f"Unlike the training data: {reasons}, so treat the answer as a rough guess."

    def advice(self, *, calibrated: bool) -> str:
        """Why the warning matters and what helps for the reasons that fired ("" when familiar).

        Parameters
        ----------
        calibrated : bool
            Whether the answer is already calibrated to the speaker's voice: then calibrating is not
            advised again, the voice's remedy says it is in place.
        """
        if self.familiar:
            return ""
        remedies = [REMEDIES[reason] for reason in self.reasons if reason in REMEDIES]
        if "unfamiliar_voice" in self.reasons:
            remedies.append(CALIBRATED_VOICE if calibrated else VOICE_REMEDY)
        return " ".join([BACKGROUND, *remedies])


def combine_unfamiliarity(parts: Sequence[tuple[Unfamiliarity, float]]) -> Unfamiliarity:
    """The verdict of a whole recording from its segments' verdicts.

    A reason fires when the segments that fired it hold at least half of the scored speech
    seconds (one odd segment in a long recording does not warn about all of it).

    Parameters
    ----------
    parts : sequence of (Unfamiliarity, seconds of speech)
    """
    total = sum(weight for _, weight in parts)
    if total <= 0:
        return Unfamiliarity()
    return Unfamiliarity(reasons=tuple(
        code for code in CHECKS
        if sum(weight for verdict, weight in parts if code in verdict.reasons) >= 0.5 * total
    ))


@dataclasses.dataclass(frozen=True)
class UnfamiliarityDetector:
    """The fitted checks.

    Attributes
    ----------
    mean, scale : np.ndarray, shape (n_functionals,)
        Standardisation of RAVDESS speech functionals (values then clipped to +-``limit``).
    limit : float
    centre : np.ndarray, shape (n_functionals,)
        Mean of the standardised training functionals.
    components : np.ndarray, shape (k, n_functionals)
        Orthonormal principal axes of the standardised training functionals.
    variances : np.ndarray, shape (k,)
    residual_scale : float
        Root mean square distance of training clips from the ``k``-dimensional subspace.
    domain_weights : np.ndarray, shape (n_functionals,)
        Logistic-regression weights on the standardised functionals (positive: unlike RAVDESS).
    domain_bias : float
    band_column, steadiness_column : int
        Positions of :data:`BAND_FUNCTIONAL` and :data:`STEADINESS_FUNCTIONAL`.
    thresholds : np.ndarray, shape (len(CHECKS),)
        One per check, in :data:`CHECKS` order (directions in :data:`DIRECTIONS`).
    measured : dict
        What the experiment measured (protocol, rates), for the Model page and the docs.
    """

    mean: np.ndarray
    scale: np.ndarray
    limit: float
    centre: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual_scale: float
    domain_weights: np.ndarray
    domain_bias: float
    band_column: int
    steadiness_column: int
    thresholds: np.ndarray
    measured: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        size = self.mean.shape[0]
        shapes_agree = (self.scale.shape == (size,) and self.centre.shape == (size,)
                        and self.components.ndim == 2 and self.components.shape[1] == size
                        and self.variances.shape == (self.components.shape[0],)
                        and self.domain_weights.shape == (size,) and self.thresholds.shape == (len(CHECKS),))
        if not shapes_agree:
            raise ValueError(f"unfamiliarity detector shapes disagree (mean {self.mean.shape}, components "
                             f"{self.components.shape}, weights {self.domain_weights.shape}, thresholds "
                             f"{self.thresholds.shape}); regenerate it with {PRODUCER}")
        if np.any(self.variances <= 0) or np.any(self.scale <= 0) or self.residual_scale <= 0:
            raise ValueError(f"unfamiliarity detector variances and scales must be positive; rerun {PRODUCER}")
        if not (0 <= self.band_column < size and 0 <= self.steadiness_column < size):
            raise ValueError(f"unfamiliarity detector columns out of range; rerun {PRODUCER}")

    @property
    def size(self) -> int:
        """Number of functionals the detector reads."""
        return int(self.mean.shape[0])

    def standardize(self, functionals: np.ndarray) -> np.ndarray:
        """Standardised, clipped functionals, shape (n_clips, n_functionals), float64."""
        return np.clip((functionals - self.mean) / self.scale, -self.limit, self.limit)

    def statistics(self, functionals: np.ndarray) -> np.ndarray:
        """The four checks' statistics.

        Parameters
        ----------
        functionals : np.ndarray, shape (n_clips, n_functionals) or (n_functionals,)
            ComParE functionals of each clip's trimmed utterance (as the bundle computes them).

        Returns
        -------
        np.ndarray, shape (n_clips, len(CHECKS)) (or (len(CHECKS),) for one clip), float64:
        distance from training speech, roll-off in Hz, jitter (fraction of a period), domain logit.

        Raises
        ------
        ValueError
            If the width is not ``n_functionals`` or a value is not finite.
        """
        values, single = functional_rows(functionals, size=self.size)
        standard = self.standardize(values)
        distance = principal_distance(standard - self.centre, components=self.components, variances=self.variances,
                                      residual_scale=self.residual_scale)
        logit = standard @ self.domain_weights + self.domain_bias
        result = np.stack([distance, values[:, self.band_column], values[:, self.steadiness_column], logit], axis=1)
        return result[0] if single else result

    def flags(self, statistics: np.ndarray) -> np.ndarray:
        """Which checks fire, shape as ``statistics``, bool."""
        directions = np.array([DIRECTIONS[code] for code in CHECKS], dtype=np.float64)
        return directions * (np.asarray(statistics) - self.thresholds) > 0

    def assess(self, functionals: np.ndarray) -> Unfamiliarity:
        """:class:`Unfamiliarity` of one clip from its functionals, shape (n_functionals,)."""
        values = np.asarray(functionals)
        if values.ndim != 1:
            raise ValueError(f"assess takes one clip's functionals, shape ({self.size},), got {values.shape}")
        fired = self.flags(self.statistics(values))
        return Unfamiliarity(reasons=tuple(code for code, flag in zip(CHECKS, fired, strict=True) if flag))


#: Arrays of the .npz file and their stored dtypes (components as float16 keep the file small).
ARRAYS = ("mean", "scale", "centre", "components", "variances", "domain_weights", "thresholds")


def save_unfamiliarity(detector: UnfamiliarityDetector, path: str | Path, *, header: dict[str, Any]) -> None:
    """Write the detector as an ``.npz`` (no pickle): arrays plus a JSON ``header`` string."""
    document = {**header, "limit": detector.limit, "residual_scale": detector.residual_scale,
                "domain_bias": detector.domain_bias, "band_column": detector.band_column,
                "steadiness_column": detector.steadiness_column, "checks": list(CHECKS),
                "measured": detector.measured}
    arrays = {name: np.asarray(getattr(detector, name)) for name in ARRAYS}
    arrays["components"] = arrays["components"].astype(np.float16)
    arrays = {name: (values if name == "components" else values.astype(np.float32)) for name, values in arrays.items()}
    with open(path, "wb") as stream:
        np.savez_compressed(stream, header=np.array(json.dumps(document)), **arrays)


def load_unfamiliarity(path: str | Path = DEFAULT_UNFAMILIARITY) -> UnfamiliarityDetector:
    """Read ``models/unfamiliarity.npz``.

    Raises
    ------
    BundleError
        If the file is missing, corrupt or made for other checks; the message says how to rebuild it.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no unfamiliarity detector; build it with {PRODUCER}")
    try:
        with np.load(path, allow_pickle=False) as stored:
            header = json.loads(str(stored["header"]))
            arrays = {name: np.asarray(stored[name], dtype=np.float64) for name in ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise BundleError(f"{path} is not a readable unfamiliarity detector ({error}); rebuild it with {PRODUCER}") \
            from error
    if header.get("checks") != list(CHECKS):
        raise BundleError(f"{path} holds the checks {header.get('checks')}, this code expects {list(CHECKS)}; "
                          f"rebuild it with {PRODUCER}")
    try:
        return UnfamiliarityDetector(
            limit=float(header["limit"]), residual_scale=float(header["residual_scale"]),
            domain_bias=float(header["domain_bias"]), band_column=int(header["band_column"]),
            steadiness_column=int(header["steadiness_column"]), measured=dict(header.get("measured", {})),
            **arrays,
        )
    except (KeyError, ValueError) as error:
        raise BundleError(f"{path}: {error}") from error
