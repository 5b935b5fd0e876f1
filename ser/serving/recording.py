"""One clip, examined once: the stages every answer about it shares.

An analysis asks several questions of one clip: is it silent, does it hold speech, what is
its whole-clip answer, what does each window say, what does its spectrogram look like. A
:class:`Recording` computes each stage the first time an answer needs it and keeps it, so
the speech detector, the DC removal, the log-mel spectrogram of the whole recording and the
trimmed utterance are each computed once per clip, whichever answers are asked for
(:meth:`ser.serving.bundle.Bundle.predict_recording`, :meth:`~ser.serving.bundle.Bundle.timeline_of`,
:func:`ser.serving.analysis.analyze_audio`).

Example
-------
>>> from ser.config import FeatureConfig
>>> from ser.serving.recording import Recording
>>> from ser.serving.speech import SpeechSettings
>>> from ser.testing import synthetic_voice
>>> recording = Recording(synthetic_voice(seconds=2.0), sample_rate=16000, config=FeatureConfig(),
...                       speech_settings=SpeechSettings())
>>> recording.log_mel.shape, recording.activity.is_speech
((201, 64), True)
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
from typing import TYPE_CHECKING

import numpy as np

from ser.config import FeatureConfig
from ser.errors import NoSpeechError
from ser.serving.audio import resample
from ser.serving.features import log_mel_spectrogram, prepare_waveform, remove_dc, trim_utterance
from ser.serving.functionals import acoustic_functionals
from ser.serving.speech import SpeechActivity, SpeechSettings, detect_speech, is_silent

if TYPE_CHECKING:
    from ser.serving.unfamiliarity import Unfamiliarity


@functools.cache
def functionals_workers() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for openSMILE, shared by every recording (started on first use, not at import).

    One per core, at most four: openSMILE's C code runs without the GIL, so a clip's
    extraction overlaps the speech detector and a timeline's windows run in parallel.
    """
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="ser-functionals"
    )


def window_functionals(audio: np.ndarray, *, config: FeatureConfig) -> np.ndarray | None:
    """Functionals of one timeline window, computed as a training clip's are (after
    :func:`~ser.serving.features.prepare_waveform`); None when the window has too little sound."""
    try:
        return acoustic_functionals(prepare_waveform(audio, config=config), config=config)
    except NoSpeechError:
        return None


