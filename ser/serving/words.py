"""Answers in the words a person reads: the app's views, the batch table on screen and the report.

The downloads keep their machine-readable schema (:meth:`ser.serving.analysis.Analysis.to_dict`,
:func:`ser.serving.analysis.segments_table`: an ``answer`` among the emotions, "not sure" and "no
speech", the best guess in ``emotion``, probabilities as fractions, reason codes). What is shown
says the same in words: "not sure: perhaps neutral (37%)" rather than a bare "not sure" (the best
guess is what a person wants next), percentages rather than fractions, reasons rather than codes.

Example
-------
>>> from ser.serving.bundle import ClipPrediction
>>> unsure = ClipPrediction(emotion="neutral", confidence=0.37, probabilities={}, sure=False)
>>> answer_words(unsure, confidence=True)
'not sure: perhaps neutral (37%)'
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ser.serving.analysis import NOT_SURE, Analysis, answer_label
from ser.serving.bundle import ClipPrediction
from ser.serving.joint_views import BOTH_CORPORA, STUDIO
from ser.serving.unfamiliarity import REASON_WORDS, Unfamiliarity

#: Which model answered (:mod:`ser.serving.joint_views`), in words.
ANSWERED_BY_WORDS: dict[str, str] = {
    STUDIO: "main model",
    BOTH_CORPORA: "views trained on several corpora",
}


def answer_words(prediction: ClipPrediction | None, *, confidence: bool = False) -> str:
    """An answer as the app says it: "angry", "not sure: perhaps neutral", "no speech".

    Parameters
    ----------
    prediction : ClipPrediction or None
        None for a segment without enough speech to score.
    confidence : bool
        Append the calibrated confidence of the emotion named: "angry (94%)",
        "not sure: perhaps neutral (37%)".
    """
    if prediction is None:
        return answer_label(None)
    words = prediction.emotion if prediction.sure else f"{NOT_SURE}: perhaps {prediction.emotion}"
    return f"{words} ({prediction.confidence:.0%})" if confidence else words


def unfamiliar_words(unfamiliarity: Unfamiliarity | None) -> str:
    """The reasons an input is unlike the training data, in a few words each ("" when none fired,
    "not checked" when the bundle has no detector)."""
    if unfamiliarity is None:
        return "not checked"
    return "; ".join(REASON_WORDS[reason] for reason in unfamiliarity.reasons)


def answered_by_words(code: str) -> str:
    """Which model answered, in words (an unknown code as it is: a newer bundle may add one)."""
    return ANSWERED_BY_WORDS.get(code, code)


def results_table(analyses: Sequence[Analysis]) -> pd.DataFrame:
    """The batch table on screen: one row per clip, in the words of the single-file view.

    Columns: ``file``, ``seconds``, ``answer`` (:func:`answer_words`), ``confidence`` ("94%"),
    ``segments``, ``unlike the training data`` (:func:`unfamiliar_words`), ``answered by``; when any
    clip is calibrated to the speaker, also ``without calibration`` (the answer and its confidence).
    The downloads keep the codes and fractions (:func:`ser.serving.analysis.segments_table`).

    Returns
    -------
    pandas.DataFrame, shape (len(analyses), 7), or (len(analyses), 8) calibrated; every cell text but
    ``seconds`` and ``segments``
    """
    calibrated = any(analysis.adapted for analysis in analyses)
    rows = []
    for analysis in analyses:
        row = {
            "file": analysis.name,
            "seconds": round(analysis.duration, 1),
            "answer": answer_words(analysis.prediction),
            "confidence": f"{analysis.prediction.confidence:.0%}",
            "segments": len(analysis.segments),
            "unlike the training data": unfamiliar_words(analysis.unfamiliarity),
            "answered by": answered_by_words(analysis.prediction.answered_by),
        }
        if calibrated:
            row["without calibration"] = answer_words(analysis.unadapted, confidence=True) if analysis.adapted else ""
        rows.append(row)
    return pd.DataFrame(rows)
