"""One command rebuilds what ships: every file in ``models/`` is written by a ``python -m ser`` command that
``make train`` runs, and every result file names that command (nothing in the bundle comes from ``experiments/``)."""

import contextlib
import io
import json
import re

import numpy as np
import pytest

from tests.test_results import ROOT

#: Each file of the shipped bundle and the subcommand that writes it.
PRODUCERS = {
    "model.keras": "train", "labels.json": "train", "config.json": "train", "metrics.json": "train",
    "MODEL_CARD.md": "train", "out_of_fold.npz": "train",
    "joint_views.keras": "joint-views", "joint_views.json": "joint-views", "joint_views_out_of_fold.npz": "joint-views",
    "evaluation.json": "evaluate", "loco.json": "loco",
    "familiarity.json": "familiarity", "cues.json": "familiarity", "unfamiliarity.npz": "unfamiliarity",
    "routing.json": "routing", "level_check.json": "level-check", "robustness.json": "robustness",
    "seed_check.json": "seed-check", "corpus_check.json": "corpus-check", "voice_profile.json": "profile-check",
}

def _recipe(makefile: str, target: str) -> str:
    """The recipe lines (tab-indented) of ``target`` in the Makefile."""
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    if match is None:
        raise AssertionError(f"the Makefile has no {target} target")
    return match.group(1)


def _commands_of(path) -> list[str]:
    """The producing command a result file records (JSON ``command``, or the detector's header)."""
    if path.suffix == ".json":
        values = json.loads(path.read_text(encoding="utf-8"))
        return [values["command"]] if isinstance(values, dict) and "command" in values else []
    if path.name == "unfamiliarity.npz":
        with np.load(path, allow_pickle=False) as stored:
            return [json.loads(str(stored["header"]))["command"]]
    return []


def test_every_file_in_models_comes_from_a_ser_command_that_make_train_runs():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    runs = _recipe(makefile, "train") + _recipe(makefile, "checks")
    shipped = sorted(path.name for path in (ROOT / "models").iterdir() if path.is_file())
    unknown = [name for name in shipped if name not in PRODUCERS]
    assert not unknown, f"models/ holds files no producer is listed for: {unknown}"
    for name in shipped:
        assert f"-m ser {PRODUCERS[name]} " in runs, f"make train does not run ser {PRODUCERS[name]} ({name})"
        for command in _commands_of(ROOT / "models" / name):
            assert command.startswith(f"python -m ser {PRODUCERS[name]} "), f"{name} says it came from {command!r}"
    assert "experiments" not in runs


@pytest.mark.parametrize("subcommand", sorted(set(PRODUCERS.values())))
def test_each_producer_is_a_subcommand(subcommand):
    from ser.__main__ import main

    with contextlib.redirect_stdout(io.StringIO()) as shown, pytest.raises(SystemExit) as leaving:
        main([subcommand, "--help"])
    assert leaving.value.code == 0 and "--out" in shown.getvalue()
