"""What every result file records about where its numbers come from: the model, the time, the packages.

Example
-------
>>> from ser.reporting.provenance import model_sha256, utc_now
>>> model_sha256("models/model.keras")  # doctest: +SKIP
'ec0d6ba29886c49b294b32490ec0621253f7e08323f20975d74d26cb970f1a63'
>>> utc_now()  # doctest: +SKIP
'2026-11-22 15:16 UTC'
"""

from __future__ import annotations

import datetime
import hashlib
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def model_sha256(path: Path | str) -> str:
    """SHA-256 (hex) of a ``model.keras`` file: the identifier every result file records."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def utc_now() -> str:
    """The current time as result files record it, e.g. ``2026-11-22 15:16 UTC``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide the numbers."""
    versions = {"python": platform.python_version()}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "numpy", "librosa", "scikit-learn", "soundfile"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions
