"""The numbers of a run on several corpora: the headline (RAVDESS's protocol when RAVDESS is among
them) and each corpus's own scores, speaker by speaker.

``python -m ser train --data ../shared/data/ravdess --data ../shared/data/ased --out DIR`` calls
:func:`summarize_corpora` after :func:`ser.training.cross_validation.cross_validate`::

    summary, corpora = summarize_corpora(clips, run, n_folds=5)
    summary.accuracy                      # RAVDESS clips, 8 emotions (the headline)
    [(c.corpus, c.accuracy) for c in corpora.corpora]  # each within its own emotions
"""

from __future__ import annotations

import numpy as np

from ser.reporting.metrics import SpeakerScore, clip_set_scores
from ser.reporting.multi_corpus import CorporaSummary, CorpusFold, CorpusScores, SpeakerSpread
from ser.reporting.results import CrossValidationSummary
from ser.training.clips import ClipSet
from ser.training.corpora import PARTIAL_LABELS
from ser.training.cross_validation import CrossValidationRun
from ser.training.data import EMOTIONS
from ser.training.evaluate import summarize_cross_validation
from ser.training.target_sets import answered_right

#: The corpus whose protocol stays the headline when it is among the corpora (comparable with
#: a RAVDESS-only run: the same actors in the same folds, all eight emotions).
HEADLINE_CORPUS = "ravdess"


def corpora_protocol(names: list[str], *, n_folds: int, headline: str | None,
                     corpus_weights: dict[str, float] | None = None, cnn_corpora: tuple[str, ...] = (),
                     partial: dict[str, str] | None = None) -> str:
    """The protocol of a multi-corpus run, in words (``cross_validation.protocol``); ``corpus_weights``
    and ``cnn_corpora`` as :attr:`ser.training.settings.TrainSettings.corpus_weights` (others 1) and
    :attr:`~ser.training.settings.TrainSettings.cnn_corpora` (empty: every corpus); ``partial`` is
    ``corpus -> partial label`` for the corpora whose clips carry one (:func:`partial_labels`)."""
    weights = {name: (corpus_weights or {}).get(name, 1.0) for name in names}
    cnn_only = [name for name in names if name in cnn_corpora]
    learners = (
        "The CNN and the linear views learn" if not cnn_only or cnn_only == names else
        f"The CNN learns from {' and '.join(cnn_only)} clips only (training, early stopping on their validation "
        "speakers, refit) yet scores every clip in all eight emotions, the linear views from every corpus; "
        "every view learns"
    )
    shares = (
        "the corpora weigh the same" if len(set(weights.values())) == 1 else
        "the corpora weigh " + ", ".join(f"{name} {weight:g}" for name, weight in weights.items())
        + " in the emotion loss and in choosing the linear views' L2 strength"
    )
    said = (
        f"The headline is {headline.upper()}'s speech clips, 8 emotions (its actors fall in the same "
        "folds as in the RAVDESS-only protocol, so the figures compare)."
        if headline else
        "The headline pools every corpus's speech clips with a single label, each answered within its "
        "corpus's emotions."
    )
    for corpus, label in (partial or {}).items():
        targets = PARTIAL_LABELS[label].targets
        said += (
            f" {corpus}'s clips carry the partial label {label!r}: the loss rewards the summed probability of "
            f"{' and '.join(targets)} over all the emotions it speaks about (an emotion no single-labelled "
            "training clip has leaves the label), an answer of either counts right, and they are left out "
            "of the calibration and any pooled headline; their corpus's figures give the share answered "
            f"{' or '.join(targets)} and the share of false alarms ({', '.join(PARTIAL_LABELS[label].alarms)})."
        )
    return (
        f"Speech clips of {', '.join(names)}. {n_folds}-fold cross-validation grouped by speaker: each "
        "corpus's speakers are dealt into the folds on their own (male, female, then unknown gender), so a "
        "fold holds speakers of every corpus; in each fold the next fold's speakers are the validation set "
        "(early stopping, the linear views' L2 strength, calibration) and the rest (with RAVDESS's song "
        f"clips) the training set. {learners} with a masked loss: each clip's "
        "softmax is normalised over its own corpus's emotions, so an emotion a corpus lacks is never "
        f"taught as wrong; classes are balanced within each corpus and {shares}. The "
        "shipped model still answers in all eight emotions. Every clip is scored once, by the fold that "
        "never heard its speaker; a corpus's figures answer within its own emotions. " + said
    )


