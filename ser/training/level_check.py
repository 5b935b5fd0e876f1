"""Does the recording level change the model's answer?

Every ``every``-th RAVDESS speech clip (actors 1-20) is scored by the shipped bundle through
``Bundle.predict_clip`` as recorded, ``gain_db`` dB quieter and ``gain_db`` dB louder (clipped at full
scale). Among the clips that get an answer as recorded, :func:`level_answers` counts the quieter and
louder copies refused as "no speech" and the answers that differ from the clip's own.
``python -m ser level-check`` (:mod:`ser.checks_cli`) writes ``models/level_check.json``
(:class:`ser.reporting.results.LevelCheckResults`; the model card shows it while it describes the
shipped ``model.keras``). About a minute here::

    python -m ser level-check --data ../shared/data/ravdess --out models/
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ser.errors import SERError
from ser.serving.audio import decode_audio


def level_answers(bundle: Any, index: pd.DataFrame, *, gain_db: float) -> dict[str, int]:
    """Score every clip of ``index`` as recorded, ``gain_db`` quieter and louder.

    Parameters
    ----------
    bundle : ser.serving.bundle.Bundle
        The model scoring the clips.
    index : pandas.DataFrame
        The clips (a ``path`` column).
    gain_db : float
        The level change in dB, down and up; positive.

    Returns
    -------
    dict
        ``answered``, ``refused_quieter``, ``refused_louder``, ``compared`` and ``changed`` counts
        (the fields of :class:`ser.reporting.results.LevelCheckResults` of those names).

    Raises
    ------
    ValueError
        When ``gain_db`` is not positive.
    """
    if not gain_db > 0:
        raise ValueError(f"gain_db must be positive, got {gain_db}")
    rate = bundle.config.sample_rate
    answers: dict[float, list[str | None]] = {0.0: [], -gain_db: [], gain_db: []}
    for row in index.itertuples():
        clean = decode_audio(row.path, sample_rate=rate)
        for gain, given in answers.items():
            audio = np.clip(clean * 10 ** (gain / 20), -1.0, 1.0).astype(np.float32)
            try:
                given.append(bundle.predict_clip(audio, sample_rate=rate).emotion)
            except SERError:  # refused as "no speech"
                given.append(None)
    answered = [position for position, answer in enumerate(answers[0.0]) if answer is not None]
    refused = {gain: sum(answers[gain][p] is None for p in answered) for gain in (-gain_db, gain_db)}
    pairs = [(answers[0.0][p], answers[gain][p]) for gain in (-gain_db, gain_db) for p in answered
             if answers[gain][p] is not None]
    return {"answered": len(answered), "refused_quieter": refused[-gain_db], "refused_louder": refused[gain_db],
            "compared": len(pairs), "changed": sum(clean != other for clean, other in pairs)}
