"""The frozen feature configuration saved next to every model.

The configuration is written to ``models/config.json`` under the key ``"features"`` when a
model is trained, and rebuilt from that file when it is loaded, so the app always computes
exactly the features the model was trained on. Derived sizes are properties, never stored.

Example
-------
>>> from ser.config import FeatureConfig
>>> config = FeatureConfig()
>>> config.window_frames
301
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ser.errors import BundleError


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Everything that turns a waveform into the model's input.

    Attributes
    ----------
    sample_rate : int
        Rate every clip is resampled to before features (Hz).
    n_fft : int
        FFT size in samples.
    win_length : int
        Analysis window in samples (25 ms at 16 kHz).
    hop_length : int
        Hop between frames in samples (10 ms at 16 kHz).
    n_mels : int
        Number of mel bands.
    fmin, fmax : float
        Mel filterbank range in Hz.
    window_seconds : float
        Length of the window the model scores at once; longer clips are scored as
        overlapping windows and averaged.
    window_hop_seconds : float
        Hop between windows when a clip is longer than one window.
    trim_top_db : float
        Leading and trailing audio quieter than this many dB below the peak is trimmed.
    min_speech_seconds : float
        Clips with less voiced audio than this after trimming are refused as "no speech".
    functionals : str
        openSMILE functional set of the model's second, clip-level view (see
        :mod:`ser.serving.functionals`), or "" for a log-mel-only model.
    functionals_rms : float
        RMS level every clip is scaled to before its functionals (0 = as recorded): the
        recording level says more about the microphone and distance than about emotion.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    window_seconds: float = 3.0
    window_hop_seconds: float = 1.0
    trim_top_db: float = 40.0
    min_speech_seconds: float = 0.3
    functionals: str = "ComParE_2016"
    functionals_rms: float = 0.05

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ValueError("sample_rate, hop_length and n_mels must be positive")
        if self.fmax > self.sample_rate / 2:
            raise ValueError(
                f"fmax={self.fmax} Hz is above the Nyquist frequency of "
                f"{self.sample_rate} Hz audio; lower fmax or raise sample_rate"
            )
        if self.win_length > self.n_fft:
            raise ValueError("win_length must not exceed n_fft")

    @property
    def window_samples(self) -> int:
        """Samples in one model window."""
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def window_frames(self) -> int:
        """Feature frames in one model window (centred STFT frames)."""
        return 1 + self.window_samples // self.hop_length

    @property
    def window_hop_frames(self) -> int:
        """Feature frames between the starts of two consecutive windows."""
        return max(1, int(round(self.window_hop_seconds * self.sample_rate / self.hop_length)))

    @property
    def frames_per_second(self) -> float:
        """Feature frames per second of audio."""
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureConfig:
        """Rebuild a config from :meth:`to_dict` output, refusing unknown keys."""
        # Configs saved before the functionals view existed describe log-mel-only models.
        values = {"functionals": "", "functionals_rms": 0.0, **values}
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BundleError(
                f"config has unknown feature settings {unknown}; the model was saved by a "
                "newer version of ser: update the code or retrain the model"
            )
        return cls(**values)


def read_json(path: Path) -> Any:
    """Read a JSON file with an error that names the file when it is missing or broken."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BundleError(f"{path} is missing; train a model with `python -m ser train`") from error
    except json.JSONDecodeError as error:
        raise BundleError(f"{path} is not valid JSON ({error}); restore it or retrain") from error


def write_json(path: Path, value: Any) -> None:
    """Write JSON with stable formatting (sorted keys would reorder labels, so not sorted)."""
    Path(path).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
