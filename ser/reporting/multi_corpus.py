"""Per-corpus scores of a run trained on several corpora (``corpora`` in ``models/metrics.json``).

``python -m ser train --data A --data B ...`` (or one manifest, or one ASED folder) writes them
beside the headline; a run on one RAVDESS folder leaves ``corpora`` out (None), so a
``metrics.json`` written before this section existed still loads.

Every figure is on speakers the fold never heard. A corpus is scored within its own emotions
(the answer is the most probable of the emotions the corpus has, so an emotion it lacks is
never counted as a wrong answer), and also as the app answers (all eight). A clip with a partial
label (speechocean's ordinary voices: "neutral or calm") is right when the answer is in its target
set; such a corpus also reports how often it was called neutral or calm and how often angry,
fearful or disgust (false alarms), and no recall (it has no single labels to recall).

Example
-------
>>> from ser.reporting.results import load_training
>>> results = load_training("models/metrics.json")  # doctest: +SKIP
>>> results.corpora is None  # the shipped model was trained on RAVDESS alone  # doctest: +SKIP
True
"""

from __future__ import annotations

import dataclasses

# A test speaker (``<corpus>-<id>``): clips and accuracy within their corpus's emotions.
from ser.reporting.metrics import SpeakerScore


@dataclasses.dataclass(frozen=True)
class SpeakerSpread:
    """Lowest, median, highest and standard deviation of the per-speaker accuracies (this file's
    spread; ``corpus_check.json``'s is :class:`ser.reporting.metrics.SpeakerSpread`)."""

    min: float
    median: float
    max: float
    std: float


@dataclasses.dataclass(frozen=True)
class CorpusScores:
    """One corpus's test clips, pooled over the folds.

    ``accuracy``, ``uar`` and ``recall`` answer within ``emotions`` (the corpus's own);
    ``app_accuracy`` / ``app_uar`` answer in all eight emotions, as the app does. An answer is right
    when it is in the clip's target set (its emotion, or any of its partial label's). ``recall`` and
    the UARs count single-labelled clips only: a corpus of partial labels has ``recall == {}`` and
    ``uar``/``app_uar`` None.

    The fields from ``partial_label`` on are set for a corpus whose clips carry a partial label
    (None otherwise, and absent from files written before they existed): the label, the share of
    those clips answered within its target set (``target_share``), the share answered one of
    ``false_alarms`` (``false_alarm_share``), and every emotion's share of their answers, all
    answered within ``emotions``.
    """

    corpus: str
    emotions: list[str]
    n_clips: int
    n_speakers: int
    accuracy: float
    uar: float | None
    recall: dict[str, float]
    app_accuracy: float
    app_uar: float | None
    per_speaker: list[SpeakerScore]
    per_speaker_spread: SpeakerSpread
    partial_label: str | None = None
    target_share: float | None = None
    false_alarms: list[str] | None = None
    false_alarm_share: float | None = None
    answer_share: dict[str, float] | None = None


@dataclasses.dataclass(frozen=True)
class CorpusFold:
    """The speakers of one fold by name (``cross_validation.per_fold`` holds their numeric codes)."""

    fold: int
    train: list[str]
    validation: list[str]
    test: list[str]


@dataclasses.dataclass(frozen=True)
class CorporaSummary:
    """Scores per corpus of a multi-corpus run, and what the headline is.

    ``headline_corpus`` is ``"ravdess"`` when RAVDESS is among the corpora (the headline is then
    the RAVDESS protocol: its clips, 8 emotions, the same actor folds), None when the headline
    pools every corpus's clips, each answered within its corpus's emotions.
    ``speakers[code - 1]`` is the speaker a numeric code of ``cross_validation`` stands for.
    """

    protocol: str
    headline_corpus: str | None
    corpora: list[CorpusScores]
    folds: list[CorpusFold]
    speakers: list[str]
