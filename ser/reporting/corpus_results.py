"""The shipped model on a corpus it was never trained on: the typed result file and the pure summaries that fill it.

``models/corpus_check.json`` is written by ``python -m ser corpus-check --data ../shared/data``
(:class:`CorpusCheckResults`; read with :func:`ser.reporting.results.load_corpus_check`). Its
numbers come from per-clip probabilities through the functions here, which only count (each set of
clips through :func:`ser.reporting.metrics.clip_set_scores`): a refused clip (no speech) is a row of
NaN, counted apart and left out of every score.

Example
-------
>>> import numpy as np
>>> from ser.reporting.corpus_results import corpus_comparison
>>> probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [np.nan] * 3])
>>> both = corpus_comparison(probabilities, truth=np.array(["a", "b", "b"]), speakers=np.array(["s", "s", "t"]),
...                          labels=["a", "b", "c"], emotions=["a", "b"], threshold=0.6)
>>> both.app.accuracy, both.restricted.accuracy, both.restricted.answer_share
(0.5, 1.0, {'a': 0.5, 'b': 0.5})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

# ClipSetScores is the type of the clip-set fields of the results below.
from ser.reporting.metrics import ClipSetScores, clip_probabilities, clip_set_scores
from ser.serving.speaker import adaptation_from_scores


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The same clips as the app answers (every emotion it knows) and restricted to the corpus's emotions."""

    app: ClipSetScores
    restricted: ClipSetScores


@dataclasses.dataclass(frozen=True)
class CalibratedComparison:
    """Each speaker's clips with calibration to their reference clips, beside the same clips without it.

    Attributes
    ----------
    speakers : int
        Speakers compared (they have a reference and some other clip in the set).
    speakers_without_reference : int
        Speakers of the set left out: fewer than two neutral clips, or a reference refused as no speech.
    reference_clips : int
        Clips of the set that are a compared speaker's reference (never scored here; a speaker's
        reference may also lie outside the set, e.g. for the common sentences).
    references_lifted : int
        Compared speakers whose reference the model gave less than the neutral floor (calibration moved them).
    reference_neutral_median : float
        Median probability of neutral the model gave a compared speaker's reference before calibration.
    unadapted, adapted : Comparison
        The same clips without and with calibration.
    """

    speakers: int
    speakers_without_reference: int
    reference_clips: int
    references_lifted: int
    reference_neutral_median: float
    unadapted: Comparison
    adapted: Comparison


@dataclasses.dataclass(frozen=True)
class SyntheticCheck:
    """Flat synthetic English sentences (espeak-ng), meant as neutral, as the app answers them."""

    voices: list[str]
    sentences: int
    clips: int
    refused: int
    neutral_share: float
    sure_share: float
    answer_share: dict[str, float]


@dataclasses.dataclass(frozen=True)
class CorpusCheckResults:
    """``models/corpus_check.json``: the shipped model on every clip of a corpus it never heard.

    ``corpus`` and ``language`` name the corpus; ``labels`` are the app's emotions (probability order),
    ``emotions`` the corpus's;
    ``common_sentences`` are the clips whose words are spoken in every emotion; ``calibrated`` /
    ``calibrated_common`` compare, on those sets, each speaker's clips with and without calibration
    to their reference; ``synthetic`` is None where espeak-ng was not installed.
    """

    schema: str
    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    corpus: str
    language: str
    protocol: str
    labels: list[str]
    emotions: list[str]
    confidence_threshold: float
    clips: int
    speakers: int
    all_sentences: Comparison
    common_sentences: Comparison
    calibrated: CalibratedComparison
    calibrated_common: CalibratedComparison
    synthetic: SyntheticCheck | None


def corpus_comparison(probabilities: np.ndarray, *, truth: np.ndarray, speakers: np.ndarray, labels: Sequence[str],
                      emotions: Sequence[str], threshold: float) -> Comparison:
    """:func:`clip_set_scores` as the app answers (all ``labels``) and restricted to the corpus's ``emotions``."""
    return Comparison(
        app=clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=labels, answer_space=labels,
                            threshold=threshold),
        restricted=clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=labels,
                                   answer_space=emotions, threshold=threshold),
    )