def headline_protocol(names: list[str], *, n_folds: int, headline: str | None) -> str:
    """One line for ``headline.protocol``."""
    where = f"{headline.upper()} speech, 8 emotions" if headline else "every corpus, each within its emotions"
    return f"{n_folds}-fold cross-validation grouped by speaker over {' + '.join(names)} (masked loss); {where}"


def partial_labels(clips: ClipSet) -> dict[str, str]:
    """``corpus -> partial label`` (:data:`ser.training.corpora.PARTIAL_LABELS`) for every corpus of
    ``clips`` with partially labelled clips, in the clips' corpus order.

    Raises
    ------
    ValueError
        When a corpus's partial target sets match no partial label, or several (report one per corpus).
    """
    found: dict[str, str] = {}
    partial = clips.emotion < 0
    for name in dict.fromkeys(clips.corpus[partial].tolist()):
        sets = np.unique(clips.targets()[partial & (clips.corpus == name)], axis=0)
        labels = [label for label, spec in PARTIAL_LABELS.items()
                  if len(sets) == 1 and np.array_equal(np.isin(EMOTIONS, spec.targets), sets[0])]
        if len(labels) != 1:
            raise ValueError(f"corpus {name!r} holds {len(sets)} kind(s) of partial label; its summary reports "
                             f"exactly one of {sorted(PARTIAL_LABELS)} per corpus")
        found[name] = labels[0]
    return found


def _partial_corpus_scores(clips: ClipSet, rows: np.ndarray, probabilities: np.ndarray, *, name: str,
                           emotions: list[str], speakers: np.ndarray, label: str) -> CorpusScores:
    """A corpus with partial labels: right when the answer is in the clip's target set; recall over its
    single-labelled clips only (none: ``{}``, UAR None), shares of its partially labelled clips' answers."""
    targets, labels = clips.targets()[rows], clips.emotion[rows]
    allowed = np.isin(EMOTIONS, emotions)
    own = answered_right(probabilities, targets=targets, allowed=allowed)
    app = answered_right(probabilities, targets=targets, allowed=None)

    def recall(right: np.ndarray) -> dict[str, float]:
        return {emotion: float(right[labels == k].mean()) for k, emotion in enumerate(EMOTIONS) if (labels == k).any()}

    partial = labels < 0
    answers = np.where(allowed, probabilities, -np.inf)[partial].argmax(axis=1)
    shares = np.bincount(answers, minlength=len(EMOTIONS)) / len(answers)
    spec = PARTIAL_LABELS[label]
    per_speaker = [SpeakerScore(speaker=str(who), n=int((speakers == who).sum()),
                                accuracy=float(own[speakers == who].mean())) for who in sorted(set(speakers.tolist()))]
    accuracies = np.array([row.accuracy for row in per_speaker])
    own_recall, app_recall = recall(own), recall(app)
    return CorpusScores(
        corpus=name, emotions=emotions, n_clips=len(rows), n_speakers=len(per_speaker),
        accuracy=float(own.mean()), uar=float(np.mean(list(own_recall.values()))) if own_recall else None,
        recall=own_recall, app_accuracy=float(app.mean()),
        app_uar=float(np.mean(list(app_recall.values()))) if app_recall else None,
        per_speaker=per_speaker,
        per_speaker_spread=SpeakerSpread(min=float(accuracies.min()), median=float(np.median(accuracies)),
                                         max=float(accuracies.max()), std=float(np.std(accuracies))),
        partial_label=label,
        target_share=float(shares[np.isin(EMOTIONS, spec.targets)].sum()),
        false_alarms=list(spec.alarms),
        false_alarm_share=float(shares[np.isin(EMOTIONS, spec.alarms)].sum()),
        answer_share={emotion: float(shares[k]) for k, emotion in enumerate(EMOTIONS) if emotion in emotions},
    )


