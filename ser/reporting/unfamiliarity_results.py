"""What the "unlike the training data" warning was measured to do, as the model card and the Model page show it.

The figures live in the detector's own file, ``models/unfamiliarity.npz`` (the ``measured`` part of
its JSON header, written only by ``python -m ser unfamiliarity --data ../shared/data``; the
protocol is in ``docs/familiarity.md``). :func:`load_unfamiliarity_results` reads them through
:func:`ser.serving.unfamiliarity.load_unfamiliarity` into one typed :class:`UnfamiliarityResults`, so
the card and the page print the same numbers and nobody retypes them.

Example
-------
>>> from ser.reporting.unfamiliarity_results import load_unfamiliarity_results
>>> results = load_unfamiliarity_results("models/unfamiliarity.npz")  # doctest: +SKIP
>>> results.audio[0].name, results.audio[0].flagged["any"]  # doctest: +SKIP
('RAVDESS, held-out actors (false positives)', 0.0242)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ser.reporting.schema import ResultsError
from ser.serving.unfamiliarity import (
    BAND_FUNCTIONAL,
    CHECKS,
    DIRECTIONS,
    PRODUCER,
    STEADINESS_FUNCTIONAL,
    load_unfamiliarity,
    producer,
)

#: Each check in words (the codes are what ``predict --json`` and the downloads carry).
CHECK_NAMES: dict[str, str] = {"not_speech": "not speech", "phone_line": "phone line",
                               "synthetic_voice": "synthetic voice", "unfamiliar_voice": "unfamiliar voice"}
#: The sets of audio the experiment measures, in its order, and how a reader knows them.
AUDIO_NAMES: dict[str, str] = {
    "ravdess": "RAVDESS, held-out actors (false positives)",
    "ased": "ASED (Amharic), held-out speakers",
    "synthetic": "espeak-ng English, never used for fitting",
    "phone_8k": "RAVDESS telephone band (8 kHz, 300-3400 Hz), never used for fitting",
    "laptop_mic": "RAVDESS thin, bright laptop microphone, never used for fitting",
    "music": "synthetic music (vibrato tones, chords, melodies), never used for fitting",
    "speechocean": "speechocean's ordinary voices (read speech; held-out speakers if the check learnt them)",
}
#: The voices the unfamiliar-voice check learns as unlike RAVDESS's actors, in words.
UNFAMILIAR_NAMES = {"ased": "ASED", "speechocean": "speechocean's ordinary voices"}
#: Short names for the page's narrow tables.
AUDIO_SHORT_NAMES: dict[str, str] = {
    "ravdess": "training actors never heard", "ased": "Amharic speakers never heard", "synthetic": "espeak-ng English",
    "phone_8k": "telephone band", "laptop_mic": "laptop microphone", "music": "music and tones",
    "speechocean": "ordinary voices never heard",
}


@dataclasses.dataclass(frozen=True)
class CheckFigures:
    """One check: what it measures and where it fires.

    Attributes
    ----------
    code : str
        The stable code (:data:`ser.serving.unfamiliarity.CHECKS`).
    name : str
        The code in words.
    measures : str
        What its statistic measures, in words.
    functional : str
        The ComParE functional it reads ("" for the checks that read all of them).
    fires : str
        ``"above"`` or ``"below"`` :attr:`threshold`.
    threshold : float
        In the statistic's unit: distance, Hz, jitter (fraction of a pitch period) or logit.
    """

    code: str
    name: str
    measures: str
    functional: str
    fires: str
    threshold: float

    @property
    def threshold_text(self) -> str:
        """Where it fires, in the statistic's own unit (the model card's form)."""
        unit = {"phone_line": " Hz", "synthetic_voice": " (fraction of a pitch period)",
                "unfamiliar_voice": " (logit)"}.get(self.code, "")
        return f"{self.fires} {self.threshold:.4g}{unit}"

    @property
    def plain_threshold(self) -> str:
        """Where it fires, in the page's one number format (percentages with one decimal, no bare fractions)."""
        if self.code == "phone_line":
            return f"{self.fires} {self.threshold:.0f} Hz"
        if self.code == "synthetic_voice":
            return f"{self.fires} {100 * self.threshold:.1f}% of a pitch period"
        if self.code == "unfamiliar_voice":
            return f"{self.fires} a {100 / (1 + math.exp(-self.threshold)):.1f}% chance of not being RAVDESS"
        return f"{self.fires} {self.threshold:.2f}"


@dataclasses.dataclass(frozen=True)
class AudioFigures:
    """How often each check fired on one set of audio.

    Attributes
    ----------
    code, name, short_name : str
        The experiment's key for the set, and its names in the card and on the page.
    clips : int
    flagged : dict of str to float
        Share of the clips each check fired on, by code, and ``"any"`` (the warning).
    """

    code: str
    name: str
    short_name: str
    clips: int
    flagged: dict[str, float]


