"""The shipped model on a corpus it was never trained on: the typed result file and the pure summaries that fill it.

``models/corpus_check.json`` is written by ``python -m experiments.corpus_check --data ../shared/data``
(:class:`CorpusCheckResults`; read with :func:`ser.reporting.results.load_corpus_check`). Its
numbers come from per-clip probabilities through the functions here, which only count: a refused
clip (no speech) is a row of NaN, counted apart and left out of every score.

Example
-------
>>> import numpy as np
>>> from ser.reporting.corpus_results import clip_set_scores
>>> probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [np.nan] * 3])
>>> scores = clip_set_scores(probabilities, truth=np.array(["a", "b", "b"]), speakers=np.array(["s", "s", "t"]),
...                          labels=["a", "b", "c"], answer_space=["a", "b"], threshold=0.6)
>>> scores.answered, scores.refused, scores.accuracy, scores.answer_share
(2, 1, 1.0, {'a': 0.5, 'b': 0.5})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from ser.reporting.metrics import expected_calibration_error


@dataclasses.dataclass(frozen=True)
class SpeakerSpread:
    """Lowest, median and highest accuracy of a speaker (over speakers with an answered clip), and the
    fewest answered clips a speaker has (a speaker of a few clips can only score coarsely)."""

    min: float
    median: float
    max: float
    fewest_clips: int


@dataclasses.dataclass(frozen=True)
class ClipSetScores:
    """One set of clips, answered within ``answer_space``; fractions in [0, 1], over the answered clips.

    Attributes
    ----------
    answer_space : list of str
        The emotions an answer could be (the probabilities of these, renormalised).
    clips, answered, refused : int
        Clips in the set; scored; refused as "no speech" (``clips = answered + refused``).
    speakers : int
    accuracy, uar : float
        UAR: the recall of every emotion the clips have, averaged.
    support : dict
        ``emotion -> answered clips`` of every emotion the clips have.
    recall : dict
        ``emotion -> recall`` for every emotion the clips have.
    answer_share : dict
        ``emotion -> share of the answers`` for every emotion of ``answer_space`` (a collapse shows).
    speaker_accuracy : SpeakerSpread
    ece_15_bins : float
        Expected calibration error of the top answer, 15 equal-width bins.
    sure_share : float
        Share of answers whose top probability is at or above the bundle's threshold ("sure").
    wrong_when_sure : float or None
        Share of those sure answers that are wrong (None when none is sure).
    """

    answer_space: list[str]
    clips: int
    answered: int
    refused: int
    speakers: int
    accuracy: float
    uar: float
    support: dict[str, int]
    recall: dict[str, float]
    answer_share: dict[str, float]
    speaker_accuracy: SpeakerSpread
    ece_15_bins: float
    sure_share: float
    wrong_when_sure: float | None


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


def _check(probabilities: np.ndarray, labels: Sequence[str], *others: np.ndarray) -> np.ndarray:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities must be (n_clips, {len(labels)}) in label order, got {probabilities.shape}")
    if any(np.shape(other) != probabilities.shape[:1] for other in others):
        raise ValueError(f"truth and speakers must have one entry per clip ({len(probabilities)})")
    return probabilities


def restrict(probabilities: np.ndarray, *, labels: Sequence[str], answer_space: Sequence[str]) -> np.ndarray:
    """The probabilities of ``answer_space`` renormalised (others 0); shape (n_clips, len(labels)) kept."""
    unknown = sorted(set(answer_space) - set(labels))
    if unknown or not answer_space:
        raise ValueError(f"answer_space must be some of the labels {list(labels)}; unknown: {unknown}")
    kept = np.where(np.isin(list(labels), list(answer_space)), _check(probabilities, labels), 0.0)
    total = kept.sum(axis=1, keepdims=True)
    return np.divide(kept, total, out=np.full_like(kept, np.nan), where=total > 0)


def clip_set_scores(probabilities: np.ndarray, *, truth: np.ndarray, speakers: np.ndarray, labels: Sequence[str],
                    answer_space: Sequence[str], threshold: float) -> ClipSetScores:
    """Score one set of clips answered within ``answer_space``.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_clips, len(labels))
        Calibrated probabilities in ``labels`` order; a row of NaN is a clip refused as no speech.
    truth : np.ndarray of str, shape (n_clips,)
        Each clip's emotion (one of ``labels``).
    speakers : np.ndarray, shape (n_clips,)
    labels : sequence of str
    answer_space : sequence of str
        The emotions an answer may be: all ``labels`` as the app answers, or the corpus's emotions.
    threshold : float
        The bundle's confidence threshold: at or above it the app calls itself sure.

    Raises
    ------
    ValueError
        On mismatched shapes, an unknown emotion, or no answered clip.
    """
    probabilities = restrict(_check(probabilities, labels, truth, speakers), labels=labels, answer_space=answer_space)
    answered = ~np.isnan(probabilities).any(axis=1)
    if not answered.any():
        raise ValueError("no clip of the set was answered; nothing to score")
    unknown = sorted(set(truth.tolist()) - set(labels))
    if unknown:
        raise ValueError(f"truth holds emotions the model does not know: {unknown}")
    scored, who = probabilities[answered], np.asarray(speakers)[answered]
    true_index = np.array([list(labels).index(name) for name in np.asarray(truth)[answered]])
    answers = scored.argmax(axis=1)
    right = answers == true_index
    present = [name for name in labels if name in set(np.asarray(truth)[answered].tolist())]
    support = {name: int((true_index == list(labels).index(name)).sum()) for name in present}
    recall = {name: float(right[true_index == list(labels).index(name)].mean()) for name in present}
    shares = np.bincount(answers, minlength=len(labels)) / len(answers)
    voices = sorted(set(who.tolist()))
    per_speaker = np.array([right[who == speaker].mean() for speaker in voices])
    sure = scored.max(axis=1) >= threshold
    return ClipSetScores(
        answer_space=list(answer_space),
        clips=len(probabilities),
        answered=int(answered.sum()),
        refused=int((~answered).sum()),
        speakers=len(set(np.asarray(speakers).tolist())),
        accuracy=float(right.mean()),
        uar=float(np.mean(list(recall.values()))),
        support=support,
        recall=recall,
        answer_share={name: float(shares[index]) for index, name in enumerate(labels) if name in answer_space},
        speaker_accuracy=SpeakerSpread(min=float(per_speaker.min()), median=float(np.median(per_speaker)),
                                       max=float(per_speaker.max()),
                                       fewest_clips=min(int((who == speaker).sum()) for speaker in voices)),
        ece_15_bins=expected_calibration_error(scored, true_index, bins=15),
        sure_share=float(sure.mean()),
        wrong_when_sure=float((~right[sure]).mean()) if sure.any() else None,
    )


def corpus_comparison(probabilities: np.ndarray, *, truth: np.ndarray, speakers: np.ndarray, labels: Sequence[str],
                      emotions: Sequence[str], threshold: float) -> Comparison:
    """:func:`clip_set_scores` as the app answers (all ``labels``) and restricted to the corpus's ``emotions``."""
    return Comparison(
        app=clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=labels, answer_space=labels,
                            threshold=threshold),
        restricted=clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=labels,
                                   answer_space=emotions, threshold=threshold),
    )


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
    probabilities = _check(probabilities, labels, truth, speakers, reference)
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
    probabilities = _check(probabilities, labels)
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
