"""Live microphone audio for the rolling emotion meter, without Streamlit.

streamlit-webrtc hands the app one ``av.AudioFrame`` about every 20 ms, on aiortc's event
loop thread: 48 kHz, 16-bit, usually stereo (interleaved). :class:`LiveBuffer` turns each
frame into mono float32 at the model's rate with a streaming resampler (so frame edges
leave no clicks) and keeps the last ``max_seconds`` in a ring, so the Streamlit thread can
read "the last few seconds" for the meter and, when the stream stops, the whole take.
:func:`ice_servers` reads the ICE servers a deployment needs from settings.

Example
-------
>>> import numpy as np
>>> from ser.serving.live import LiveBuffer
>>> buffer = LiveBuffer(sample_rate=16000, max_seconds=10.0)
>>> frame = np.zeros((1, 960 * 2), dtype=np.int16)  # 20 ms of 48 kHz stereo, packed
>>> buffer.push(frame, sample_rate=48000, channels=2)
>>> buffer.latest(seconds=1.0).shape[0] <= 16000
True
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import soxr

from ser.errors import SERError

#: The "no STUN/TURN" default: host candidates only, which is all loopback or a LAN needs.
NO_ICE_SERVERS: list[dict[str, Any]] = []


class LiveBuffer:
    """Thread-safe ring of the most recent mono audio at the model's sample rate.

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
        self._write = 0  # next index to write
        self._filled = 0  # valid samples in the ring (<= capacity)
        self._total = 0  # samples ever pushed since the last clear
        self._resampler: soxr.ResampleStream | None = None
        self._input_rate: int | None = None

    def clear(self) -> None:
        """Forget everything (a new take starts)."""
        with self._lock:
            self._write = self._filled = self._total = 0
            self._resampler = None
            self._input_rate = None

    @property
    def seconds(self) -> float:
        """Audio received since the last :meth:`clear`, in seconds (may exceed what is kept)."""
        with self._lock:
            return self._total / self.sample_rate

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
        mono = to_mono(samples, channels=channels)
        with self._lock:
            if self._resampler is None or self._input_rate != sample_rate:
                self._resampler = soxr.ResampleStream(sample_rate, self.sample_rate, 1, dtype="float32",
                                                      quality="HQ")
                self._input_rate = sample_rate
            self._append(self._resampler.resample_chunk(mono))

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

    def latest(self, *, seconds: float) -> np.ndarray:
        """A copy of the last ``seconds`` of audio (less if less was received).

        Returns
        -------
        np.ndarray, shape (min(round(seconds * sample_rate), kept),), float32, oldest first
        """
        wanted = int(round(seconds * self.sample_rate))
        with self._lock:
            count = min(wanted, self._filled)
            start = (self._write - count) % self.capacity
            if start + count <= self.capacity:
                return self._ring[start : start + count].copy()
            return np.concatenate([self._ring[start:], self._ring[: count - (self.capacity - start)]])

    def take(self) -> np.ndarray:
        """Everything kept (at most ``max_seconds``), oldest first; shape (kept,), float32."""
        return self.latest(seconds=self.capacity / self.sample_rate)


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
    array = np.asarray(samples)
    scale = 1.0 / 32768.0 if array.dtype == np.int16 else 1.0 / 2147483648.0 if array.dtype == np.int32 else 1.0
    array = array.astype(np.float32) * np.float32(scale)
    if channels <= 1:
        return array.reshape(-1)
    if array.ndim == 2 and array.shape[0] == channels:  # planar
        return array.mean(axis=0)
    flat = array.reshape(-1)
    usable = flat.size - flat.size % channels
    return flat[:usable].reshape(-1, channels).mean(axis=1)


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
