"""Batch scoring of many files into one results table: ``python -m ser batch``.

Sources (folders, globs, manifests) are expanded to audio files (:mod:`ser.batch.sources`);
files already in the output are skipped; the rest are scored in this process or on a Ray
Data pool of actors (:mod:`ser.batch.runner`, :mod:`ser.batch.ray_engine`), each file as
``python -m ser predict`` scores it (:mod:`ser.batch.results`), and written batch by batch
as Parquet, CSV or JSON lines (:mod:`ser.batch.writers`). Ray is optional and imported
only when a batch runs on it. User guide: ``docs/batch.md``.

Example
-------
>>> from ser.batch import BatchSettings, run_batch
>>> report = run_batch(["assets/examples"], settings=BatchSettings(out="results.csv"))
>>> print("\\n".join(report.summary()))  # doctest: +SKIP
"""

from ser.batch.runner import BatchReport, BatchSettings, run_batch

__all__ = ["BatchReport", "BatchSettings", "run_batch"]
