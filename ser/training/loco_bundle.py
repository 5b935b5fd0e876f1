"""A shipped bundle's answers on a corpus it never heard, as ``ser predict`` answers, and by each of its models alone.

Used by ``python -m ser loco`` (:mod:`ser.loco_cli`) for corpora a model of the bundle never learnt from.

Example
-------
>>> from ser.training.loco_bundle import bundle_answers
>>> answers = bundle_answers(bundle, ["a.flac"], cut=False)   # doctest: +SKIP
>>> sorted(answers)                                            # doctest: +SKIP
['routed', 'shipped', 'shipped_joint_views', 'shipped_main']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import NoSpeechError
from ser.serving.audio import decode_audio
from ser.serving.calibration import apply_temperature
from ser.serving.features import window_features
from ser.serving.joint_views import BOTH_CORPORA, STUDIO
from ser.training.loco import word_cut

#: ``answered_by`` names of the three answers, as :class:`ser.reporting.loco_results.LocoRow` records them.
SHIPPED, MAIN, JOINT = "shipped", "shipped_main", "shipped_joint_views"
#: The key of whether the joint views gave the shipped answer (the unfamiliar-voice check fired).
ROUTED = "routed"


def bundle_answers(bundle: Any, paths: list[str], *, cut: bool, log: Callable[[str], None] = lambda _: None,
                   ) -> dict[str, np.ndarray]:
    """Calibrated emotion probabilities of every file, in ``bundle.emotions`` order.

    Parameters
    ----------
    bundle : ser.serving.bundle.Bundle
    paths : list of str
        Audio files (any rate; decoded at the bundle's).
    cut : bool
        Answer one word-length cut of each file (:func:`ser.training.loco.word_cut`) instead of all of it.

    Returns
    -------
    dict
        ``shipped`` (the answer ``ser predict`` gives, routed as shipped), ``shipped_main`` (the main
        model alone) and, when the bundle holds joint views, ``shipped_joint_views`` (they alone): each
        shape (len(paths), n_emotions), NaN rows for clips refused as too little speech; and ``routed``,
        shape (len(paths),) bool: the joint views gave the shipped answer.
    """
    config = bundle.config
    kinds = [SHIPPED, MAIN] + ([JOINT] if bundle.has_joint_views else [])
    out = {kind: np.full((len(paths), len(bundle.emotions)), np.nan) for kind in kinds}
    routed = np.zeros(len(paths), dtype=bool)
    started = time.perf_counter()
    for row, path in enumerate(paths):
        waveform = decode_audio(path, sample_rate=config.sample_rate)
        if cut:
            waveform = word_cut(waveform, name=Path(path).name, config=config)
        recording = bundle.recording(waveform, sample_rate=config.sample_rate)
        try:
            answer = bundle.predict_recording(recording)
        except NoSpeechError:
            continue  # refused, as the app refuses it: counted, never right
        out[SHIPPED][row] = [answer.probabilities[emotion] for emotion in bundle.emotions]
        routed[row] = answer.answered_by == BOTH_CORPORA
        # The answer given is one model's; only the other one is run again.
        if answer.answered_by == STUDIO:
            out[MAIN][row] = out[SHIPPED][row]
        else:
            windows, _ = window_features(recording.utterance_log_mel, config=config)
            main = bundle.score_windows(windows, functionals=recording.functionals)["emotion"].mean(axis=0)
            out[MAIN][row] = apply_temperature(main, temperature=bundle.temperature)
        if JOINT in out and answer.answered_by == BOTH_CORPORA:
            out[JOINT][row] = out[SHIPPED][row]
        elif JOINT in out:
            joint = np.ravel(bundle.joint_views.probabilities(recording.functionals))
            out[JOINT][row] = apply_temperature(joint, temperature=bundle.joint_views.settings.temperature)
        if row % 500 == 0:
            log(f"  bundle{' cuts' if cut else ''}: {row} of {len(paths)} ({time.perf_counter() - started:.0f} s)")
    return {**out, ROUTED: routed}
