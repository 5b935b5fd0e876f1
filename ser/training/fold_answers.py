"""Every fold's answers: the fused out-of-fold answers the bundle keeps, and per-view answers for studies.

``python -m ser train`` writes ``out_of_fold.npz`` into the bundle (:func:`write_out_of_fold`): every
scored clip's answer from the fold model that never heard its speaker, before and after the temperature.
``python -m ser routing`` scores the shipped router on them (:func:`read_out_of_fold`).

``python -m ser train ... --save-fold-answers runs/fold_answers.npz`` writes them beside the bundle's
own results. The shipped fusion is the equal-weight normalised geometric mean of the views, window by
window; with these answers a study can refit it (weights, temperatures) on the validation speakers of
every corpus and score the result on the test speakers, without training anything again.

Example
-------
>>> import numpy as np
>>> from ser.training.fold_answers import view_names
>>> view_names({"fold0/test/functionals": np.zeros(1), "fold0/test/log_mel_cnn": np.zeros(1)})
['functionals', 'log_mel_cnn']
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ser.training.clips import ClipSet
from ser.training.cross_validation import CrossValidationRun


def fold_answer_arrays(run: CrossValidationRun, clips: ClipSet, *, index: pd.DataFrame) -> dict[str, np.ndarray]:
    """The arrays :func:`save_fold_answers` writes, by name.

    Parameters
    ----------
    run : CrossValidationRun
    clips : ClipSet
        The clips the run was trained on, in ``index`` order.
    index : pandas.DataFrame
        Their corpus table (``path``, ``corpus``, ``speaker``), one row per clip.

    Returns
    -------
    dict
        Per clip (shape ``(n_clips, ...)``): ``file_name``, ``corpus``, ``speaker``, ``targets``
        (bool, n_clips x n_emotions) and ``allowed`` (the emotions its corpus teaches). Per fold ``k``
        and part (``validation``, ``test``): ``fold{k}/{part}/positions`` (rows of the clip arrays),
        ``fold{k}/{part}/{view}`` (each view's probabilities, n x n_emotions, the CNN averaged over
        windows), ``fold{k}/{part}/cnn_windows`` and ``fold{k}/{part}/window_owners``.

    Raises
    ------
    ValueError
        If ``index`` and ``clips`` hold a different number of clips.
    """
    if len(index) != len(clips):
        raise ValueError(f"the index has {len(index)} rows but the clips {len(clips)}; pass the table they were "
                         "built from")
    allowed = clips.class_mask if clips.class_mask is not None else np.ones_like(clips.targets())
    arrays: dict[str, np.ndarray] = {**clip_identity(index), "targets": clips.targets(), "allowed": allowed}
    for fold in run.folds:
        parts = {
            "validation": (fold.validation_positions, fold.validation_view_probabilities, fold.validation_windows),
            "test": (fold.test_positions, fold.view_probabilities, fold.test_windows),
        }
        for part, (positions, views, (windows, owners)) in parts.items():
            prefix = f"fold{fold.fold}/{part}"
            arrays[f"{prefix}/positions"] = np.asarray(positions)
            arrays.update({f"{prefix}/{name}": np.asarray(values, dtype=np.float32) for name, values in views.items()})
            arrays[f"{prefix}/cnn_windows"] = np.asarray(windows, dtype=np.float32)
            arrays[f"{prefix}/window_owners"] = np.asarray(owners)
    return arrays


def clip_identity(index: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each clip's ``file_name``, ``corpus`` and ``speaker`` as fixed-width strings (the file loads with
    ``allow_pickle=False``), from a corpus table or from one RAVDESS folder's index (``actor`` numbers,
    named ``ravdess-07`` as the corpus table names them).

    >>> import pandas as pd
    >>> clip_identity(pd.DataFrame({"path": ["a/03-01-01-01-01-01-07.wav"], "actor": [7]}))["speaker"].tolist()
    ['ravdess-07']
    """
    if "speaker" in index:
        speakers = index["speaker"].astype(str).tolist()
    else:
        speakers = [f"ravdess-{int(actor):02d}" for actor in index["actor"]]
    return {
        "file_name": np.array([Path(path).name for path in index["path"]], dtype=str),
        "corpus": np.asarray(index["corpus"].astype(str).tolist() if "corpus" in index else ["ravdess"] * len(index),
                             dtype=str),
        "speaker": np.asarray(speakers, dtype=str),
    }


def save_fold_answers(run: CrossValidationRun, clips: ClipSet, *, index: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`fold_answer_arrays` to ``path`` (``.npz``, compressed; no pickled objects)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **fold_answer_arrays(run, clips, index=index))
    return path


#: The bundle's file of out-of-fold answers (one writer: ``python -m ser train``).
OUT_OF_FOLD_FILE = "out_of_fold.npz"


@dataclasses.dataclass(frozen=True)
class OutOfFold:
    """Every scored clip's out-of-fold answer, one row per clip (``n_clips``).

    ``raw`` and ``probabilities`` (n_clips x n_emotions) are the fused answer before and after the
    calibration ``temperature``; ``file_name``, ``corpus`` and ``speaker`` name the clip.
    """

    file_name: np.ndarray
    corpus: np.ndarray
    speaker: np.ndarray
    raw: np.ndarray
    probabilities: np.ndarray
    temperature: float


def out_of_fold(run: CrossValidationRun, *, index: pd.DataFrame, temperature: float) -> OutOfFold:
    """The fused test answers of every fold of ``run`` (clips of ``index``, in fold order), tempered."""
    from ser.serving.calibration import apply_temperature

    positions = np.concatenate([fold.test_positions for fold in run.folds])
    raw = np.concatenate([fold.test_probabilities["emotion"] for fold in run.folds]).astype(np.float64)
    identity = clip_identity(index.iloc[positions].reset_index(drop=True))
    return OutOfFold(**identity, raw=raw, probabilities=apply_temperature(raw, temperature=temperature),
                     temperature=float(temperature))


def write_out_of_fold(answers: OutOfFold, folder: str | Path, *, name: str = OUT_OF_FOLD_FILE) -> Path:
    """Write ``answers`` as ``folder/name`` (no pickled objects) and return its path."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **dataclasses.asdict(answers))
    return path


def read_out_of_fold(folder: str | Path, *, name: str = OUT_OF_FOLD_FILE) -> OutOfFold:
    """The :class:`OutOfFold` answers written into ``folder`` as ``name`` (the main model's by default).

    Raises
    ------
    ser.errors.SERError
        If the bundle has none: ``python -m ser train`` writes the main model's, ``python -m ser joint-views``
        the joint views'.
    """
    from ser.errors import SERError

    path = Path(folder) / name
    if not path.is_file():
        producer = "python -m ser train" if name == OUT_OF_FOLD_FILE else "python -m ser joint-views"
        raise SERError(f"{path} is missing: {producer} writes it with the bundle")
    with np.load(path, allow_pickle=False) as saved:
        return OutOfFold(**{field.name: saved[field.name] for field in dataclasses.fields(OutOfFold)
                            if field.name != "temperature"}, temperature=float(saved["temperature"]))


def view_names(arrays: dict[str, np.ndarray], *, fold: int = 0, part: str = "test") -> list[str]:
    """The views a saved file holds answers of (sorted), read from its ``fold{k}/{part}/`` names."""
    prefix = f"fold{fold}/{part}/"
    extra = {"positions", "cnn_windows", "window_owners"}
    return sorted(name[len(prefix):] for name in arrays if name.startswith(prefix) and name[len(prefix):] not in extra)