class Recording:
    """A clip at the model's rate and the stages computed from it, each once, on first use.

    Not shared between threads: one analysis owns its recording.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,) or (samples, channels)
        Finite audio; channels are averaged.
    sample_rate : int
        Rate of ``waveform`` in Hz (resampled to ``config.sample_rate`` here).
    config : FeatureConfig
    speech_settings : SpeechSettings

    Raises
    ------
    NoSpeechError
        If the waveform holds NaN or infinite samples.
    ValueError
        If the waveform is neither 1-D nor 2-D.
    """

    def __init__(self, waveform: np.ndarray, *, sample_rate: int, config: FeatureConfig,
                 speech_settings: SpeechSettings) -> None:
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim == 2:  # (samples, channels) -> mono
            waveform = waveform.mean(axis=1)
        if waveform.ndim != 1:
            raise ValueError(f"waveform must have shape (samples,) or (samples, channels), got {waveform.shape}")
        if not np.all(np.isfinite(waveform)):
            raise NoSpeechError("the audio contains NaN or infinite samples; re-export the file")
        self.config = config
        self.speech_settings = speech_settings
        #: The audio at ``config.sample_rate``, untrimmed, DC offset kept; shape (samples,), float32.
        self.audio = resample(waveform, orig_sample_rate=sample_rate, target_sample_rate=config.sample_rate)
        #: ComParE functionals of :attr:`utterance`, shape (n_functionals,), once
        #: :meth:`ser.serving.bundle.Bundle.predict_recording` has extracted them for the model (None
        #: before, or when the model uses none): the voice-quality cues (:mod:`ser.serving.cues`) reuse them.
        self.functionals: np.ndarray | None = None
        #: The unfamiliarity verdict on :attr:`functionals`, cached by
        #: :meth:`ser.serving.bundle.Bundle.unfamiliarity_of` (it routed the answer; assessed once).
        self.unfamiliarity: Unfamiliarity | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.audio.size / self.config.sample_rate

    @functools.cached_property
    def centred(self) -> np.ndarray:
        """:attr:`audio` minus its mean: what the timeline windows and the spectrogram see; shape (samples,)."""
        return remove_dc(self.audio)

    @property
    def is_silent(self) -> bool:
        """Digital silence (:func:`ser.serving.speech.is_silent`): nothing to analyse."""
        return is_silent(self.centred)

    @functools.cached_property
    def activity(self) -> SpeechActivity:
        """The speech detector's frames and verdict (:func:`ser.serving.speech.detect_speech`)."""
        return detect_speech(self.audio, sample_rate=self.config.sample_rate, settings=self.speech_settings)

    @functools.cached_property
    def log_mel(self) -> np.ndarray:
        """Log-mel spectrogram of the whole recording (of :attr:`centred`); shape (frames, n_mels), float32.

        The timeline's windows are cut from it, and the app displays it.
        """
        return log_mel_spectrogram(self.centred, config=self.config)

    @functools.cached_property
    def utterance(self) -> np.ndarray:
        """The recording with leading and trailing silence trimmed, as training clips are
        (equal to :func:`~ser.serving.features.prepare_waveform` of :attr:`audio`); shape (kept_samples,).

        Raises
        ------
        NoSpeechError
            Silent, or too little sound left after trimming (raised again on every access).
        """
        return trim_utterance(self.centred, config=self.config)

    @functools.cached_property
    def utterance_log_mel(self) -> np.ndarray:
        """Log-mel spectrogram of :attr:`utterance`; shape (frames, n_mels), float32.

        When trimming kept the whole recording it is :attr:`log_mel` itself (same audio).

        Raises
        ------
        NoSpeechError
            As :attr:`utterance`.
        """
        if self.utterance.size == self.centred.size:  # nothing trimmed: the utterance is the recording
            return self.log_mel
        return log_mel_spectrogram(self.utterance, config=self.config)

    def piece(self, *, first_frame: int, last_frame: int) -> Recording:
        """The part of the recording between two speech-detector frames, as a recording of its own.

        It shares this recording's speech detection (sliced, judged again by
        :meth:`ser.serving.speech.SpeechActivity.piece`), so scoring a piece runs the detector
        no more; its DC offset is removed and its utterance trimmed within the piece exactly as
        a clip's are.

        Parameters
        ----------
        first_frame, last_frame : int
            Bounds in frames of :attr:`activity` (``speech_settings.frame_seconds`` long).
        """
        per_frame = int(round(self.speech_settings.frame_seconds * self.config.sample_rate))
        first, last = first_frame * per_frame, min(last_frame * per_frame, self.audio.size)
        piece = Recording(self.audio[first:last], sample_rate=self.config.sample_rate, config=self.config,
                          speech_settings=self.speech_settings)
        # Its own DC removal, as a clip's; the speech detection is this recording's, sliced.
        piece.__dict__["activity"] = self.activity.piece(first_frame=first_frame, last_frame=last_frame,
                                                         settings=self.speech_settings)
        return piece

    def window_functionals(self, first_frames: np.ndarray) -> list[np.ndarray | None]:
        """Functionals of the timeline windows starting at these frames, extracted in parallel.

        Returns
        -------
        list of (np.ndarray of shape (n_functionals,) or None), one per window in order;
        None for a window whose trimmed audio is too short to hold speech.
        """
        config = self.config
        pieces = [self.centred[int(first) * config.hop_length :][: config.window_samples] for first in first_frames]
        return list(functionals_workers().map(functools.partial(window_functionals, config=config), pieces))
