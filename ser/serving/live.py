"""Live microphone audio for the rolling emotion meter, without Streamlit.

streamlit-webrtc hands the app one ``av.AudioFrame`` about every 20 ms, on aiortc's event
loop thread: 48 kHz, 16-bit, usually stereo (interleaved). :class:`LiveBuffer` turns each
frame into mono float32 at the model's rate with a streaming resampler (so frame edges
leave no clicks) and keeps the last ``max_seconds`` in a ring, so the Streamlit thread can
read "the last few seconds" for the meter and, when the stream stops, the whole take. It
also counts the audio received (the page's counter) and remembers clipped input frames.

:meth:`LiveBuffer.level` is the microphone level meter (the maths are in
:mod:`ser.serving.level`); :func:`read_latest` scores the current utterance once it holds
enough speech, and :func:`adapt_reading` calibrates a reading to the speaker's voice when it is
shown (both in :mod:`ser.serving.live_reading`, re-exported here);
:func:`warm_up` does the one-off work of a process's first reading ahead of time;
:func:`ice_servers` reads the ICE servers a deployment needs from settings.

Example
-------
>>> import numpy as np
>>> from ser.serving.live import LiveBuffer
>>> buffer = LiveBuffer(sample_rate=16000, max_seconds=10.0)
>>> frame = np.zeros((1, 960 * 2), dtype=np.int16)  # 20 ms of 48 kHz stereo, packed
>>> buffer.push(frame, sample_rate=48000, channels=2)
>>> buffer.latest(seconds=1.0).shape[0] <= 16000, round(buffer.seconds, 3)
(True, 0.02)
>>> buffer.level().rms_dbfs  # digital silence sits at the meter's floor
-120.0
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import soxr

from ser.errors import SERError
from ser.serving.level import (
    CLIP_MEMORY_SECONDS,
    CLIP_RUN_SAMPLES,
    QUIET_WINDOW_SECONDS,
    MicrophoneLevel,
    longest_full_scale_run,
    measure_level,
)
from ser.serving.live_reading import Reading, adapt_reading, read_latest, reading_due

__all__ = ["LiveBuffer", "Reading", "adapt_reading", "ice_servers", "read_latest", "reading_due", "to_channels",
           "to_mono", "warm_up"]

if TYPE_CHECKING:  # the buffer and the meter maths need no model; only read_latest/warm_up take one
    from ser.serving.bundle import Bundle

#: The "no STUN/TURN" default: host candidates only, which is all loopback or a LAN needs.
NO_ICE_SERVERS: list[dict[str, Any]] = []

class LiveBuffer:
    """Thread-safe ring of the most recent mono audio at the model's sample rate, per take.

    A *take* is the audio of one stream: it starts with the first frame pushed after
    :meth:`end_take` (the stream's end) or after creation, so a new stream never loses its
    first frames to a reset and a stopped take stays readable until new audio arrives.

    Parameters
    ----------
    sample_rate : int
        Rate of the stored audio (the model's rate), Hz.
    max_seconds : float
        How much audio is kept; older samples are overwritten. This bounds the "whole
        take" the Live page can analyse, and the memory one session uses
        (``4 * sample_rate * max_seconds`` bytes).
    """

    def __init__(self, *, sample_rate: int, max_seconds: float) -> None:
        if sample_rate <= 0 or max_seconds <= 0:
            raise ValueError("sample_rate and max_seconds must be positive")
        self.sample_rate = int(sample_rate)
        self.capacity = int(round(max_seconds * sample_rate))
        self._ring = np.zeros(self.capacity, dtype=np.float32)
        self._lock = threading.Lock()
        self._take = 0  # number of the current take (0: none yet)
        self._ended = True  # the next push starts a new take
        self._reset()

    def _reset(self) -> None:
        self._write = 0  # next index to write
        self._filled = 0  # valid samples in the ring (<= capacity)
        self._total = 0  # samples written since the take started (model rate)
        self._received = 0.0  # seconds of input audio received since the take started
        self._clipped_at: float | None = None  # received seconds at the end of the last clipped frame
        self._resampler: soxr.ResampleStream | None = None
        self._input_rate: int | None = None

    def clear(self) -> None:
        """Forget the current take's audio (the take number stays)."""
        with self._lock:
            self._reset()

    def end_take(self) -> None:
        """The stream ended: keep the take readable; the next frame pushed starts a new one.

        Called from streamlit-webrtc's ``on_ended`` (after its last frame), not from the
        page's Stop: frames still in flight when the page sees the stop would otherwise
        start a new, nearly empty take.
        """
        with self._lock:
            if self._resampler is not None and not self._ended:
                # The resampler holds back a few milliseconds for its filter: flushed, the take
                # is as long as the audio received.
                self._append(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
                self._resampler = None
            self._ended = True

    @property
    def take_number(self) -> int:
        """1 for the first take, 2 for the next...; 0 before any audio."""
        with self._lock:
            return self._take

    @property
    def streaming(self) -> bool:
        """Frames of the current take are arriving (it has not ended)."""
        with self._lock:
            return not self._ended

    @property
    def seconds(self) -> float:
        """Audio received in the current take, in seconds (may exceed what is kept)."""
        with self._lock:
            return self._received

    def push(self, samples: np.ndarray, *, sample_rate: int, channels: int) -> None:
        """Append one frame.

        Parameters
        ----------
        samples : np.ndarray
            As ``av.AudioFrame.to_ndarray()`` returns it: packed (interleaved) frames have
            shape (1, n * channels), planar ones (channels, n). int16 is scaled to [-1, 1);
            floats are taken as they are.
        sample_rate : int
            Input rate in Hz (48000 from WebRTC).
        channels : int
            Number of interleaved or planar channels.
        """
        per_channel = to_channels(samples, channels=channels)
        mono = per_channel.mean(axis=0)
        clipped = max(longest_full_scale_run(channel) for channel in per_channel) >= CLIP_RUN_SAMPLES
        with self._lock:
            if self._ended:
                self._reset()
                self._take += 1
                self._ended = False
            if self._resampler is None or self._input_rate != sample_rate:
                self._resampler = soxr.ResampleStream(sample_rate, self.sample_rate, 1, dtype="float32",
                                                      quality="HQ")
                self._input_rate = sample_rate
            self._append(self._resampler.resample_chunk(mono))
            self._received += mono.size / sample_rate
            if clipped:
                self._clipped_at = self._received

    def push_frame(self, frame: Any) -> None:
        """Append an ``av.AudioFrame`` (duck-typed: ``to_ndarray``, ``sample_rate``, ``layout``)."""
        self.push(frame.to_ndarray(), sample_rate=int(frame.sample_rate), channels=len(frame.layout.channels))

    def _append(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self._total += chunk.size
        if chunk.size >= self.capacity:  # a chunk longer than the ring keeps only its tail
            self._ring[:] = chunk[-self.capacity :]
            self._write, self._filled = 0, self.capacity
            return
        end = self._write + chunk.size
        if end <= self.capacity:
            self._ring[self._write : end] = chunk
        else:
            split = self.capacity - self._write
            self._ring[self._write :] = chunk[:split]
            self._ring[: end - self.capacity] = chunk[split:]
        self._write = end % self.capacity
        self._filled = min(self.capacity, self._filled + chunk.size)

    def _latest(self, seconds: float) -> np.ndarray:
        count = min(int(round(seconds * self.sample_rate)), self._filled)
        start = (self._write - count) % self.capacity
        if start + count <= self.capacity:
            return self._ring[start : start + count].copy()
        return np.concatenate([self._ring[start:], self._ring[: count - (self.capacity - start)]])

    def latest(self, *, seconds: float) -> np.ndarray:
        """A copy of the last ``seconds`` of audio (less if less was received).

        Returns
        -------
        np.ndarray, shape (min(round(seconds * sample_rate), kept),), float32, oldest first
        """
        with self._lock:
            return self._latest(seconds)

    def snapshot(self, *, seconds: float) -> tuple[np.ndarray, float]:
        """The last ``seconds`` of audio and where they end on the take's clock (seconds), read together."""
        with self._lock:
            return self._latest(seconds), self._total / self.sample_rate

    def take(self) -> np.ndarray:
        """Everything kept (at most ``max_seconds``), oldest first; shape (kept,), float32."""
        return self.latest(seconds=self.capacity / self.sample_rate)

    def level(self) -> MicrophoneLevel:
        """The level meter's reading of the newest audio (see :func:`measure_level`)."""
        with self._lock:
            audio = self._latest(QUIET_WINDOW_SECONDS)
            clipping = self._clipped_at is not None and self._received - self._clipped_at <= CLIP_MEMORY_SECONDS
        return measure_level(audio, sample_rate=self.sample_rate, clipping=clipping)


def warm_up(bundle: Bundle) -> None:
    """Do a process's one-off work before the first live reading needs it.

    ``load_bundle`` already runs the model once; the openSMILE extractor of the functional
    view is built on its first use, which made the first reading of a fresh server take
    about 1.3 s instead of 0.15 s (measured on this project's 2-core machine).
    """
    if bundle.uses_functionals:
        from ser.serving.functionals import acoustic_functionals

        noise = 0.05 * np.random.default_rng(0).standard_normal(bundle.config.sample_rate).astype(np.float32)
        acoustic_functionals(noise, config=bundle.config)


def to_channels(samples: np.ndarray, *, channels: int) -> np.ndarray:
    """A packed or planar frame as float32 channels in [-1, 1).

    Parameters
    ----------
    samples : np.ndarray, shape (1, n * channels) packed or (channels, n) planar
    channels : int

    Returns
    -------
    np.ndarray, shape (max(channels, 1), n), float32
    """
    array = np.asarray(samples)
    scale = 1.0 / 32768.0 if array.dtype == np.int16 else 1.0 / 2147483648.0 if array.dtype == np.int32 else 1.0
    array = array.astype(np.float32) * np.float32(scale)
    if channels <= 1:
        return array.reshape(1, -1)
    if array.ndim == 2 and array.shape[0] == channels:  # planar
        return array
    flat = array.reshape(-1)
    usable = flat.size - flat.size % channels
    return flat[:usable].reshape(-1, channels).T


def to_mono(samples: np.ndarray, *, channels: int) -> np.ndarray:
    """Average the channels of a packed or planar frame into mono float32 in [-1, 1).

    Parameters
    ----------
    samples : np.ndarray, shape (1, n * channels) packed or (channels, n) planar
    channels : int

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    return to_channels(samples, channels=channels).mean(axis=0)


def ice_servers(*, secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
                ) -> list[dict[str, Any]]:
    """ICE servers for WebRTC, from settings; none by default (works on localhost/LAN).

    Looked up, in order: ``SER_ICE_SERVERS`` in ``environ`` (a JSON list), then the
    ``ice_servers`` key of ``secrets`` (Streamlit's ``secrets.toml``: a list of tables
    with ``urls`` and optional ``username``/``credential``).

    Returns
    -------
    list of dict
        Each with ``urls`` (str or list of str), optionally ``username``, ``credential``.

    Raises
    ------
    SERError
        If the setting is present but malformed; the message names the setting.
    """
    raw: Any = None
    source = ""
    if environ is not None and environ.get("SER_ICE_SERVERS", "").strip():
        source = "SER_ICE_SERVERS"
        try:
            raw = json.loads(environ["SER_ICE_SERVERS"])
        except json.JSONDecodeError as error:
            raise SERError(f"SER_ICE_SERVERS is not valid JSON ({error}); set it to a list like "
                           '[{"urls": "stun:stun.example.org:3478"}]') from error
    elif secrets is not None and "ice_servers" in secrets:
        source = "ice_servers in .streamlit/secrets.toml"
        raw = secrets["ice_servers"]
    if raw is None:
        return list(NO_ICE_SERVERS)
    if not isinstance(raw, list | tuple):
        raise SERError(f"{source} must be a list of servers, each with 'urls'")
    servers = []
    for item in raw:
        if not isinstance(item, Mapping) or "urls" not in item:
            raise SERError(f"{source}: every server needs 'urls' (got {item!r})")
        urls = item["urls"]
        if not (isinstance(urls, str) or (isinstance(urls, list | tuple) and all(isinstance(u, str) for u in urls))):
            raise SERError(f"{source}: 'urls' must be a string or a list of strings")
        server: dict[str, Any] = {"urls": urls if isinstance(urls, str) else list(urls)}
        for key in ("username", "credential"):
            if key in item:
                server[key] = str(item[key])
        servers.append(server)
    return servers
