"""The worker that scores batches of files: one bundle load, then any number of batches.

The same class serves both engines. In one process it is called with lists of paths; on Ray
Data it is the callable class of ``map_batches``: each actor of the pool builds one (loading
the bundle once) and is called with batches of the ``path`` column, and it returns each
file's row and timeline rows as JSON text (exact for floats: ``json`` writes the shortest
repr that reads back to the same float64), which the driver parses and writes.

Example
-------
>>> from ser.batch.scorer import Scorer
>>> scorer = Scorer(bundle="models", timeline=False)
>>> [result.prediction.emotion for result in scorer.score(["assets/examples/03-01-05-02-01-01-12.flac"])]
['angry']
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ser.batch.results import FileResult, Layout, SpeakerReference, score_file
from ser.serving.joint_views import JOINT_MODEL_FILE, JOINT_SETTINGS_FILE

#: Files a bundle needs (see :func:`ser.serving.bundle.load_bundle`), shipped to every worker.
BUNDLE_FILES = ("model.keras", "labels.json", "config.json")
#: Files shipped too when the bundle has them: the "unlike the training data" detector and the joint
#: views that answer such inputs (:mod:`ser.serving.joint_views`), so a worker's rows carry the same
#: ``unfamiliar`` and ``answered_by`` columns and answers as ``predict``'s.
OPTIONAL_BUNDLE_FILES = ("unfamiliarity.npz", JOINT_MODEL_FILE, JOINT_SETTINGS_FILE)


def read_bundle_files(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """The bundle's files as bytes, so workers on other machines need no copy on disk.

    Raises
    ------
    SERError
        If a file is missing (the message says how to make the bundle).
    """
    from ser.errors import BundleError

    path = Path(path)
    files = {}
    for name in BUNDLE_FILES:
        if not (path / name).is_file():
            raise BundleError(f"{path / name} is missing; train with `python -m ser train --out {path}`")
        files[name] = (path / name).read_bytes()
    for name in OPTIONAL_BUNDLE_FILES:
        if (path / name).is_file():
            files[name] = (path / name).read_bytes()
    return files


def blas_threads(count: int) -> Any:
    """Limit numpy's and scipy's BLAS to ``count`` threads (a context manager; applied at once).

    The features' matrix products are small and gain nothing from BLAS threads, while
    OpenBLAS's idle threads spin: on the shared two-core machine, one-process scoring ran
    about 1.5x faster with one BLAS thread (what Ray's ``OMP_NUM_THREADS=1`` gives its
    workers). A no-op when threadpoolctl (a scikit-learn dependency) is absent.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=count, user_api="blas")


def _limit_threads(threads: int) -> None:
    """Use ``threads`` cores for the model (before TensorFlow starts its thread pools).

    A Ray worker owns the cores it reserved; TensorFlow would otherwise start one thread per
    core of the machine in every worker, and N workers would fight over the same cores.
    """
    from ser import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran in this process: its pools are fixed
        pass


class Scorer:
    """Loads a bundle once and scores batches of files.

    Parameters
    ----------
    bundle : path, dict of bytes, or a loaded Bundle
        A bundle folder, its files' bytes (from :func:`read_bundle_files`; how Ray workers
        get it), or an already loaded :class:`~ser.serving.bundle.Bundle`.
    timeline : bool
        Also score recordings longer than one model window window by window.
    reference : SpeakerReference, optional
        Calibrate every answer to this speaker (the adaptation is computed once, here).
    threads : int, optional
        Cores TensorFlow may use in this worker (default: all).
    """

    def __init__(self, *, bundle: Any, timeline: bool, reference: SpeakerReference | None = None,
                 threads: int | None = None) -> None:
        from ser.serving.bundle import Bundle, load_bundle

        if threads:
            _limit_threads(threads)
            self._blas_limit = blas_threads(threads)  # for the worker's lifetime
        if isinstance(bundle, Bundle):
            self.bundle = bundle
        elif isinstance(bundle, dict):
            folder = tempfile.mkdtemp(prefix="ser-bundle-")
            try:
                for name, content in bundle.items():
                    Path(folder, name).write_bytes(content)
                self.bundle = load_bundle(folder)
                _ = self.bundle.unfamiliarity_detector  # read now: the folder goes next
                _ = self.bundle.joint_views  # likewise (loaded on first use elsewhere)
            finally:
                shutil.rmtree(folder, ignore_errors=True)  # the model is in memory now
        else:
            self.bundle = load_bundle(bundle)
        self.layout = Layout.for_run(self.bundle.labels, reference=reference)
        self.timeline = timeline
        self.adaptation = reference.adaptation(self.bundle) if reference is not None else None

    def score(self, paths: list[str]) -> list[FileResult]:
        """One result per path, in order (failures included, never raised)."""
        return [score_file(self.bundle, str(path), timeline=self.timeline, adaptation=self.adaptation)
                for path in paths]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data entry point: ``{"path": (n,)}`` in, ``{"row": (n,), "timeline": (n,)}`` JSON out."""
        results = self.score([str(path) for path in batch["path"]])
        rows = [json.dumps(self.layout.row(result), ensure_ascii=False) for result in results]
        timelines = [json.dumps(self.layout.timeline_rows(result), ensure_ascii=False) for result in results]
        return {"row": np.array(rows, dtype=object), "timeline": np.array(timelines, dtype=object)}
