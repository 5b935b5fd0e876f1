"""``models/loco.json``: leave one corpus out, the answers on a corpus the model never heard.

Written only by ``python -m ser loco --data ../shared/data --out models/`` (:data:`LOCO_COMMAND`,
:mod:`ser.training.loco` has the protocol); read by the model card, the README and the Model page
through :func:`ser.reporting.results.load_loco`. :func:`score_set` turns answers into one row's figures.

Example
-------
>>> import numpy as np
>>> probabilities = np.eye(8)[[0, 1, 5]]                  # neutral, calm, fearful
>>> targets = np.zeros((3, 8), dtype=bool); targets[:, :2] = True   # "neutral or calm"
>>> scores = score_set(probabilities, targets=targets, labels=np.full(3, -1), speakers=np.array(["a", "a", "b"]),
...                    allowed=np.ones(8, dtype=bool), ordinary=True)
>>> round(scores.accuracy, 3), round(scores.neutral_or_calm_share, 3), round(scores.false_alarm_share, 3)
(0.667, 0.667, 0.333)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ser.reporting.metrics import calibration_error
from ser.reporting.profile_results import SpeakerSpread

LOCO_COMMAND = "python -m ser loco --data ../shared/data --out models/"
LOCO_FILE = "loco.json"
LOCO_SCHEMA = "loco/1"
#: Index order of every probability row (``ser.training.data.EMOTIONS``, repeated: reporting imports no training).
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
#: ASED's five emotions: the RAVDESS emotions "shared" with it, and ASED's own answer space.
FIVE = ("neutral", "happy", "sad", "angry", "fearful")
#: An ordinary voice answered with one of these is a false alarm the issue counts.
FALSE_ALARMS = ("angry", "fearful", "disgust")
ORDINARY = ("neutral", "calm")


@dataclasses.dataclass(frozen=True)
class SetScores:
    """One set of clips answered by one model.

    Attributes
    ----------
    clips, refused, speakers : int
        A refused clip (too little speech for the app) counts, and is never right.
    accuracy : float
        Share of clips whose answer (among ``answer_space``) is in the clip's target set.
    uar : float or None
        Mean recall over the emotions with single-labelled clips (None for partial labels only).
    recall, answer_share : dict
        Per emotion; shares are of the answered clips.
    spread : SpeakerSpread
        Accuracy per speaker.
    answer_space : list of str
        The emotions an answer could be.
    neutral_or_calm_share, false_alarm_share : float or None
        Ordinary voices only: answered neutral or calm; answered angry, fearful or disgust.
    ece : float or None
        Expected calibration error (15 bins) of the answered clips: the answer's probability among the
        answer space against whether it is in the clip's target set.
    """

    clips: int
    refused: int
    speakers: int
    accuracy: float
    uar: float | None
    recall: dict[str, float]
    answer_share: dict[str, float]
    spread: SpeakerSpread
    answer_space: list[str]
    neutral_or_calm_share: float | None = None
    false_alarm_share: float | None = None
    ece: float | None = None

    @property
    def largest_share(self) -> tuple[str, float]:
        """The answer given most often, and its share (a collapse onto one emotion shows here)."""
        emotion = max(self.answer_share, key=self.answer_share.__getitem__)
        return emotion, self.answer_share[emotion]


@dataclasses.dataclass(frozen=True)
class Target:
    """What the issue asks of a row: ``figure`` (a :class:`SetScores` field) at least or at most ``value``."""

    figure: str
    value: float
    at_least: bool

    def met(self, scores: SetScores) -> bool:
        """Whether ``scores`` reach it."""
        figure = getattr(scores, self.figure)
        return figure is not None and (figure >= self.value if self.at_least else figure <= self.value)

    def words(self) -> str:
        """E.g. ``>= 45%``."""
        return f"{'>=' if self.at_least else '<='} {100 * self.value:.0f}%"


@dataclasses.dataclass(frozen=True)
class LocoRow:
    """One left-out set answered by one model.

    Attributes
    ----------
    left_out : str
        The corpus no part of the model heard.
    answered_by : str
        ``recipe`` (the linear views trained on the other corpora), ``shipped`` (the bundle as
        ``ser predict`` answers), ``shipped_main`` or ``shipped_joint_views`` (one of its models alone).
    trained_on : list of str
    subset : str
        Which clips, in words (e.g. "5 emotions shared with ASED").
    length : str
        ``sentence`` (the whole clip) or ``word`` (a 0.5-1.2 s cut of it).
    scores : SetScores
    targets : list of Target
        What the issue asks of this set (none for most).
    """

    left_out: str
    answered_by: str
    trained_on: list[str]
    subset: str
    length: str
    scores: SetScores
    targets: list[Target]


@dataclasses.dataclass(frozen=True)
class CutSummary:
    """The word-length cuts: their length in seconds and how many the app refused."""

    minimum: float
    median: float
    maximum: float
    refused: int
    clips: int


@dataclasses.dataclass(frozen=True)
class LocoResults:
    """What ``python -m ser loco`` measured (:mod:`ser.training.loco` has the protocol)."""

    schema: str
    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    protocol: str
    recipe: str
    chosen: dict[str, dict[str, float]]
    cuts: CutSummary
    minutes: float
    rows: list[LocoRow]

    def word_of(self, row: LocoRow) -> SetScores | None:
        """The same clips' single-word answers by the same model (None when they were not scored)."""
        return next((other.scores for other in self.rows if other.length == "word"
                     and (other.left_out, other.answered_by, other.subset) == (row.left_out, row.answered_by,
                                                                               row.subset)), None)

    def find(self, *, left_out: str, answered_by: str, subset_prefix: str = "", length: str = "sentence") -> LocoRow:
        """The first row matching; :class:`KeyError` names what is missing."""
        for row in self.rows:
            if (row.left_out, row.answered_by, row.length) == (left_out, answered_by, length) and \
                    row.subset.startswith(subset_prefix):
                return row
        raise KeyError(f"no {answered_by} row for {left_out} ({subset_prefix!r}, {length}) in {LOCO_FILE}")


