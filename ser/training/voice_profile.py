"""How much a personal voice profile helps, on speakers the generic model never heard.

Every clip is scored once by a model that never heard its speaker
(:mod:`ser.training.voice_profile_scores`: RAVDESS by the fold members of the headline's folds, ASED by
the RAVDESS-only main model). Then, per speaker, a profile is built from K enrolment clips per emotion
(:func:`ser.serving.profile.build_profile`, as ``python -m ser profile`` builds one, except that the
neutral floor comes from the neutral clips' answers here, not from their audio trimmed and cut as
``--reference`` cuts it) and the speaker's other clips are answered with it (``VoiceProfile.apply``), beside
the same clips without a profile:

- **RAVDESS** (20 actors, 8 emotions): enrol on statement 1 ("Kids are talking by the door"), score
  every clip of statement 2 ("Dogs are sitting by the door"), so the words cannot help. K clips per
  emotion in a fixed order (normal intensity before strong, repetition 1 before 2); neutral has
  only two clips of a statement, so it gets min(K, 2). Enrolled: every emotion, and the app's four
  (neutral, angry, happy, sad).
- **ASED** (65 speakers, 5 emotions; accuracy among its 5; speakers without a neutral take of common
  sentence 01 are left out): enrol on common sentence 01 (K <= 2: two
  repetitions), score common sentence 02 (the words cannot help), and separately every other clip of
  the speaker (all sentences: the emotion-specific sentences' words can help the generic model too).

The profile's one free number, the prior strength (:data:`ser.serving.profile.PRIOR_STRENGTH`), is
chosen by nested cross-validation on RAVDESS: each fold's actors are scored with the strength that did
best (K = 2, every emotion) on the other folds' actors; the shipped one is the best on all 20, and
ASED is never used to choose (it is scored with the shipped strength). ``python -m ser profile-check``
(:mod:`ser.profile_check_cli`) writes ``models/voice_profile.json``
(:class:`ser.reporting.profile_results.ProfileResults`, one writer; the Model page, the card and the
README show it). About 6 minutes here the first time, seconds after::

    python -m ser profile-check --data ../shared/data --out models/
"""

from __future__ import annotations

import numpy as np

from ser.reporting.profile_results import ProfileRow, SpeakerSpread
from ser.serving import profile as profiles
from ser.serving.profile import Enrolment, build_profile

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
APP_FOUR = ("neutral", "angry", "happy", "sad")
ASED_EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful")
STRENGTHS = (10.0, 30.0, 100.0, 300.0, 1000.0)
#: The protocol recorded in ``voice_profile.json`` (the second paragraph above).
PROTOCOL = (
    'Every clip is scored once by a model that never heard its speaker '
    "(:mod:`ser.training.voice_profile_scores`: RAVDESS by the fold members of the headline's folds, ASED"
    ' by the RAVDESS-only main model). Then, per speaker, a profile is built from K enrolment clips per '
    'emotion (:func:`ser.serving.profile.build_profile`, as ``python -m ser profile`` builds one, except '
    "that the neutral floor comes from the neutral clips' answers here, not from their audio trimmed and "
    "cut as ``--reference`` cuts it) and the speaker's other clips are answered with it "
    '(``VoiceProfile.apply``), beside the same clips without a profile:'
)