@dataclasses.dataclass(frozen=True)
class UnfamiliarityResults:
    """The measured figures of a bundle's ``unfamiliarity.npz``.

    Attributes
    ----------
    checks : tuple of CheckFigures
        In :data:`ser.serving.unfamiliarity.CHECKS` order.
    audio : tuple of AudioFigures
        Held-out RAVDESS actors first (their rates are false positives), then the other sets measured.
    per_actor_max : float
        The warning's share on the held-out RAVDESS actor it fired on most.
    per_speaker_min : float or None
        The warning's share on the held-out ASED speaker it fired on least.
    components, functionals : int
        Principal components of the ``not_speech`` distance; functionals the detector reads.
    protocol, command : str
    """

    checks: tuple[CheckFigures, ...]
    audio: tuple[AudioFigures, ...]
    per_actor_max: float
    per_speaker_min: float | None
    components: int
    functionals: int
    protocol: str
    command: str

    def audio_named(self, code: str) -> AudioFigures | None:
        """The figures of the set ``code`` (``"laptop_mic"``...), None when it was not measured."""
        return next((audio for audio in self.audio if audio.code == code), None)


def _shares(entry: Mapping[str, Any], key: str, *, where: str) -> dict[str, float]:
    shares = entry.get(key)
    missing = [code for code in (*CHECKS, "any") if not isinstance(shares, Mapping) or code not in shares]
    if missing:
        raise ResultsError(f"unfamiliarity.npz: measured.{where}.{key} lacks {missing}; rerun `{PRODUCER}`")
    return {code: float(shares[code]) for code in (*CHECKS, "any")}


def load_unfamiliarity_results(path: Path | str) -> UnfamiliarityResults:
    """Read the measured figures of an ``unfamiliarity.npz``.

    Raises
    ------
    ser.errors.BundleError
        When the file is missing or not a readable detector.
    ResultsError
        When it holds no measured figures, or not all of them; the message names the command that remeasures them.
    """
    detector = load_unfamiliarity(path)
    measured = detector.measured
    ravdess = measured.get("ravdess")
    if not isinstance(ravdess, Mapping) or "protocol" not in measured or "any_per_actor_max" not in ravdess:
        raise ResultsError(f"{Path(path).name} holds no measured figures (or not all); rerun `{PRODUCER}`")
    false_positives = _shares(ravdess, "flagged_cross_fitted", where="ravdess")
    functionals = {"phone_line": BAND_FUNCTIONAL, "synthetic_voice": STEADINESS_FUNCTIONAL}
    measures = {
        "not_speech": f"distance from RAVDESS speech (Mahalanobis, in its first {detector.components.shape[0]} "
                      "principal components, plus the energy outside them): music, tones, noise",
        "phone_line": "how high the brightest sounds reach (99th percentile over frames of the frequency below "
                      "which nine tenths of the energy lies); a studio's \"s\" and \"t\" reach 6-8 kHz, a phone "
                      "line stops at 3.4 kHz",
        "synthetic_voice": "how unsteady the pitch is (mean cycle-to-cycle jitter): no human voice is perfectly "
                           "periodic, a formant synthesiser is",
        "unfamiliar_voice": "a logistic-regression classifier of RAVDESS (in) against "
                            + (" and ".join(UNFAMILIAR_NAMES.get(name, name)
                                            for name in measured.get("unfamiliar_voices", ["ased"])))
                            + f" (out) on all {detector.size} standardised functionals",
    }
    checks = tuple(
        CheckFigures(code=code, name=CHECK_NAMES[code], measures=measures[code], functional=functionals.get(code, ""),
                     fires="above" if DIRECTIONS[code] > 0 else "below", threshold=float(threshold))
        for code, threshold in zip(CHECKS, detector.thresholds, strict=True)
    )
    audio = []
    for code, entry in measured.items():
        if not isinstance(entry, Mapping) or "clips" not in entry:
            continue  # the thresholds and the protocol
        flagged = false_positives if code == "ravdess" else _shares(entry, "flagged", where=code)
        audio.append(AudioFigures(code=code, name=AUDIO_NAMES.get(code, code), clips=int(entry["clips"]),
                                  short_name=AUDIO_SHORT_NAMES.get(code, code), flagged=flagged))
    ased = measured.get("ased", {})
    return UnfamiliarityResults(
        checks=checks, audio=tuple(sorted(audio, key=lambda row: row.code != "ravdess")),
        per_actor_max=float(ravdess["any_per_actor_max"]),
        per_speaker_min=float(ased["any_per_speaker_min"]) if "any_per_speaker_min" in ased else None,
        components=int(detector.components.shape[0]), functionals=detector.size,
        protocol=str(measured["protocol"]),
        command=producer(ordinary="speechocean" in measured.get("unfamiliar_voices", ["ased"])),
    )
