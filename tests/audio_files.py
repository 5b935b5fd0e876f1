"""Generate encoded audio files in every supported format, for tests."""

from __future__ import annotations

import io

import numpy as np
import soundfile

# (label, soundfile format, subtype) for formats libsndfile writes.
SOUNDFILE_FORMATS = [
    ("wav-pcm8", "WAV", "PCM_U8"),
    ("wav-pcm16", "WAV", "PCM_16"),
    ("wav-pcm24", "WAV", "PCM_24"),
    ("wav-pcm32", "WAV", "PCM_32"),
    ("wav-float", "WAV", "FLOAT"),
    ("flac", "FLAC", "PCM_16"),
    ("ogg-vorbis", "OGG", "VORBIS"),
    ("ogg-opus", "OGG", "OPUS"),
    ("mp3", "MP3", "MPEG_LAYER_III"),
]
# (label, container, codec) for what browsers record, written with PyAV's FFmpeg.
FFMPEG_FORMATS = [("webm-opus", "webm", "libopus"), ("m4a-aac", "ipod", "aac")]


def encode_soundfile(waveform: np.ndarray, *, sample_rate: int, format: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, format=format, subtype=subtype)
    return buffer.getvalue()


def encode_ffmpeg(waveform: np.ndarray, *, sample_rate: int, container: str, codec: str) -> bytes:
    """Encode mono float audio with PyAV (resampled by the encoder's rate if needed)."""
    import av

    from ser.serving.audio import resample

    rate = 48000 if codec == "libopus" else 44100
    samples = resample(waveform.astype(np.float32), orig_sample_rate=sample_rate, target_sample_rate=rate)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.layout = "mono"
        sample_format = stream.codec_context.format.name
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, samples.size, frame_size):
            chunk = samples[start : start + frame_size]
            chunk = np.pad(chunk, (0, frame_size - chunk.size))
            if sample_format.startswith("s16"):
                chunk = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format=sample_format, layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def encode(label: str, waveform: np.ndarray, *, sample_rate: int) -> bytes:
    """Encode ``waveform`` in the format named ``label`` (see the two tables above)."""
    for name, format_, subtype in SOUNDFILE_FORMATS:
        if name == label:
            return encode_soundfile(waveform, sample_rate=sample_rate, format=format_, subtype=subtype)
    for name, container, codec in FFMPEG_FORMATS:
        if name == label:
            return encode_ffmpeg(waveform, sample_rate=sample_rate, container=container, codec=codec)
    raise KeyError(label)


ALL_FORMATS = [name for name, *_ in SOUNDFILE_FORMATS] + [name for name, *_ in FFMPEG_FORMATS]
