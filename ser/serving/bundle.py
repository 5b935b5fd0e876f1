"""Load a model bundle and score clips or long recordings.

A bundle is a folder with ``model.keras``, ``labels.json``, ``config.json`` and
``metrics.json``. :func:`load_bundle` rebuilds the feature config from ``config.json``
and loads the Keras model with ``safe_mode=True``; the CLI, the app and the benchmark all
go through it. Optional files: ``unfamiliarity.npz`` (:mod:`ser.serving.unfamiliarity`) and the
joint views trained on RAVDESS, ASED and ordinary voices (:mod:`ser.serving.joint_views`), which answer the emotion
of inputs the detector finds unlike the training data.

Example
-------
>>> from ser.serving.bundle import DEFAULT_BUNDLE, load_bundle
>>> from ser.serving.audio import decode_audio
>>> from ser.testing import EXAMPLES
>>> bundle = load_bundle(DEFAULT_BUNDLE)
>>> waveform = decode_audio(EXAMPLES / "03-01-05-02-01-01-12.flac", sample_rate=bundle.config.sample_rate)
>>> bundle.predict_clip(waveform, sample_rate=bundle.config.sample_rate).emotion
'angry'
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ser import import_tensorflow_quietly
from ser.config import FeatureConfig, read_json, write_json
from ser.errors import BundleError, NoSpeechError
from ser.serving.calibration import apply_temperature
from ser.serving.features import window_features
from ser.serving.forward import ModelCalls
from ser.serving.functionals import FunctionalStatistics, acoustic_functionals, functional_statistics, n_functionals
from ser.serving.joint_views import (
    BOTH_CORPORA,
    JOINT_MODEL_FILE,
    STUDIO,
    JointViews,
    JointViewsSettings,
    joint_files_present,
    load_joint_views,
    read_joint_settings,
)
from ser.serving.prediction import ClipPrediction, Timeline
from ser.serving.recording import Recording, functionals_workers
from ser.serving.speech import SpeechSettings
from ser.serving.unfamiliarity import Unfamiliarity, UnfamiliarityDetector, load_unfamiliarity

#: ``load_bundle`` logs one INFO line per load here (the load test counts them: one per server).
LOGGER = logging.getLogger(__name__)
BUNDLE_FILES = ("model.keras", "labels.json", "config.json")
#: The optional "unlike the training data" detector next to the model (``python -m ser unfamiliarity``).
UNFAMILIARITY_FILE = "unfamiliarity.npz"
DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "models"
#: Windows scored per model call: bounds memory for long recordings. 8 rather than 32: the
#: 60 s timeline ran 1.5-2.5x faster and the process peaked ~120 MB lower, with bit-identical
#: outputs per window (bench/, issue 6).
BATCH_WINDOWS = 8


class Bundle:
    """A loaded model with its labels, feature config and calibration. Thread-safe."""

    def __init__(self, *, model: Any, labels: dict[str, list[str]], config: FeatureConfig,
                 temperature: float, confidence_threshold: float, path: Path) -> None:
        self.model = model
        self.labels = labels
        self.emotions = list(labels["emotion"])
        self.config = config
        self.temperature = float(temperature)
        self.confidence_threshold = float(confidence_threshold)
        self.path = path
        #: Thresholds of the speech detector run before every prediction.
        self.speech_settings = SpeechSettings()
        self._lock = threading.Lock()
        self._calls: ModelCalls | None = None
        self._joint_lock = threading.Lock()  # segments are scored on threads: load the joint views once
        self._joint: JointViews | None = None

    @property
    def calls(self) -> ModelCalls:
        """The model's compiled calls (:mod:`ser.serving.forward`), built on first use; built again for a
        replaced :attr:`model` (``experiments.fusion_weights`` swaps in one with more outputs)."""
        with self._lock:
            if self._calls is None or self._calls.model is not self.model:
                self._calls = ModelCalls(model=self.model)
            return self._calls

    @functools.cached_property
    def version(self) -> str:
        """First 12 hex digits of the SHA-256 of ``model.keras`` (and, when the bundle has them, of the joint
        views' model after it): which models gave an answer ("" if no file)."""
        model_file = self.path / "model.keras"
        if not model_file.is_file():
            return ""
        digest = hashlib.sha256(model_file.read_bytes())
        joint_file = self.path / JOINT_MODEL_FILE
        if joint_file.is_file():
            digest.update(joint_file.read_bytes())
        return digest.hexdigest()[:12]

    @functools.cached_property
    def functional_statistics(self) -> FunctionalStatistics | None:
        """How the functional view's members standardise the functionals (:func:`functional_statistics`)."""
        return functional_statistics(self.model)

    def standardize(self, functionals: np.ndarray) -> np.ndarray | None:
        """The functionals as the functional view reads them, float32; None for a model without that view."""
        statistics = self.functional_statistics
        return None if statistics is None else statistics.standardize(functionals)

    @property
    def uses_functionals(self) -> bool:
        """True when the model's second view needs the clip's openSMILE functionals."""
        return bool(self.config.functionals)

    @functools.cached_property
    def unfamiliarity_detector(self) -> UnfamiliarityDetector | None:
        """The bundle's "unlike the training data" checks (:mod:`ser.serving.unfamiliarity`).

        None when the bundle has no ``unfamiliarity.npz`` (a freshly trained bundle) or its model
        reads no functionals: its answers then carry no unfamiliarity verdict.

        Raises
        ------
        BundleError
            If the file is corrupt or was built for another number of functionals.
        """
        path = self.path / UNFAMILIARITY_FILE
        if not self.uses_functionals or not path.is_file():
            return None
        detector = load_unfamiliarity(path)
        if detector.size != n_functionals(self.config):
            raise BundleError(f"{path} reads {detector.size} functionals but the model uses "
                              f"{n_functionals(self.config)}; rebuild it with python -m ser unfamiliarity")
        return detector

    def unfamiliarity_of(self, recording: Recording) -> Unfamiliarity | None:
        """Which unfamiliarity checks fire on a recording :meth:`predict_recording` has scored.

        Reads the functionals that prediction extracted (no second pass), assessed once per
        prediction (the verdict that routed it is kept on the recording). None when the bundle has
        no detector or the recording was not scored.
        """
        detector = self.unfamiliarity_detector
        if detector is None or recording.functionals is None:
            return None
        if recording.unfamiliarity is None:
            recording.unfamiliarity = detector.assess(recording.functionals)
        return recording.unfamiliarity

    @functools.cached_property
    def joint_settings(self) -> JointViewsSettings | None:
        """``joint_views.json`` when the bundle holds the joint views (read at load, their model on first use).

        Read once, so a bad temperature fails at load rather than at the first unfamiliar input, and the
        route is known without loading the joint model (or after a batch worker's folder is gone).

        Raises
        ------
        BundleError
            If the bundle holds one file without the other, the settings are bad, or the model reads no functionals.
        """
        present = joint_files_present(self.path)
        if present and not self.uses_functionals:
            raise BundleError(f"{self.path} holds joint views but its model reads no functionals; "
                              "remove joint_views.keras and joint_views.json or ship the functionals model")
        return read_joint_settings(self.path) if present else None

    @property
    def has_joint_views(self) -> bool:
        """Whether the bundle holds ``joint_views.keras`` and ``joint_views.json`` (:attr:`joint_settings`)."""
        return self.joint_settings is not None

    @property
    def joint_route(self) -> str | None:
        """The unfamiliarity check that routes an input to the joint views (``joint_views.json``'s ``route``);
        None without them."""
        return None if self.joint_settings is None else self.joint_settings.route

    def routes(self, unfamiliarity: Unfamiliarity | None) -> bool:
        """Whether an input with this verdict is answered by the joint views (its :attr:`joint_route` fired)."""
        return self.routes_unfamiliar and unfamiliarity is not None and self.joint_route in unfamiliarity.reasons

    @property
    def joint_views(self) -> JointViews | None:
        """The joint views trained on several corpora (:mod:`ser.serving.joint_views`), loaded on
        first use so bundles without them (and familiar inputs) load no second model; None without the files.

        Raises
        ------
        BundleError
            If the files are broken or made for other functionals or emotions.
        """
        if not self.has_joint_views:
            return None
        with self._joint_lock:
            if self._joint is None:
                self._joint = load_joint_views(self.path, n_features=n_functionals(self.config),
                                               n_emotions=len(self.emotions))
            return self._joint

    @property
    def routes_unfamiliar(self) -> bool:
        """Whether inputs unlike the training data are answered by the joint views (the bundle has
        both them and the unfamiliarity detector)."""
        return self.has_joint_views and self.unfamiliarity_detector is not None

    def score_windows(self, windows: np.ndarray, *, functionals: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Raw (uncalibrated) head probabilities for windows.

        The model's CNN views score the windows and its functional views the functionals, once per
        distinct vector, before the views are fused (:mod:`ser.serving.forward`).

        Parameters
        ----------
        windows : np.ndarray, shape (n, window_frames, n_mels)
        functionals : np.ndarray, shape (n, n_functionals), (1, n_functionals) or (n_functionals,), optional
            The functionals of the audio each window comes from (one vector is shared by
            every window). Required when :attr:`uses_functionals`; all-zero vectors (raw
            zeros, not the training mean) when omitted, which only benchmarks and warm-up
            calls should do.

        Returns
        -------
        dict
            ``head -> (n, n_classes)`` float64 probabilities.
        """
        rows, calls = self._functional_rows(functionals, n=len(windows)), self.calls
        return calls.finish(calls.start(windows, batch_windows=BATCH_WINDOWS), functionals=rows,
                            batch_windows=BATCH_WINDOWS)

    def _functional_rows(self, functionals: np.ndarray | None, *, n: int) -> np.ndarray | None:
        """The functionals for :meth:`score_windows`' ``n`` windows as float32 rows, shape (1, n_functionals) for
        one shared vector or (n, n_functionals); None when the model reads none."""
        if not self.uses_functionals:
            return None
        size = n_functionals(self.config)
        rows = np.zeros((1, size), dtype=np.float32) if functionals is None else np.asarray(functionals, np.float32)
        if rows.ndim == 1:
            rows = rows[None]
        if rows.shape[1:] != (size,) or len(rows) not in (1, n):
            raise ValueError(f"functionals must have shape ({n}, {size}), got {np.shape(functionals)}")
        return rows

    def recording(self, waveform: np.ndarray, *, sample_rate: int) -> Recording:
        """The clip at the model's rate, ready to be examined once for every answer about it.

        Parameters
        ----------
        waveform : np.ndarray, shape (samples,) or (samples, channels)
        sample_rate : int
            Rate of ``waveform`` in Hz.
        """
        return Recording(waveform, sample_rate=sample_rate, config=self.config, speech_settings=self.speech_settings)

    def clip_prediction(self, probabilities: dict[str, np.ndarray], *, speech_seconds: float,
                        joint: np.ndarray | None = None, functionals: np.ndarray | None = None) -> ClipPrediction:
        """The answer from the main model's mean head probabilities; with ``joint`` (the joint
        views' untempered probabilities, shape (n_emotions,)), the emotion comes from those. The clip's
        ``functionals`` (shape (n_functionals,)), when given, ride along standardised for a voice profile."""
        if joint is None:
            emotion = apply_temperature(probabilities["emotion"], temperature=self.temperature)
        else:
            emotion = apply_temperature(joint, temperature=self.joint_views.settings.temperature)
        best = int(np.argmax(emotion))
        extra = {
            head: {name: float(p) for name, p in zip(self.labels[head], probabilities[head], strict=True)}
            for head in ("gender", "intensity")
            if head in probabilities and head in self.labels
        }
        return ClipPrediction(
            emotion=self.emotions[best],
            confidence=float(emotion[best]),
            probabilities={name: float(p) for name, p in zip(self.emotions, emotion, strict=True)},
            sure=bool(emotion[best] >= self.confidence_threshold),
            gender=extra.get("gender"),
            intensity=extra.get("intensity"),
            speech_seconds=speech_seconds,
            answered_by=STUDIO if joint is None else BOTH_CORPORA,
            features=None if functionals is None else self.standardize(functionals),
        )

    def predict_clip(self, waveform: np.ndarray, *, sample_rate: int) -> ClipPrediction:
        """Score one clip: trim silence, average the model over its windows, calibrate.

        Parameters
        ----------
        waveform : np.ndarray, shape (samples,) or (samples, channels)
        sample_rate : int
            Rate of ``waveform`` in Hz (resampled to the model's rate here).

        Raises
        ------
        NoSpeechError
            If the clip is too short, silent, noise or hum without speech (see
            :mod:`ser.serving.speech`), or too short after trimming.
        """
        return self.predict_recording(self.recording(waveform, sample_rate=sample_rate))

    def predict_recording(self, recording: Recording) -> ClipPrediction:
        """:meth:`predict_clip` of a recording, reusing whatever stages it has computed already.

        When the bundle :attr:`routes_unfamiliar` and the joint views' check (:attr:`joint_route`) fires on
        the clip's functionals, the emotion probabilities are the joint views' (``answered_by`` says so).
        """
        config = self.config
        try:
            utterance, refused = recording.utterance, None
        except NoSpeechError as error:  # reported after the speech detector's own verdict
            utterance, refused = None, error
        pending = None
        if self.uses_functionals and utterance is not None:
            # openSMILE (~30-45 ms of a 4 s clip) runs in C without the GIL: started now, on the
            # other core, while this thread runs the speech detector and the log-mel features.
            # A clip the detector refuses raises below; its result is dropped.
            pending = functionals_workers().submit(acoustic_functionals, utterance, config=config)
        recording.activity.require()
        if refused is not None:
            raise refused
        windows, _ = window_features(recording.utterance_log_mel, config=config)
        # The CNN views need no functionals: scored here while openSMILE is still running, so only
        # the functional views (one row) and the fusion wait for it (score_windows' answers).
        started = self.calls.start(windows, batch_windows=BATCH_WINDOWS)
        functionals = pending.result() if pending is not None else None
        recording.functionals = functionals  # kept for the voice-quality cues: extracted once
        recording.unfamiliarity = None  # assessed from these functionals (once) by unfamiliarity_of
        outputs = self.calls.finish(started, functionals=self._functional_rows(functionals, n=len(windows)),
                                    batch_windows=BATCH_WINDOWS)
        mean = {head: values.mean(axis=0) for head, values in outputs.items()}
        joint = None
        if functionals is not None and self.routes(self.unfamiliarity_of(recording)):
            joint = self.joint_views.probabilities(functionals)
        return self.clip_prediction(mean, speech_seconds=utterance.size / config.sample_rate, joint=joint,
                                    functionals=functionals)

    def timeline(self, waveform: np.ndarray, *, sample_rate: int) -> Timeline:
        """Score a long recording window by window (``config.window_seconds`` long,
        ``config.window_hop_seconds`` apart); windows without enough sound are skipped.

        Raises
        ------
        NoSpeechError
            If the recording is too short, or no window holds speech (see :mod:`ser.serving.speech`).
        """
        return self.timeline_of(self.recording(waveform, sample_rate=sample_rate))

    def timeline_of(self, recording: Recording) -> Timeline:
        """:meth:`timeline` of a recording, reusing whatever stages it has computed already
        (:func:`ser.serving.timeline.score_timeline`)."""
        from ser.serving.timeline import score_timeline  # imports this module

        return score_timeline(self, recording)


def load_bundle(path: str | os.PathLike[str] = DEFAULT_BUNDLE, *, joint_views: bool = True) -> Bundle:
    """Load ``model.keras`` (``safe_mode=True``), ``labels.json`` and ``config.json``.

    ``joint_views=False`` leaves out the joint views (the main model answers every input): for measuring
    the main model alone on a corpus the joint views were trained on (``python -m ser corpus-check``).

    Raises
    ------
    BundleError
        If a file is missing or the files disagree (e.g. label count vs model output).
    """
    started = time.perf_counter()
    path = Path(path)
    for name in BUNDLE_FILES:
        if not (path / name).is_file():
            raise BundleError(f"{path / name} is missing; train with `python -m ser train --out {path}`")
    labels = read_json(path / "labels.json")
    settings = read_json(path / "config.json")
    if not isinstance(labels, dict) or "emotion" not in labels:
        raise BundleError(f"{path / 'labels.json'} must map 'emotion' to the ordered class names")
    config = FeatureConfig.from_dict(settings["features"])
    calibration = settings.get("calibration", {})

    import_tensorflow_quietly()
    import keras  # after the config checks: a broken bundle fails fast, without TensorFlow

    import ser.serving.layers  # noqa: F401  registers the custom layers before loading

    model = keras.saving.load_model(path / "model.keras", safe_mode=True, compile=False)
    bundle = Bundle(
        model=model,
        labels=labels,
        config=config,
        temperature=float(calibration.get("temperature", 1.0)),
        confidence_threshold=float(calibration.get("confidence_threshold", 0.0)),
        path=path,
    )
    input_names = sorted(tensor.name.split(":")[0] for tensor in model.inputs)
    expected = sorted(["log_mel", "functionals"] if config.functionals else ["log_mel"])
    if input_names != expected and not (len(input_names) == 1 and not config.functionals):
        raise BundleError(
            f"model.keras takes inputs {input_names} but config.json describes {expected}; "
            "the bundle files come from different trainings"
        )
    # Warm-up call (the first one builds the graph) that also checks the files agree.
    outputs = bundle.score_windows(np.zeros((1, config.window_frames, config.n_mels), dtype=np.float32))
    if "emotion" not in outputs or outputs["emotion"].shape[-1] != len(labels["emotion"]):
        units = outputs["emotion"].shape[-1] if "emotion" in outputs else "no"
        raise BundleError(
            f"the model predicts {units} emotions but labels.json names "
            f"{len(labels['emotion'])}; the bundle files come from different trainings"
        )
    if joint_views:
        _ = bundle.joint_settings  # fails fast on half a pair of joint-views files (the model loads on first use)
    else:
        bundle.joint_settings = None  # the cached property, settled: never routed
    LOGGER.info("loaded the model bundle %s in %.1f s", path, time.perf_counter() - started)
    return bundle


def save_bundle(*, model: Any, path: Path, config: FeatureConfig, labels: dict[str, list[str]],
                calibration: dict[str, float]) -> None:
    """Write ``model.keras``, ``labels.json`` and ``config.json`` into ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / "model.keras")
    write_json(path / "labels.json", labels)
    write_json(path / "config.json", {"features": config.to_dict(), "calibration": calibration})
