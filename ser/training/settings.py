"""Hyper-parameters of one training run, saved in ``models/metrics.json`` (``training.settings``).

Example
-------
>>> from ser.training.settings import TrainSettings
>>> settings = TrainSettings(epochs=2)
>>> TrainSettings.from_dict(settings.to_dict()) == settings
True
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of the shipped recipe (the defaults are what ships).

    The recipe itself is fixed: the CNN trains on speech and song clips with SpecAugment and is
    refitted on training + validation actors; the functional and voice-source views learn from
    speed copies and a noisy/reverberant room copy of every speech clip (and, with
    ``word_crop_probability`` above 0, a word-length cut of it).
    """

    n_folds: int = 5
    seed: int = 0
    epochs: int = 100
    patience: int = 15
    batch_size: int = 32
    learning_rate: float = 2e-3
    width: int = 96
    dropout: float = 0.3
    speed_probability: float = 0.5
    noise_probability: float = 0.5
    warp_probability: float = 0.5
    max_warp: float = 0.1
    #: L2 strengths tried for the functional view's logistic regression; each fold picks
    #: the one best on its validation actors, then refits on training + validation actors.
    functional_c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03)
    #: The same for the voice-source view (pitch, jitter, shimmer, HNR, voicing functionals
    #: only; ser.serving.functionals.VOICING_MARKERS).
    voicing_c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
    #: Several corpora only: ``(corpus, weight)`` pairs scaling each corpus's share of the emotion
    #: loss (CNN and linear views, training and validation); corpora not named weigh 1, so the
    #: default counts every corpus the same (``--corpus-weight ravdess=2`` gives RAVDESS twice ASED's).
    corpus_weights: tuple[tuple[str, float], ...] = ()
    #: Several corpora only: the corpora whose clips the log-mel CNN trains, early-stops and is
    #: refitted on (``--cnn-corpus ravdess``); the linear views still learn from every corpus and the
    #: CNN still scores every clip (its softmax covers all eight emotions). Empty: every corpus.
    cnn_corpora: tuple[str, ...] = ()
    #: Share of the CNN's training windows cut from one word-length span (0.5-1.2 s) of a clip and
    #: wrapped to fill the window by :func:`ser.serving.features.window_features`, as a single word
    #: is served; above 0 the linear views also learn from one word-length cut of every speech clip
    #: (``--word-crops``). 0: sentences only.
    word_crop_probability: float = 0.0

    def corpus_weight_map(self) -> dict[str, float]:
        """:attr:`corpus_weights` as ``corpus -> weight``."""
        return {str(corpus): float(weight) for corpus, weight in self.corpus_weights}

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dictionary (tuples become lists)."""
        def listed(value: Any) -> Any:
            return [listed(item) for item in value] if isinstance(value, tuple) else value

        return {key: listed(value) for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainSettings:
        """Rebuild settings from :meth:`to_dict` output (e.g. ``metrics.json``), refusing unknown keys.

        Raises
        ------
        ValueError
            When a key is not a setting of this version: the file was written by another version
            of ``ser``; retrain with ``python -m ser train`` or check out the matching code.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"training settings {unknown} are not settings of this version of ser; the results were "
                "written by another version: retrain with `python -m ser train` or use the code that wrote them"
            )
        def frozen(value: Any) -> Any:  # JSON lists back to the tuples of the fields (pairs too)
            return tuple(frozen(item) for item in value) if isinstance(value, list) else value

        return cls(**{key: frozen(value) for key, value in values.items()})
