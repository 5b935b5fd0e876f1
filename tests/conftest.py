"""Shared fixtures: seeded synthetic audio, real example clips, a tiny trained bundle."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
SHARED_DATA = ROOT.parent / "shared" / "data" / "ravdess"


def synthetic_voice(
    *, seconds: float = 2.0, sample_rate: int = 16000, pitch: float = 140.0, seed: int = 0
) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal with a little noise (float32, peak ~0.5)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    vibrato = pitch * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(vibrato) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    signal = voice * syllables + 0.01 * rng.standard_normal(t.size)
    return (0.5 * signal / np.max(np.abs(signal))).astype(np.float32)


@pytest.fixture(scope="session")
def example_clip() -> Path:
    return EXAMPLES / "03-01-05-02-01-01-12.flac"  # angry, actor 12


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A bundle with a tiny model trained for one step on synthetic data."""
    from ser.config import FeatureConfig
    from ser.data import EMOTIONS, GENDERS, INTENSITIES
    from ser.inference import save_bundle
    from ser.model import build_model

    config = FeatureConfig(window_seconds=1.0, window_hop_seconds=0.5)
    model = build_model(window_frames=config.window_frames, n_mels=config.n_mels, width=8, frontend_2d=False)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, config.window_frames, config.n_mels)).astype(np.float32)
    y = {"emotion": rng.integers(0, 8, 8), "gender": rng.integers(0, 2, 8), "intensity": rng.integers(0, 2, 8)}
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("bundle")
    save_bundle(
        model=model,
        path=path,
        config=config,
        labels={"emotion": list(EMOTIONS), "gender": list(GENDERS), "intensity": list(INTENSITIES)},
        calibration={"temperature": 1.5, "confidence_threshold": 0.3},
    )
    return path
