"""A long recording scored window by window: :meth:`ser.serving.bundle.Bundle.timeline` calls
:func:`score_timeline`, kept here so the bundle module stays about loading and answering one clip.

Example
-------
>>> from ser.serving.bundle import load_bundle
>>> from ser.testing import synthetic_voice
>>> bundle = load_bundle()
>>> timeline = bundle.timeline(synthetic_voice(seconds=6.0), sample_rate=16000)
>>> timeline.probabilities.shape[1] == len(bundle.emotions)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ser.errors import NoSpeechError
from ser.serving.calibration import apply_temperature
from ser.serving.features import window_features
from ser.serving.prediction import Timeline
from ser.serving.recording import Recording
from ser.serving.speech import SILENT_MESSAGE
from ser.serving.unfamiliarity import CHECKS

if TYPE_CHECKING:
    from ser.serving.bundle import Bundle


def score_timeline(bundle: Bundle, recording: Recording) -> Timeline:
    """``bundle``'s timeline of a recording (:meth:`~ser.serving.bundle.Bundle.timeline`), reusing whatever
    stages the recording has computed already.

    When the bundle :attr:`routes_unfamiliar`, each window is routed on its own functionals'
    verdict (``Timeline.routed``), and the overall answer is the joint views' (their mean
    probabilities over the voiced windows, tempered as one clip) when the routed windows are at
    least half of the voiced ones: as a recording's verdict counts a reason when half its speech
    shows it (:func:`ser.serving.unfamiliarity.combine_unfamiliarity`).
    """
    config = bundle.config
    features = recording.log_mel
    # A frame is "sound" when its energy is within trim_top_db of the loudest frame.
    energy_db = 10 * np.log10(np.maximum(np.exp(features).sum(axis=1), 1e-20))
    loud = energy_db > energy_db.max() - config.trim_top_db
    if recording.is_silent:
        raise NoSpeechError(SILENT_MESSAGE)
    activity = recording.activity.require()
    windows, starts = window_features(features, config=config)
    needed = config.min_speech_seconds * config.frames_per_second
    voiced = np.array([loud[s : s + config.window_frames].sum() >= needed for s in starts])
    # ... and the detector must hear a voice in it (not only noise or hum).
    window_starts = starts / config.frames_per_second
    voiced &= activity.voiced_seconds_between(
        window_starts, window_starts + config.window_seconds
    ) >= bundle.speech_settings.min_voiced_seconds
    if not voiced.any():
        raise NoSpeechError("no speech detected in any window of the recording")
    functionals = None
    if bundle.uses_functionals:
        # Each window's own functionals; a window whose trimmed audio is too short holds no usable speech.
        positions = np.flatnonzero(voiced)
        rows = []
        for position, values in zip(positions, recording.window_functionals(starts[positions]), strict=True):
            if values is None:
                voiced[position] = False
                continue
            rows.append(values)
        if not voiced.any():
            raise NoSpeechError("no speech detected in any window of the recording")
        functionals = np.stack(rows)
    outputs = bundle.score_windows(windows[voiced], functionals=functionals)
    emotion = apply_temperature(outputs["emotion"], temperature=bundle.temperature)
    routed, joint = np.zeros(len(starts), dtype=bool), None
    if functionals is not None and bundle.routes_unfamiliar:
        detector = bundle.unfamiliarity_detector
        # One verdict per window: the route's check on the window's own functionals.
        unfamiliar = detector.flags(detector.statistics(functionals))[:, CHECKS.index(bundle.joint_route)]
        if unfamiliar.any():
            joint_views = bundle.joint_views
            joint = joint_views.probabilities(functionals)
            emotion[unfamiliar] = apply_temperature(joint[unfamiliar], temperature=joint_views.settings.temperature)
            routed[voiced] = unfamiliar
            joint = joint.mean(axis=0) if unfamiliar.mean() >= 0.5 else None
    probabilities = np.full((len(starts), len(bundle.emotions)), np.nan)
    probabilities[voiced] = emotion
    overall = bundle.clip_prediction(
        {head: values.mean(axis=0) for head, values in outputs.items()},
        speech_seconds=float(loud.sum() / config.frames_per_second),
        joint=joint,
    )
    start_seconds = starts / config.frames_per_second
    return Timeline(
        starts=start_seconds,
        ends=np.minimum(start_seconds + config.window_seconds, recording.duration),
        probabilities=probabilities,
        voiced=voiced,
        overall=overall,
        routed=routed,
    )