def adapt_per_speaker(probabilities: np.ndarray, *, speakers: np.ndarray, reference: np.ndarray,
                      neutral: int) -> tuple[np.ndarray, dict[str, dict | None]]:
    """Each speaker's answers calibrated with the neutral floor from their own reference clips' answers.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_clips, n_emotions)
        Calibrated answers; NaN rows were refused.
    speakers : np.ndarray, shape (n_clips,)
    reference : np.ndarray of bool, shape (n_clips,)
        The reference clips (:func:`ser.training.corpora.reference_clips`).
    neutral : int
        Index of neutral.

    Returns
    -------
    adapted : np.ndarray, shape (n_clips, n_emotions)
        NaN for speakers without a reference clip, or with one refused.
    adaptations : dict
        ``speaker -> SpeakerAdaptation.to_dict()`` (None without a usable reference), as
        :func:`calibrated_comparison` reads them.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    speakers, reference = np.asarray(speakers), np.asarray(reference, dtype=bool)
    adapted = np.full_like(probabilities, np.nan)
    adaptations: dict[str, dict | None] = {}
    for speaker in np.unique(speakers):
        mine = speakers == speaker
        references = probabilities[mine & reference]
        if len(references) == 0 or np.isnan(references).any():
            adaptations[str(speaker)] = None
            continue
        adaptation = adaptation_from_scores(references, neutral=neutral)
        adaptations[str(speaker)] = adaptation.to_dict()
        adapted[mine] = adaptation.apply(probabilities[mine])
    return adapted, adaptations


def calibrated_comparison(probabilities: np.ndarray, adapted: np.ndarray, *, truth: np.ndarray, speakers: np.ndarray,
                          reference: np.ndarray, adaptations: Mapping[str, Mapping[str, float] | None],
                          labels: Sequence[str], emotions: Sequence[str], threshold: float) -> CalibratedComparison:
    """Clips of speakers with a calibration, reference clips left out, with and without it.

    Parameters
    ----------
    probabilities, adapted : np.ndarray, shape (n_clips, len(labels))
        Without and with the clip's speaker's calibration (NaN rows: refused, or no calibration).
    reference : np.ndarray of bool, shape (n_clips,)
        The reference clips (never scored).
    adaptations : mapping
        ``speaker -> SpeakerAdaptation.to_dict()`` (``bias``, ``reference_neutral``, ...) or None
        when the speaker has no usable reference; speakers absent from it have none either.
    """
    probabilities = clip_probabilities(probabilities, labels=labels, per_clip=(truth, speakers, reference))
    if np.shape(adapted) != probabilities.shape:
        raise ValueError("adapted must have the shape of probabilities")
    speakers, reference = np.asarray(speakers), np.asarray(reference, dtype=bool)
    calibrated = {speaker for speaker, adaptation in adaptations.items() if adaptation is not None}
    scored = np.isin(speakers, list(calibrated)) & ~reference
    compared = sorted(set(speakers[scored].tolist()))
    if not compared:
        raise ValueError("no speaker of the set has a calibration and another clip to score")
    shared = {"truth": truth[scored], "speakers": speakers[scored], "labels": labels, "emotions": emotions,
              "threshold": threshold}
    return CalibratedComparison(
        speakers=len(compared),
        speakers_without_reference=len(set(speakers.tolist()) - calibrated),
        reference_clips=int((reference & np.isin(speakers, compared)).sum()),
        references_lifted=sum(adaptations[speaker]["bias"] > 0 for speaker in compared),
        reference_neutral_median=float(np.median([adaptations[speaker]["reference_neutral"] for speaker in compared])),
        unadapted=corpus_comparison(probabilities[scored], **shared),
        adapted=corpus_comparison(np.asarray(adapted, dtype=np.float64)[scored], **shared),
    )


def synthetic_check(probabilities: np.ndarray, *, labels: Sequence[str], threshold: float, voices: list[str],
                    sentences: int) -> SyntheticCheck:
    """Neutral synthetic sentences: share called neutral and share the model is sure of, over the answered ones.

    ``probabilities`` has shape (n_clips, len(labels)), NaN rows refused.
    """
    probabilities = clip_probabilities(probabilities, labels=labels)
    answered = probabilities[~np.isnan(probabilities).any(axis=1)]
    if not len(answered):
        raise ValueError("no synthetic sentence was answered")
    answers = answered.argmax(axis=1)
    shares = np.bincount(answers, minlength=len(labels)) / len(answers)
    return SyntheticCheck(
        voices=list(voices), sentences=sentences, clips=len(probabilities), refused=len(probabilities) - len(answered),
        neutral_share=float(shares[list(labels).index("neutral")]),
        sure_share=float((answered.max(axis=1) >= threshold).mean()),
        answer_share={name: float(share) for name, share in zip(labels, shares, strict=True)},
    )