def _order(arrays: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Enrolment order of ``rows``: normal intensity first, then repetition."""
    strong = arrays["intensity"][rows] == "strong"
    return rows[np.lexsort((arrays["repetition"][rows], strong))]


def _speaker_split(arrays, speaker: str, *, corpus: str, k: int, enrolled: tuple[str, ...], scored: str):
    """(enrolment rows, scored rows) of one speaker; rows refused as no speech are left out."""
    valid = ~np.isnan(arrays["probabilities"][:, 0]) & (arrays["speaker"] == speaker)
    enrol_sentence = 1
    enrol = []
    for emotion in enrolled:
        rows = np.flatnonzero(valid & (arrays["emotion"] == emotion) & (arrays["sentence"] == enrol_sentence)
                              & (arrays["common"] if corpus == "ased" else True))
        enrol.extend(_order(arrays, rows)[:k])
    enrol = np.array(sorted(enrol), dtype=np.int64)
    if corpus == "ravdess" or scored == "common sentence 02":
        others = valid & (arrays["sentence"] == 2) & (arrays["common"] if corpus == "ased" else True)
    else:  # every other clip of the speaker
        others = valid.copy()
        others[enrol] = False
    return enrol, np.flatnonzero(others)


def _answers(arrays, enrol: np.ndarray, scored: np.ndarray, *, strength: float) -> np.ndarray:
    enrolments = [Enrolment(emotion=str(arrays["emotion"][row]), probabilities=arrays["probabilities"][row],
                            features=arrays["features"][row], seconds=0.0, name=str(row)) for row in enrol]
    profile = build_profile(enrolments, emotions=EMOTIONS, bundle_version="study", strength=strength)
    return profile.apply(arrays["probabilities"][scored], features=arrays["features"][scored])


def _score(truth: np.ndarray, probabilities: np.ndarray, *, among: tuple[str, ...]) -> tuple[float, float, np.ndarray]:
    """(accuracy, UAR, per-clip hits) among ``among`` (the other emotions' probabilities set aside)."""
    columns = [EMOTIONS.index(emotion) for emotion in among]
    guesses = np.array(among)[np.argmax(probabilities[:, columns], axis=1)]
    hits = guesses == truth
    uar = float(np.mean([hits[truth == emotion].mean() for emotion in among if np.any(truth == emotion)]))
    return float(hits.mean()), uar, hits


def evaluate(arrays, *, corpus: str, k: int, enrolled: tuple[str, ...], scored: str, among: tuple[str, ...],
             strength_of) -> dict:
    """Every speaker's clips with and without their profile: accuracy, UAR and per-speaker spread."""
    truth, generic, personal, speakers = [], [], [], []
    for speaker in np.unique(arrays["speaker"]):
        enrol, rows = _speaker_split(arrays, speaker, corpus=corpus, k=k, enrolled=enrolled, scored=scored)
        if not np.any(arrays["emotion"][enrol] == "neutral") or not len(rows):
            continue
        truth.append(arrays["emotion"][rows])
        generic.append(arrays["probabilities"][rows])
        personal.append(_answers(arrays, enrol, rows, strength=strength_of(speaker)))
        speakers.append(np.full(len(rows), speaker))
    truth, generic, personal, speakers = (np.concatenate(parts) for parts in (truth, generic, personal, speakers))
    result = {"clips": len(truth), "speakers": len(np.unique(speakers))}
    for name, answers in (("generic", generic), ("profile", personal)):
        accuracy, uar, hits = _score(truth, answers, among=among)
        per_speaker = [hits[speakers == speaker].mean() for speaker in np.unique(speakers)]
        result[name] = (accuracy, uar, SpeakerSpread(minimum=float(np.min(per_speaker)),
                                                      median=float(np.median(per_speaker)),
                                                      maximum=float(np.max(per_speaker))))
    return result


def choose(arrays, *, speakers: set[str]) -> float:
    """The prior strength with the best accuracy on these RAVDESS actors (K = 2, every emotion)."""
    keep = np.isin(arrays["speaker"], sorted(speakers))
    subset = {key: value[keep] for key, value in arrays.items()}
    accuracies = [evaluate(subset, corpus="ravdess", k=2, enrolled=EMOTIONS, scored="statement 2", among=EMOTIONS,
                           strength_of=lambda speaker, s=strength: s)["profile"][0] for strength in STRENGTHS]
    return STRENGTHS[int(np.argmax(accuracies))]


def standardised(arrays: dict[str, np.ndarray], statistics_of) -> dict[str, np.ndarray]:
    """``arrays`` with ``features``: each clip's functionals standardised by the model that scored it."""
    features = np.zeros(arrays["functionals"].shape, dtype=np.float32)
    for speaker in np.unique(arrays["speaker"]):
        mine = arrays["speaker"] == speaker
        features[mine] = statistics_of(speaker).standardize(arrays["functionals"][mine])
    return {**arrays, "features": np.nan_to_num(features)}



def profile_rows(scores: dict[str, dict[str, np.ndarray]], *, folds: list, statistics: dict, main_statistics,
                 log) -> tuple[list[ProfileRow], dict[int, float], float]:
    """Every protocol's row, with and without a profile, the strengths chosen per fold and on all actors.

    Parameters
    ----------
    scores : dict
        :func:`ser.training.voice_profile_scores.collect`'s arrays of ``ravdess`` and ``ased``.
    folds : list of FoldScore
        ``metrics.json``'s folds: each RAVDESS actor's fold.
    statistics : dict
        ``{fold: FunctionalStatistics}`` of each fold's model (standardises that fold's test actors).
    main_statistics : FunctionalStatistics
        The main model's (standardises ASED).
    log : callable
        Progress messages.

    Returns
    -------
    tuple
        ``(rows, {fold: strength chosen on the other folds}, strength chosen on all 20 actors)``.
    """
    fold_of = {f"ravdess-{actor:02d}": split.fold for split in folds for actor in split.test}
    ravdess = standardised(scores["ravdess"], lambda speaker: statistics[fold_of[speaker]])
    ased = standardised(scores["ased"], lambda speaker: main_statistics)
    nested = {}
    for split in folds:
        others = {speaker for speaker, fold in fold_of.items() if fold != split.fold}
        nested[split.fold] = choose(ravdess, speakers=others)
        log(f"fold {split.fold}: prior strength chosen on the other folds' actors: {nested[split.fold]}")
    shipped = choose(ravdess, speakers=set(fold_of))
    log(f"on all 20 actors: {shipped} (shipped: {profiles.PRIOR_STRENGTH})")
    rows = []
    for k in (1, 2, 4):
        for enrolled, label in ((EMOTIONS, "every emotion"), (APP_FOUR, "neutral, angry, happy, sad")):
            result = evaluate(ravdess, corpus="ravdess", k=k, enrolled=enrolled, scored="statement 2",
                              among=EMOTIONS, strength_of=lambda speaker: nested[fold_of[speaker]])
            rows.append(ProfileRow.from_result(corpus="RAVDESS", scored="statement 2 (enrolled on statement 1)",
                                               enrolled=label, k=k, result=result))
    for k in (1, 2):
        for scored in ("common sentence 02", "all other sentences"):
            result = evaluate(ased, corpus="ased", k=k, enrolled=ASED_EMOTIONS, scored=scored, among=ASED_EMOTIONS,
                              strength_of=lambda speaker: profiles.PRIOR_STRENGTH)
            rows.append(ProfileRow.from_result(corpus="ASED", scored=f"{scored} (enrolled on common sentence 01)",
                                               enrolled="its 5 emotions", k=k, result=result))
    return rows, nested, shipped
