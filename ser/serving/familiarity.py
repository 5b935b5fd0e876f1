"""How familiar does a clip sound to the model? An out-of-distribution score with a measured threshold.

The model learned from 20 North American actors reading two English sentences in a studio.
On audio unlike that it can be confident and wrong, so the app warns when a clip's acoustics
fall outside the training range. Measured (``docs/familiarity.md``): with 5 components the score
flags a third of synthetic music and steady tones but almost no Amharic speech, espeak-ng speech,
telephone-band or laptop-microphone copies: it is a "not a speaking voice" score only. The app's
warning is :mod:`ser.serving.unfamiliarity` (four checks; its ``not_speech`` check is this score with
20 components).
The score uses the 6373 openSMILE ComParE functionals the bundle computes anyway:

1. standardise them with the model's own training mean and scale (the ``standardize``
   layers of the shipped model's functional members, averaged, clipped to +-8 as the
   model clips them);
2. project onto the first ``k`` principal components of the standardised RAVDESS speech
   functionals (actors 1-20) and take the Mahalanobis distance there, plus the energy left
   outside those components scaled by its training mean as one more dimension:
   ``score = sqrt(sum_i z_i**2 / variance_i + residual**2 / mean_training_residual**2)``;
3. compare with a threshold set on held-out RAVDESS speakers (actors left out of the PCA fit,
   grouped 5-fold by actor): the 99th percentile of their scores.

The basis and threshold are written by ``python -m ser familiarity --data ../shared/data --out models/``
to ``models/familiarity.json`` (plain float lists); what it flags is measured in
``docs/familiarity.md``.

Example
-------
>>> from ser.serving.bundle import load_bundle
>>> from ser.serving.familiarity import load_familiarity
>>> bundle = load_bundle()
>>> familiarity = load_familiarity(model=bundle.model)
>>> recording = bundle.recording(waveform, sample_rate=16000)        # doctest: +SKIP
>>> familiarity.assess(functionals_of_the_utterance).familiar         # doctest: +SKIP
True
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

#: Where the experiment writes the basis and threshold (next to model.keras).
DEFAULT_FAMILIARITY = Path(__file__).resolve().parents[2] / "models" / "familiarity.json"
#: One sentence on what voices the model knows (Home and Analyze can show it).
KNOWN_VOICES = (
    "The model learned from 20 North American actors (10 women, 10 men) saying two English "
    "sentences in a studio; other languages, phone lines, synthetic voices and music are unfamiliar to it."
)
#: What the user is told when a clip's score is above the threshold.
#: Measured (docs/familiarity.md): the score flags music and tones, not another language, a phone
#: line or synthetic speech, so the message claims no more than that.
UNFAMILIAR_MESSAGE = (
    "This recording sounds unlike the speech the model was trained on (it may be music or another "
    "sound rather than a speaking voice), so treat the answer with caution."
)
#: Prefix of the model's functional members, whose ``standardize`` layers hold the training mean and scale.
FUNCTIONAL_MEMBER_PREFIX = "functional_"


@dataclasses.dataclass(frozen=True)
class Familiarity:
    """How familiar one clip sounds.

    Attributes
    ----------
    score : float
        Distance from the training speech (about sqrt(k + 1) for a typical training clip).
    threshold : float
        Scores above this are unfamiliar (99th percentile of held-out RAVDESS speakers).
    familiar : bool
    message : str
        :data:`UNFAMILIAR_MESSAGE` when not familiar, else "".
    """

    score: float
    threshold: float
    familiar: bool
    message: str


@dataclasses.dataclass(frozen=True)
class FamiliarityModel:
    """Standardisation, principal components and threshold of the familiarity score.

    Attributes
    ----------
    mean, scale : np.ndarray, shape (n_functionals,)
        The model's training standardisation.
    limit : float
        Standardised values are clipped to +-limit (as the model's ``Standardize`` layer does).
    centre : np.ndarray, shape (n_functionals,)
        Mean of the standardised training functionals.
    components : np.ndarray, shape (k, n_functionals)
        Orthonormal principal axes.
    variances : np.ndarray, shape (k,)
        Training variance along each axis.
    residual_scale : float
        Root mean square of the training clips' distance from the ``k``-dimensional subspace.
    threshold : float
    """

    mean: np.ndarray
    scale: np.ndarray
    limit: float
    centre: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual_scale: float
    threshold: float

    def __post_init__(self) -> None:
        size = self.mean.shape[0]
        if self.scale.shape != (size,) or self.centre.shape != (size,) or self.components.shape[1:] != (size,):
            raise ValueError(
                f"familiarity model shapes disagree: mean {self.mean.shape}, scale {self.scale.shape}, "
                f"centre {self.centre.shape}, components {self.components.shape}; regenerate models/familiarity.json"
            )
        if self.variances.shape != (self.components.shape[0],) or np.any(self.variances <= 0):
            raise ValueError("familiarity variances must be positive, one per component")

    def scores(self, functionals: np.ndarray) -> np.ndarray:
        """Familiarity scores of clips.

        Parameters
        ----------
        functionals : np.ndarray, shape (n_clips, n_functionals) or (n_functionals,)
            ComParE functionals of each clip's trimmed utterance (as the bundle computes them).

        Returns
        -------
        np.ndarray, shape (n_clips,) (or a 0-d array for one clip), float64, finite.

        Raises
        ------
        ValueError
            If the width is not ``n_functionals`` or a value is not finite.
        """
        values, single = functional_rows(functionals, size=self.mean.size)
        standard = np.clip((values - self.mean) / self.scale, -self.limit, self.limit)
        result = principal_distance(standard - self.centre, components=self.components, variances=self.variances,
                                    residual_scale=self.residual_scale)
        return result[0] if single else result

    def assess(self, functionals: np.ndarray) -> Familiarity:
        """:class:`Familiarity` of one clip from its functionals, shape (n_functionals,)."""
        values = np.asarray(functionals)
        if values.ndim != 1:
            raise ValueError(f"assess takes one clip's functionals, shape ({self.mean.size},), got {values.shape}")
        score = float(self.scores(values))
        familiar = score <= self.threshold
        return Familiarity(score=score, threshold=self.threshold, familiar=familiar,
                           message="" if familiar else UNFAMILIAR_MESSAGE)


def functional_rows(functionals: np.ndarray, *, size: int) -> tuple[np.ndarray, bool]:
    """Clips' functionals as rows, shape (n_clips, size), float64, and whether one clip was given.

    Raises
    ------
    ValueError
        If the width is not ``size`` or a value is not finite.
    """
    values = np.asarray(functionals, dtype=np.float64)
    single = values.ndim == 1
    values = np.atleast_2d(values)
    if values.ndim != 2 or values.shape[1] != size:
        raise ValueError(f"functionals must have shape (n, {size}), got {np.shape(functionals)}")
    if not np.all(np.isfinite(values)):
        raise ValueError("functionals hold NaN or infinite values; compute them with acoustic_functionals")
    return values, single


def principal_distance(
    centred: np.ndarray, *, components: np.ndarray, variances: np.ndarray, residual_scale: float
) -> np.ndarray:
    """Mahalanobis distance in the principal components plus the energy outside them as one more
    dimension (scaled by its training RMS): the familiarity score and the "not speech" check.

    Parameters
    ----------
    centred : np.ndarray, shape (n_clips, n_functionals)
        Standardised functionals minus the training centre.
    components : np.ndarray, shape (n_components, n_functionals)
    variances : np.ndarray, shape (n_components,)

    Returns
    -------
    np.ndarray, shape (n_clips,), float64
    """
    projected = centred @ components.T
    residual = np.maximum(np.sum(centred**2, axis=1) - np.sum(projected**2, axis=1), 0.0)
    return np.sqrt(np.sum(projected**2 / variances, axis=1) + residual / residual_scale**2)


def standardizer_of(model: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """The training mean, scale and clip limit inside a loaded bundle's Keras model.

    The shipped model holds one ``standardize`` layer per functional member (each fitted on its
    own bootstrap of the training clips); their weights are averaged.

    Returns
    -------
    mean, scale : np.ndarray, shape (n_functionals,), float64
    limit : float

    Raises
    ------
    ValueError
        If the model has no functional member with a ``standardize`` layer.
    """
    means, scales, limits = [], [], []
    for member in getattr(model, "layers", []):
        if not member.name.startswith(FUNCTIONAL_MEMBER_PREFIX) or not hasattr(member, "get_layer"):
            continue
        layer = member.get_layer("standardize")
        means.append(np.asarray(layer.mean.numpy(), dtype=np.float64))
        scales.append(np.asarray(layer.scale.numpy(), dtype=np.float64))
        limits.append(float(layer.limit))
    if not means:
        raise ValueError(
            "the model has no functional member with a 'standardize' layer; the familiarity score needs "
            "a bundle that uses openSMILE functionals (config.functionals set)"
        )
    return np.mean(means, axis=0), np.mean(scales, axis=0), float(np.min(limits))


def fingerprint(mean: np.ndarray) -> float:
    """A number that changes when the model's standardisation does (stored to catch a stale file)."""
    return float(np.sum(np.log1p(np.abs(np.asarray(mean, dtype=np.float64)))))


def fit_familiarity(
    standardized: np.ndarray, *, n_components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Principal components of standardised training functionals.

    Parameters
    ----------
    standardized : np.ndarray, shape (n_clips, n_functionals)
        Training functionals, standardised and clipped as the model does.
    n_components : int
        ``k``, fewer than ``n_clips``.

    Returns
    -------
    centre : np.ndarray, shape (n_functionals,)
    components : np.ndarray, shape (k, n_functionals)
    variances : np.ndarray, shape (k,)
    residual_scale : float
    """
    if not 0 < n_components < standardized.shape[0]:
        raise ValueError(f"n_components must be between 1 and n_clips - 1, got {n_components}")
    centre = standardized.mean(axis=0)
    centred = standardized - centre
    # Eigenvectors of the clips' Gram matrix (n_clips x n_clips), not an SVD of the 6373-wide
    # matrix: the same axes, found in a fraction of the time.
    eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
    order = np.argsort(eigenvalues)[::-1][:n_components]
    singular = np.sqrt(np.maximum(eigenvalues[order], 1e-12))
    components = (vectors[:, order].T @ centred) / singular[:, None]
    variances = singular**2 / (standardized.shape[0] - 1)
    projected = centred @ components.T
    residual = np.sum(centred**2, axis=1) - np.sum(projected**2, axis=1)
    return centre, components, variances, float(np.sqrt(np.mean(np.maximum(residual, 0.0))))


def load_familiarity(path: str | Path = DEFAULT_FAMILIARITY, *, model: Any) -> FamiliarityModel:
    """Read ``models/familiarity.json`` and pair it with the bundle's standardisation.

    Parameters
    ----------
    path : path of the JSON file written by ``python -m ser familiarity``.
    model : the loaded bundle's Keras model (``bundle.model``).

    Raises
    ------
    FileNotFoundError
        If the file is missing (run the experiment).
    ValueError
        If the file was made for another model (its standardisation fingerprint differs) or is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no familiarity file; run python -m ser familiarity --data ../shared/data --out models/"
        )
    stored = json.loads(path.read_text())
    mean, scale, limit = standardizer_of(model)
    if not np.isclose(stored["fingerprint"], fingerprint(mean), rtol=1e-6):
        raise ValueError(f"{path} was computed for another model; rerun python -m ser familiarity")
    return FamiliarityModel(
        mean=mean,
        scale=scale,
        limit=limit,
        centre=np.asarray(stored["centre"], dtype=np.float64),
        components=np.asarray(stored["components"], dtype=np.float64),
        variances=np.asarray(stored["variances"], dtype=np.float64),
        residual_scale=float(stored["residual_scale"]),
        threshold=float(stored["threshold"]),
    )