def score_set(probabilities: np.ndarray, *, targets: np.ndarray, labels: np.ndarray, speakers: np.ndarray,
              allowed: np.ndarray, ordinary: bool = False) -> SetScores:
    """Accuracy (answer in the clip's target set), per-class recall, answer shares, per-speaker spread.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n, len(EMOTIONS))
        A NaN row is a clip refused as no speech: counted, never right.
    targets : np.ndarray of bool, shape (n, len(EMOTIONS))
    labels : np.ndarray of int, shape (n,)
        Single labels (-1 for a partial label: no recall of its own).
    speakers : np.ndarray, shape (n,)
    allowed : np.ndarray of bool, shape (len(EMOTIONS),)
        The emotions an answer may be.
    ordinary : bool
        Ordinary voices: also report the neutral-or-calm and false-alarm shares.

    Raises
    ------
    ValueError
        If the shapes disagree or there are no clips.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    n = len(probabilities)
    if n == 0 or probabilities.shape != (n, len(EMOTIONS)) or targets.shape != probabilities.shape \
            or len(labels) != n or len(speakers) != n or np.shape(allowed) != (len(EMOTIONS),):
        raise ValueError(f"score_set needs (n, {len(EMOTIONS)}) probabilities and targets with n > 0 and n labels "
                         f"and speakers; got {probabilities.shape}, {targets.shape}, {len(labels)}, {len(speakers)}")
    answered = ~np.isnan(probabilities).any(axis=1)
    answers = np.where(allowed, np.nan_to_num(probabilities, nan=0.0), -1.0).argmax(axis=1)
    right = answered & targets[np.arange(n), answers]
    recall = {EMOTIONS[k]: float(right[labels == k].mean()) for k in range(len(EMOTIONS)) if (labels == k).any()}
    per_speaker = [float(right[speakers == who].mean()) for who in np.unique(speakers)]
    given = answers[answered]
    within = np.where(allowed, np.nan_to_num(probabilities, nan=0.0), 0.0)[answered]
    confidence = within.max(axis=1) / np.maximum(within.sum(axis=1), 1e-12)
    share = {emotion: float((given == k).mean()) if given.size else 0.0 for k, emotion in enumerate(EMOTIONS)}
    return SetScores(
        clips=n, refused=int((~answered).sum()), speakers=len(per_speaker), accuracy=float(right.mean()),
        uar=float(np.mean(list(recall.values()))) if recall else None, recall=recall, answer_share=share,
        spread=SpeakerSpread(minimum=float(np.min(per_speaker)), median=float(np.median(per_speaker)),
                             maximum=float(np.max(per_speaker))),
        answer_space=[EMOTIONS[k] for k in np.flatnonzero(allowed)],
        # Of every clip, refusals included: a refused ordinary voice was not answered neutral or calm.
        neutral_or_calm_share=float(sum(share[e] for e in ORDINARY) * answered.mean()) if ordinary else None,
        false_alarm_share=float(sum(share[e] for e in FALSE_ALARMS) * answered.mean()) if ordinary else None,
        ece=calibration_error(confidence, right[answered]) if given.size else None,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def loco_table(results: LocoResults) -> str:
    """The rows as a markdown table (card, docs), a set's whole sentences and single words side by side: the
    figure against its target, UAR, the answer given most often, the per-speaker spread (sentences)."""
    lines = ["| left out | answered by (trained on) | clips | **sentences** (target) | one word of each | UAR | ECE "
             "| answer given most often: sentences -> words | per speaker min / median / max |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in results.rows:
        if row.length != "sentence":
            continue
        scores = row.scores
        figure = _short_figure(scores)
        if row.targets:
            verdicts = ", ".join(f"{target.words()} {'met' if target.met(scores) else 'not met'}"
                                 for target in row.targets)
            figure = f"**{figure}** ({verdicts})"
        word = results.word_of(row)
        emotion, share = scores.largest_share
        shares = f"{emotion} {_pct(share)}" + (f" -> {word.largest_share[0]} {_pct(word.largest_share[1])}"
                                               if word is not None else "")
        spread = scores.spread
        lines.append(
            f"| {row.left_out} | {ANSWERED_BY.get(row.answered_by, row.answered_by)} ({' + '.join(row.trained_on)}) "
            f"| {row.subset}: {scores.clips} | {figure} | {_short_figure(word) if word is not None else '-'} "
            f"| {_pct(scores.uar)} | {'-' if scores.ece is None else f'{scores.ece:.3f}'} | {shares} "
            f"| {_pct(spread.minimum)} / {_pct(spread.median)} / {_pct(spread.maximum)} |"
        )
    return "\n".join(lines)


def _short_figure(scores: SetScores) -> str:
    if scores.neutral_or_calm_share is not None:
        return f"neutral or calm {_pct(scores.neutral_or_calm_share)}, false alarms {_pct(scores.false_alarm_share)}"
    return f"{_pct(scores.accuracy)}"


#: How each ``answered_by`` reads in sentences.
ANSWERED_BY = {"recipe": "the recipe's linear views", "shipped": "the shipped bundle, as `ser predict` answers",
               "shipped_main": "the shipped main model alone", "shipped_joint_views": "the shipped joint views alone"}


def _figure(scores: SetScores) -> str:
    if scores.neutral_or_calm_share is not None:
        return (f"{_pct(scores.neutral_or_calm_share)}% neutral or calm and {_pct(scores.false_alarm_share)}% "
                "angry, fearful or disgust")
    return f"{_pct(scores.accuracy)}% right (UAR {_pct(scores.uar)}%)"


def findings(results: LocoResults) -> list[str]:
    """Plain sentences for the card: each figure held to a target, then what a word-length cut does to it."""
    out = []
    for row in results.rows:
        if not row.targets or row.length != "sentence":
            continue
        verdicts = "; ".join(f"target {target.words()} {'met' if target.met(row.scores) else '**not met**'}"
                             for target in row.targets)
        emotion, share = row.scores.largest_share
        out.append(f"{row.left_out} left out, {ANSWERED_BY.get(row.answered_by, row.answered_by)} (trained on "
                   f"{' + '.join(row.trained_on)}), {row.subset}: {_figure(row.scores)} ({verdicts}); the answer "
                   f"given most often is {emotion} ({_pct(share)}%).")
    for row in results.rows:
        if row.length != "sentence" or not row.targets:
            continue
        word = results.word_of(row)
        if word is None:
            continue
        pulled = max(EMOTIONS, key=lambda e: word.answer_share[e] - row.scores.answer_share[e])
        before, after = row.scores.answer_share[pulled], word.answer_share[pulled]
        out.append(f"A single word of the same clips ({row.left_out}, "
                   f"{ANSWERED_BY.get(row.answered_by, row.answered_by)}): {_figure(word)}; answers pulled "
                   f"towards {pulled} ({_pct(before)}% -> {_pct(after)}% of answers).")
    return out
