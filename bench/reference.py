"""The reference pipeline, built the way the seed projects built theirs.

Those projects load a clip with ``librosa.load(path, sr=22050)`` (resampling every file),
average 40 MFCCs over time into a ``(40, 1)`` "sequence", and run an 8-layer Conv1D
(256-256-128-128-128-128-64-64 filters, kernel 8, two max-pools of 8, softmax over 8
emotions) with ``model.predict`` on one sample at a time. The weights here are untrained:
only the speed is compared, on the same clips, in the same process.

One necessary difference: with a 40-step input, two valid max-pools of 8 would leave a
zero-length sequence (40 -> 5 -> 0), so the pools use ``padding="same"`` (40 -> 5 -> 1).
The network is :func:`ser.training.baselines.seed_conv1d_model`, the one recipe (b) trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

N_MFCC = 40
SAMPLE_RATE = 22050
N_EMOTIONS = 8


def build_reference_model(*, seed: int = 0) -> Any:
    """The seed projects' 8-layer Conv1D on ``(40, 1)`` mean MFCCs (untrained): the same
    builder as baseline recipe (b) in ``ser.training.baselines``, so the speed and the accuracy
    comparisons are about one model."""
    from ser.training.baselines import seed_conv1d_model

    model = seed_conv1d_model(n_mfcc=N_MFCC, seed=seed)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


class ReferencePipeline:
    """``librosa.load`` at 22.05 kHz + 40 mean MFCCs + ``model.predict`` on one sample."""

    def __init__(self, model: Any | None = None) -> None:
        self.model = model if model is not None else build_reference_model()

    @staticmethod
    def features(path: str | Path) -> np.ndarray:
        import librosa

        waveform, rate = librosa.load(path, sr=SAMPLE_RATE)
        return np.mean(librosa.feature.mfcc(y=waveform, sr=rate, n_mfcc=N_MFCC), axis=1)

    def predict_path(self, path: str | Path) -> np.ndarray:
        """Probabilities ``(8,)`` for one file, exactly as the seed projects score it."""
        x = self.features(path).reshape(1, N_MFCC, 1)
        return self.model.predict(x, verbose=0)[0]
