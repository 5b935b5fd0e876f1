"""Score files on Ray Data: a fixed pool of actors, each loading the bundle once.

The paths become a Ray dataset of small blocks; ``map_batches`` sends them through
:class:`~ser.batch.scorer.Scorer` actors (``compute=ActorPoolStrategy(size=workers)``, the
Ray 2.x way to ask for a pool of stateful workers), and the driver iterates the results as
they stream back, writing each batch before the next arrives. Ray is imported only here,
and only when a batch runs on it: ``python -m ser predict`` and the app never load it.

A local Ray is started for the run (``num_cpus = workers x cpus_per_worker``, no dashboard)
and stopped after it; with ``address`` (or ``RAY_ADDRESS`` set, as in a ``ray job submit``
job) the run joins an existing cluster instead, ships the ``ser`` package to it
(``runtime_env`` ``py_modules``) and sends the bundle's bytes to every actor, so the nodes
need the dependencies (requirements.txt) and the audio files at the same paths, not the
code or the model.

Example
-------
>>> from ser.batch.ray_engine import RayPipeline
>>> from ser.batch.runner import BatchSettings
>>> pipeline = RayPipeline(["/data/a.wav"], settings=BatchSettings(out="r.jsonl", workers=2), model="models")
>>> for rows, windows in pipeline:
...     pass
>>> pipeline.close()
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ser.batch.runner import Batch, BatchSettings
from ser.batch.scorer import Scorer, read_bundle_files

#: Object store of a local Ray: only paths and result rows travel through it (and the
#: bundle's ~10 MB once per actor), so a small store leaves memory to the workers.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2


def _quiet_ray_data() -> None:
    """Our progress bar and summary replace Ray Data's bars, their notices and execution logs."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


class RayPipeline:
    """Starts (or joins) Ray, builds the dataset, and yields written-ready batches.

    Parameters
    ----------
    paths : list of str
        Absolute paths to score (every worker must see them at these paths).
    settings : BatchSettings
        ``workers``, ``cpus_per_worker``, ``address``, ``batch_size``, ``timeline``, ``reference``.
    model : path
        The bundle folder (read here, sent to the actors as bytes).

    Attributes
    ----------
    workers : int
        Actors in the pool.
    """

    def __init__(self, paths: list[str], *, settings: BatchSettings, model: str | os.PathLike[str]) -> None:
        import ray

        bundle_files = read_bundle_files(model)  # fails fast, before Ray starts
        self._started_ray = False
        cpus = settings.cpus_per_worker
        if not ray.is_initialized():
            options: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.WARNING,
                                           log_to_driver=False)
            # RAY_ADDRESS is how `ray job submit` tells a job which cluster it runs on.
            address = settings.address or os.environ.get("RAY_ADDRESS") or None
            if address is not None:
                import ser

                ray.init(address=address,
                         runtime_env={"py_modules": [str(Path(ser.__file__).parent)],
                                      "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "3"}},
                         **options)
            else:
                # Ray 2.60 turns token authentication on for a new local cluster (a good default)
                # and logs a warning that it did, on every run: that notice is not for our users.
                logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
                workers = settings.workers or max(1, (os.cpu_count() or 1) // cpus)
                # "local": a new Ray of our own, even when `ray start` left a cluster on this machine.
                ray.init(address="local", num_cpus=workers * cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                         **options)
            self._started_ray = True
        try:
            self._dataset = self._build(paths, settings=settings, bundle_files=bundle_files)
        except BaseException:
            self.close()  # a local Ray started above would outlive the failed run
            raise

    def _build(self, paths: list[str], *, settings: BatchSettings, bundle_files: dict[str, bytes]) -> Any:
        import ray

        cpus = settings.cpus_per_worker
        self.workers = settings.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus)
        _quiet_ray_data()
        # Blocks of one batch each: actors take work a batch at a time, so a slow file only
        # holds back its own batch, and results stream back batch by batch.
        dataset = ray.data.from_items([{"path": path} for path in paths],
                                      override_num_blocks=math.ceil(len(paths) / settings.batch_size))
        # Ray Data puts the constructor arguments (the bundle's bytes among them) in the object
        # store once; each actor reads them when it starts. (Ray logs one core_worker line about
        # such arguments and actor restarts: Ray Data's own default, harmless here.)
        return dataset.map_batches(
            Scorer,
            batch_size=settings.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=cpus,
            fn_constructor_kwargs={"bundle": bundle_files, "timeline": settings.timeline,
                                   "reference": settings.reference, "threads": cpus},
            udf_modifying_row_count=False,
        )

    def __iter__(self) -> Iterator[Batch]:
        for batch in self._dataset.iter_batches(batch_size=None, batch_format="numpy"):
            rows = [json.loads(text) for text in batch["row"]]
            windows = [row for text in batch["timeline"] for row in json.loads(text)]
            yield rows, windows

    def close(self) -> None:
        """Stop the local Ray this run started (a cluster joined with ``address`` keeps running)."""
        import ray

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False
