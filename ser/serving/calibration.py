"""Temperature scaling of probabilities, applied by the bundle to every answer.

The temperature is fitted in training (:func:`ser.reporting.metrics.fit_temperature`) and
stored in ``config.json``.

Example
-------
>>> import numpy as np
>>> from ser.serving.calibration import apply_temperature
>>> apply_temperature(np.array([[0.8, 0.2]]), temperature=1.0).round(2)
array([[0.8, 0.2]])
"""

from __future__ import annotations

import numpy as np


def apply_temperature(probabilities: np.ndarray, *, temperature: float) -> np.ndarray:
    """Rescale probabilities as ``softmax(log(p) / temperature)`` (shape preserved)."""
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)
