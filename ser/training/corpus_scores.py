"""Scores of one protocol on one test set: accuracy, UAR, recall per emotion, the share of
each answer and the accuracy of every speaker, in the answer space the protocol names.

Example
-------
>>> import numpy as np
>>> from ser.training.corpus_scores import score
>>> probabilities = np.eye(8)[[0, 2, 2, 3]]
>>> result = score(probabilities, np.array([0, 2, 3, 3]), speakers=np.array(["a", "a", "b", "b"]),
...                answer_space=("neutral", "happy", "sad"))
>>> result.accuracy, result.recall["sad"], result.answer_share["happy"]
(0.75, 0.5, 0.5)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ser.training.data import EMOTIONS


@dataclasses.dataclass(frozen=True)
class Scores:
    """How one model did on one set of clips (all fractions in 0..1).

    Attributes
    ----------
    answer_space : tuple of str
        The emotions an answer could be (argmax over only these).
    n_clips, n_speakers : int
    accuracy : float
    uar : float
        Unweighted average recall over the emotions the clips have.
    recall : dict
        ``emotion -> recall`` for every emotion the clips have.
    answer_share : dict
        ``emotion -> share of all answers`` for every emotion of ``answer_space``.
    speaker_accuracy : dict
        ``speaker -> accuracy`` on that speaker's clips.
    """

    answer_space: tuple[str, ...]
    n_clips: int
    n_speakers: int
    accuracy: float
    uar: float
    recall: dict[str, float]
    answer_share: dict[str, float]
    speaker_accuracy: dict[str, float]

    def speaker_spread(self) -> tuple[float, float, float]:
        """Lowest, median and highest per-speaker accuracy."""
        values = np.array(list(self.speaker_accuracy.values()))
        return float(values.min()), float(np.median(values)), float(values.max())

    def to_dict(self) -> dict:
        low, median, high = self.speaker_spread()
        return {**dataclasses.asdict(self), "speaker_spread": {"min": low, "median": median, "max": high}}


def score(
    probabilities: np.ndarray,
    labels: np.ndarray,
    *,
    speakers: np.ndarray,
    answer_space: tuple[str, ...] = EMOTIONS,
) -> Scores:
    """Score probabilities against labels, answering only within ``answer_space``.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n, len(EMOTIONS))
    labels : np.ndarray of int, shape (n,)
        Indices into :data:`EMOTIONS`.
    speakers : np.ndarray, shape (n,)
    answer_space : tuple of str
        E.g. the test corpus's emotions ("restricted to the corpus's emotions") or all eight
        ("as the app answers").
    """
    if probabilities.shape != (len(labels), len(EMOTIONS)) or speakers.shape != labels.shape:
        raise ValueError(
            f"probabilities must be (n, {len(EMOTIONS)}) with n labels and speakers; got "
            f"{probabilities.shape}, {labels.shape}, {speakers.shape}"
        )
    if not len(labels):
        raise ValueError("no clips to score")
    allowed = np.isin(EMOTIONS, answer_space)
    answers = np.where(allowed, probabilities, -np.inf).argmax(axis=1)
    correct = answers == labels
    present = sorted(set(labels.tolist()))
    recall = {EMOTIONS[label]: float(correct[labels == label].mean()) for label in present}
    shares = np.bincount(answers, minlength=len(EMOTIONS)) / len(answers)
    return Scores(
        answer_space=tuple(answer_space),
        n_clips=len(labels),
        n_speakers=len(set(speakers.tolist())),
        accuracy=float(correct.mean()),
        uar=float(np.mean(list(recall.values()))),
        recall=recall,
        answer_share={EMOTIONS[i]: float(shares[i]) for i in np.flatnonzero(allowed)},
        speaker_accuracy={str(s): float(correct[speakers == s].mean()) for s in sorted(set(speakers.tolist()))},
    )
