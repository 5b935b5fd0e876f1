"""Decode any supported upload into mono float32 audio at the model's sample rate.

This is the one module that touches codecs. libsndfile (through ``soundfile``) reads
WAV (8/16/24/32-bit integer and float), FLAC, OGG Vorbis/Opus and MP3; FFmpeg's
libraries (through PyAV, which ships them inside its wheel, so no system ffmpeg is
needed) read what browsers record: WebM/Opus and MP4/M4A (AAC).

Hostile input is expected: the content decides the format (never the name or extension),
the file size, duration, sample rate and sample values are bounded (see the limits below
and the README), only audio container demuxers are allowed in FFmpeg (playlists such as
ffconcat or HLS would open other files), and every failure is an
:class:`~ser.errors.AudioDecodeError` whose message says what to do.

Example
-------
>>> from ser.serving.audio import decode_audio
>>> from ser.testing import EXAMPLES
>>> waveform = decode_audio(EXAMPLES / "03-01-05-02-01-01-12.flac", sample_rate=16000)
>>> waveform.dtype, waveform.ndim
(dtype('float32'), 1)
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

from ser.errors import AudioDecodeError

#: Longest audio accepted, in seconds; override with the SER_MAX_AUDIO_SECONDS variable.
DEFAULT_MAX_AUDIO_SECONDS = 15 * 60.0
#: Largest file accepted, in MB (10**6 bytes); override with the SER_MAX_AUDIO_MB variable.
#: Streamlit refuses larger uploads itself (``server.maxUploadSize`` in .streamlit/config.toml).
DEFAULT_MAX_AUDIO_MB = 200.0
#: Largest sample magnitude accepted (+60 dB over full scale): float files a little over
#: 1.0 are common, values beyond this are corrupt or mis-scaled and would overflow features.
MAX_SAMPLE_MAGNITUDE = 1000.0
#: Sample rates accepted (Hz): from narrow-band telephone audio to studio 384 kHz.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 384000
#: Samples (frames x channels) read from libsndfile at once: bounds the memory a
#: many-channel or high-rate file needs on top of the mono result.
BLOCK_VALUES = 1 << 20
#: The only FFmpeg demuxers allowed (audio containers). Playlist and concat demuxers (HLS,
#: ffconcat, ...) would open *other* files or URLs named inside an upload, so they are off.
FFMPEG_FORMATS = "matroska,webm,mov,mp4,m4a,3gp,3g2,mj2,ogg,mp3,aac,wav,flac,aiff,caf,w64"
SUPPORTED = "upload WAV, FLAC, OGG, MP3, M4A or WebM audio"

# File signatures of common non-audio uploads, for a message that says what the file is.
_NOT_AUDIO_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
)

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


def max_audio_seconds() -> float:
    """The configured longest accepted recording (seconds)."""
    value = os.environ.get("SER_MAX_AUDIO_SECONDS", "")
    try:
        return float(value) if value else DEFAULT_MAX_AUDIO_SECONDS
    except ValueError as error:
        raise AudioDecodeError(
            f"SER_MAX_AUDIO_SECONDS={value!r} is not a number of seconds; unset it or fix it"
        ) from error


def max_audio_bytes() -> int:
    """The configured largest accepted file (bytes), from SER_MAX_AUDIO_MB."""
    value = os.environ.get("SER_MAX_AUDIO_MB", "")
    try:
        megabytes = float(value) if value else DEFAULT_MAX_AUDIO_MB
    except ValueError as error:
        raise AudioDecodeError(f"SER_MAX_AUDIO_MB={value!r} is not a number of MB; unset it or fix it") from error
    return int(megabytes * 1e6)


def _too_big(size: int, *, name: str, limit: int) -> AudioDecodeError:
    return AudioDecodeError(
        f"{name}: the file is {size / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit; cut it into "
        "shorter pieces or compress it (FLAC, OGG), or raise SER_MAX_AUDIO_MB"
    )


def _read_source(source: AudioSource, *, name: str) -> bytes:
    limit = max_audio_bytes()
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = bytes(source.read(limit + 1))  # type: ignore[union-attr]  never more than the limit
    else:
        path = Path(source)  # type: ignore[arg-type]
        if path.is_dir():
            raise AudioDecodeError(f"{name}: is a folder, not an audio file; name the files in it")
        if not path.is_file():
            raise AudioDecodeError(f"{name}: no such file; check the path")
        size = path.stat().st_size
        if size > limit:  # refused before reading
            raise _too_big(size, name=name, limit=limit)
        data = path.read_bytes()
    if len(data) > limit:
        raise _too_big(len(data), name=name, limit=limit)
    return data


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _too_long(seconds: float, *, name: str, limit: float) -> AudioDecodeError:
    return AudioDecodeError(
        f"{name}: the recording is {_duration(seconds)} long, over the {_duration(limit)} limit; "
        "cut it into shorter pieces (or raise SER_MAX_AUDIO_SECONDS)"
    )


def _check_rate(rate: int, *, name: str) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(
            f"{name}: the file says its sample rate is {rate} Hz, outside the supported "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz; the header is probably corrupt, re-export the file"
        )


def _decode_with_soundfile(data: bytes, *, name: str, limit: float) -> tuple[np.ndarray, int]:
    with soundfile.SoundFile(io.BytesIO(data)) as sound:
        rate, channels = int(sound.samplerate), int(sound.channels)
        _check_rate(rate, name=name)
        if sound.frames > 0 and sound.frames / rate > limit:
            raise _too_long(sound.frames / rate, name=name, limit=limit)
        block = max(1024, BLOCK_VALUES // max(channels, 1))
        parts: list[np.ndarray] = []
        decoded = 0
        while True:  # block by block, so only the mono result is held in full
            frames = sound.read(block, dtype="float32", always_2d=True)
            if frames.shape[0] == 0:
                break
            decoded += frames.shape[0]
            if decoded / rate > limit:  # formats that do not report their length up front
                raise _too_long(decoded / rate, name=name, limit=limit)
            parts.append(frames.mean(axis=1, dtype=np.float32))
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), rate


def _decode_with_ffmpeg(data: bytes, *, name: str, limit: float) -> tuple[np.ndarray, int]:
    import av  # imported lazily: only WebM/M4A uploads need FFmpeg

    chunks: list[np.ndarray] = []
    decoded = 0
    try:
        with av.open(io.BytesIO(data), mode="r", container_options={"format_whitelist": FFMPEG_FORMATS}) as container:
            if not container.streams.audio:
                raise AudioDecodeError(f"{name}: not a readable audio file (it has no audio track); {SUPPORTED}")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            if rate:
                _check_rate(rate, name=name)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate or None)
            for frame in container.decode(stream):
                rate = rate or frame.sample_rate
                for converted in resampler.resample(frame):
                    samples = converted.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    decoded += samples.size
                    if decoded / rate > limit:
                        raise _too_long(decoded / rate, name=name, limit=limit)
                    chunks.append(samples)
            for converted in resampler.resample(None):
                chunks.append(converted.to_ndarray().reshape(-1).astype(np.float32, copy=False))
    except AudioDecodeError:
        raise
    except Exception as error:  # PyAV raises many types (FFmpegError, ValueError, ...)
        raise AudioDecodeError(f"{name}: not a readable audio file ({_describe(data)}); {SUPPORTED}") from error
    if rate:
        _check_rate(rate, name=name)
    if not chunks or not rate:
        raise AudioDecodeError(f"{name}: the file holds no audio samples")
    return np.concatenate(chunks), rate


def check_samples(waveform: np.ndarray, *, name: str) -> None:
    """Refuse NaN, infinite or absurdly large samples (which no recording holds).

    Raises
    ------
    AudioDecodeError
        With a message that names ``name`` and says to re-export the file.
    """
    if not np.all(np.isfinite(waveform)):
        raise AudioDecodeError(f"{name}: the audio contains NaN or infinite samples; the file is corrupt, re-export it")
    peak = float(np.max(np.abs(waveform), initial=0.0))
    if peak > MAX_SAMPLE_MAGNITUDE:
        raise AudioDecodeError(
            f"{name}: sample values reach {peak:.3g}, far outside the usual -1..1 range; the file is corrupt "
            "or mis-scaled: normalise or re-export it"
        )


def _describe(data: bytes) -> str:
    """What an unreadable file looks like, for the error message."""
    for signature, kind in _NOT_AUDIO_SIGNATURES:
        if data.startswith(signature):
            return f"it is {kind}"
    if data[:4] in (b"RIFF", b"RIFX", b"RF64") and data[8:12] == b"WAVE":
        return "it starts like a WAV file but its header or data is truncated or corrupt; re-export or re-record it"
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and "\x00" not in text and sum(c.isprintable() or c.isspace() for c in text) >= 0.95 * len(text):
        return "it is a text file"
    return "unknown or damaged format"


def resample(waveform: np.ndarray, *, orig_sample_rate: int, target_sample_rate: int) -> np.ndarray:
    """Resample a mono waveform with a high-quality resampler (soxr).

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
    orig_sample_rate, target_sample_rate : int
        Rates in Hz.

    Returns
    -------
    np.ndarray, shape (round(samples * target / orig),), float32
    """
    if orig_sample_rate == target_sample_rate:
        return waveform.astype(np.float32, copy=False)
    import soxr  # a librosa dependency; imported here to keep import time low

    return soxr.resample(waveform, orig_sample_rate, target_sample_rate, quality="HQ").astype(
        np.float32, copy=False
    )


def decode_audio(
    source: AudioSource,
    *,
    sample_rate: int,
    name: str | None = None,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode a file path, bytes or file object into mono float32 at ``sample_rate``.

    Parameters
    ----------
    source : path, bytes or binary file object
        The encoded audio. Its extension is never trusted: the content decides.
    sample_rate : int
        Output rate in Hz.
    name : str, optional
        Shown in error messages (defaults to the path, or "upload"); only a label, never
        opened or interpreted as a path.
    max_seconds : float, optional
        Refuse longer audio (default: :func:`max_audio_seconds`).

    Returns
    -------
    np.ndarray, shape (samples,), float32
        Mono audio (channels averaged), values as decoded (nominally within [-1, 1]).

    Raises
    ------
    AudioDecodeError
        Empty, unreadable, too big (:func:`max_audio_bytes`), too long, at an unsupported
        sample rate, or non-finite audio, with a message that says what to do.
    """
    if name is None:
        name = str(source) if isinstance(source, str | os.PathLike) else "upload"
    limit = max_audio_seconds() if max_seconds is None else max_seconds
    data = _read_source(source, name=name)
    if not data:
        raise AudioDecodeError(f"{name}: the file is empty (0 bytes); choose a recording")
    for signature, kind in _NOT_AUDIO_SIGNATURES:
        if data.startswith(signature):
            raise AudioDecodeError(f"{name}: not a readable audio file (it is {kind}); {SUPPORTED}")
    try:
        waveform, rate = _decode_with_soundfile(data, name=name, limit=limit)
    except AudioDecodeError:
        raise
    except Exception:  # libsndfile cannot read it: WebM, M4A, or not audio at all
        waveform, rate = _decode_with_ffmpeg(data, name=name, limit=limit)
    if waveform.size == 0:
        raise AudioDecodeError(f"{name}: the file holds no audio samples (zero length); record or export it again")
    check_samples(waveform, name=name)
    return resample(waveform, orig_sample_rate=rate, target_sample_rate=sample_rate)
