"""Doctests of ``ser/`` run in a temporary folder, so the files their examples write (batch
results, for instance) never land in the checkout; ``assets/`` and ``models/`` are linked there for the examples."""

import os
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

ROOT = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _doctests_run_in_a_temporary_folder(request: pytest.FixtureRequest, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if isinstance(request.node, DoctestItem):
        for folder in ("assets", "models"):
            (tmp_path / folder).symlink_to(ROOT / folder)
        monkeypatch.chdir(tmp_path)
        # Ray's workers start in the driver's environment; they find the package by path, not by cwd.
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
