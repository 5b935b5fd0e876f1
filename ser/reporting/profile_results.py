"""``models/voice_profile.json``: what a personal voice profile does for speakers the model never heard.

Written only by ``python -m ser profile-check --data ../shared/data`` (:data:`PROFILE_COMMAND`);
read by the model card, the README and the Model page through :func:`ser.reporting.results.load_profile`.
"""

from __future__ import annotations

import dataclasses

PROFILE_COMMAND = "python -m ser profile-check --data ../shared/data --out models/"
PROFILE_FILE = "voice_profile.json"
PROFILE_SCHEMA = "voice-profile/1"


@dataclasses.dataclass(frozen=True)
class SpeakerSpread:
    """Accuracy per speaker: the lowest, the median and the highest."""

    minimum: float
    median: float
    maximum: float


@dataclasses.dataclass(frozen=True)
class ProfileRow:
    """One protocol: the same clips answered without a profile (generic) and with the speaker's own.

    Attributes
    ----------
    corpus : str
    scored : str
        Which clips were scored and which the profile was built from.
    enrolled : str
        Which emotions the profile holds.
    k : int
        Enrolment clips per emotion (fewer where a speaker has fewer).
    speakers, clips : int
        Scored.
    generic_accuracy, generic_uar, profile_accuracy, profile_uar : float
        Among the corpus's emotions.
    generic_spread, profile_spread : SpeakerSpread
        Accuracy per speaker.
    """

    corpus: str
    scored: str
    enrolled: str
    k: int
    speakers: int
    clips: int
    generic_accuracy: float
    generic_uar: float
    profile_accuracy: float
    profile_uar: float
    generic_spread: SpeakerSpread
    profile_spread: SpeakerSpread

    @classmethod
    def from_result(cls, *, corpus: str, scored: str, enrolled: str, k: int, result: dict) -> ProfileRow:
        """From :func:`ser.training.voice_profile.evaluate`'s ``{"generic": (acc, uar, spread), ...}``."""
        generic, profile = result["generic"], result["profile"]
        return cls(corpus=corpus, scored=scored, enrolled=enrolled, k=k, speakers=int(result["speakers"]),
                   clips=int(result["clips"]), generic_accuracy=generic[0], generic_uar=generic[1],
                   profile_accuracy=profile[0], profile_uar=profile[1], generic_spread=generic[2],
                   profile_spread=profile[2])


@dataclasses.dataclass(frozen=True)
class ProfileResults:
    """What ``python -m ser profile-check`` measured (its module docstring has the protocol)."""

    schema: str
    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    protocol: str
    prior_strength: float
    chosen_on_all_actors: float
    chosen_per_fold: dict[str, float]
    minutes: float
    rows: list[ProfileRow]

    def row(self, *, corpus: str, k: int, enrolled_prefix: str = "", scored_prefix: str = "") -> ProfileRow:
        """The row of ``corpus`` with ``k`` clips per emotion (first whose labels start with the prefixes)."""
        for row in self.rows:
            if (row.corpus == corpus and row.k == k and row.enrolled.startswith(enrolled_prefix)
                    and row.scored.startswith(scored_prefix)):
                return row
        raise KeyError(f"no {corpus} row with K={k} in {PROFILE_FILE}")

