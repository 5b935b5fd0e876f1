"""Shared fixtures: seeded synthetic audio, real example clips, a tiny trained bundle."""

from __future__ import annotations

import os
from pathlib import Path

# Tests import Keras directly (training a tiny bundle), not only through the library's
# ser.import_tensorflow_quietly, which sets the same level: the test run is an entry point.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from ser.testing import EXAMPLES, ROOT, synthetic_voice  # noqa: F401  (re-exported for the tests)

SHARED_DATA = ROOT.parent / "shared" / "data" / "ravdess"


@pytest.fixture(scope="session")
def example_clip() -> Path:
    return EXAMPLES / "03-01-05-02-01-01-12.flac"  # angry, actor 12


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A bundle shaped like the shipped one (log-mel CNN + functional view, fused), with a
    tiny CNN trained for one step and a functional model fitted on synthetic data."""
    from ser.config import FeatureConfig
    from ser.serving.bundle import save_bundle
    from ser.serving.functionals import n_functionals
    from ser.training.clips import ClipSet
    from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
    from ser.training.networks import build_fused, build_model
    from ser.training.views import fit_functional_member

    config = FeatureConfig(window_seconds=1.0, window_hop_seconds=0.5)
    model = build_model(window_frames=config.window_frames, n_mels=config.n_mels, width=8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, config.window_frames, config.n_mels)).astype(np.float32)
    y = {"emotion": rng.integers(0, 8, 8), "gender": rng.integers(0, 2, 8), "intensity": rng.integers(0, 2, 8)}
    model.fit(x, y, epochs=1, verbose=0)
    clips = 16
    synthetic = ClipSet(
        variants={1.0: []},
        emotion=np.arange(clips) % 8,
        gender=np.arange(clips) % 2,
        intensity=(np.arange(clips) // 2) % 2,
        actor=np.arange(clips) + 1,
        functionals={1.0: rng.standard_normal((clips, n_functionals(config))).astype(np.float32)},
    )
    functional = fit_functional_member(synthetic, c=0.01)
    path = tmp_path_factory.mktemp("bundle")
    save_bundle(
        model=build_fused([model], [functional]),
        path=path,
        config=config,
        labels={"emotion": list(EMOTIONS), "gender": list(GENDERS), "intensity": list(INTENSITIES)},
        calibration={"temperature": 1.5, "confidence_threshold": 0.3},
    )
    return path