def _corpus_scores(clips: ClipSet, positions: np.ndarray, probabilities: np.ndarray, name: str, *,
                   partial: dict[str, str]) -> CorpusScores:
    mine = clips.corpus[positions] == name
    emotions = [emotion for emotion, allowed in zip(EMOTIONS, clips.class_mask[positions][mine][0], strict=True)
                if allowed]
    speakers = np.array([clips.speakers[code - 1] for code in clips.actor[positions][mine]])
    if name in partial:
        return _partial_corpus_scores(clips, positions[mine], probabilities[mine], name=name, emotions=emotions,
                                      speakers=speakers, label=partial[name])
    truth = np.asarray(EMOTIONS)[clips.emotion[positions][mine]]
    shared = {"truth": truth, "speakers": speakers, "labels": EMOTIONS}
    own = clip_set_scores(probabilities[mine], answer_space=emotions, **shared)
    app = clip_set_scores(probabilities[mine], **shared)
    spread = own.speaker_accuracy
    return CorpusScores(
        corpus=name,
        emotions=emotions,
        n_clips=own.clips,
        n_speakers=own.speakers,
        accuracy=own.accuracy,
        uar=own.uar,
        recall=own.recall,
        app_accuracy=app.accuracy,
        app_uar=app.uar,
        per_speaker=list(own.per_speaker),
        per_speaker_spread=SpeakerSpread(min=spread.min, median=spread.median, max=spread.max,
                                         std=float(np.std([speaker.accuracy for speaker in own.per_speaker]))),
    )


def summarize_corpora(
    clips: ClipSet, run: CrossValidationRun, *, n_folds: int, corpus_weights: dict[str, float] | None = None,
    cnn_corpora: tuple[str, ...] = (),
) -> tuple[CrossValidationSummary, CorporaSummary]:
    """The headline summary and the per-corpus scores of a multi-corpus run (``clips.masked``).

    Returns
    -------
    summary : CrossValidationSummary
        :func:`ser.training.evaluate.summarize_cross_validation` over RAVDESS's test clips when
        RAVDESS is among the corpora, else over every single-labelled test clip (each within its
        corpus's emotions).
    corpora : CorporaSummary
        Each corpus's test clips pooled over the folds, within its own emotions and as the app
        answers, with every speaker's accuracy and their spread; a corpus of partial labels with the
        shares of its answers in the target set and among the false alarms (:class:`CorpusScores`).

    Raises
    ------
    ValueError
        When no tested clip has a single label (train with a corpus of single labels too).
    """
    if not clips.masked:
        raise ValueError("these clips are one RAVDESS folder's; summarize_cross_validation is their summary")
    names = list(dict.fromkeys(clips.corpus.tolist()))
    positions = np.concatenate([fold.test_positions for fold in run.folds])
    probabilities = np.concatenate([fold.test_probabilities["emotion"] for fold in run.folds])
    # RAVDESS's protocol is the headline when its clips were tested (a --folds run may hold none); a
    # pooled headline leaves partial labels out (no single emotion: their corpus's figures score them).
    headline = HEADLINE_CORPUS if np.any(clips.corpus[positions] == HEADLINE_CORPUS) else None
    scope = clips.emotion >= 0 if headline is None else clips.corpus == headline
    if not np.any(scope[positions]):
        raise ValueError("no tested clip has a single label to score the headline on; train with a corpus of "
                         "single labels beside the partially labelled ones (e.g. --data ravdess)")
    partial = partial_labels(clips)
    summary = summarize_cross_validation(
        clips, run, scope=scope, protocol=corpora_protocol(names, n_folds=n_folds, headline=headline,
                                                      corpus_weights=corpus_weights, cnn_corpora=cnn_corpora,
                                                      partial=partial)
    )
    tested = [name for name in names if np.any(clips.corpus[positions] == name)]

    def named(codes: tuple[int, ...]) -> list[str]:
        return sorted(clips.speakers[code - 1] for code in codes)

    return summary, CorporaSummary(
        protocol=summary.protocol,
        headline_corpus=headline,
        corpora=[_corpus_scores(clips, positions, probabilities, name, partial=partial) for name in tested],
        folds=[CorpusFold(fold=fold.fold, train=named(fold.train_actors), validation=named(fold.validation_actors),
                          test=named(fold.test_actors)) for fold in run.folds],
        speakers=list(clips.speakers),
    )
