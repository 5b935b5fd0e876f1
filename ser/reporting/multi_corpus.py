"""Per-corpus scores of a run trained on several corpora (``corpora`` in ``models/metrics.json``).

``python -m ser train --data A --data B ...`` (or one manifest, or one ASED folder) writes them
beside the headline; a run on one RAVDESS folder leaves ``corpora`` out (None), so a
``metrics.json`` written before this section existed still loads.

Every figure is on speakers the fold never heard. A corpus is scored within its own emotions
(the answer is the most probable of the emotions the corpus has, so an emotion it lacks is
never counted as a wrong answer), and also as the app answers (all eight).

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
    ``app_accuracy`` / ``app_uar`` answer in all eight emotions, as the app does.
    """

    corpus: str
    emotions: list[str]
    n_clips: int
    n_speakers: int
    accuracy: float
    uar: float
    recall: dict[str, float]
    app_accuracy: float
    app_uar: float
    per_speaker: list[SpeakerScore]
    per_speaker_spread: SpeakerSpread


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
