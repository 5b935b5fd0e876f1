"""Everything measured about one model bundle, as the model card, the README block and the Model page show it.

Example
-------
>>> from ser.reporting.model_results import load_model_results
>>> results = load_model_results("models")  # doctest: +SKIP
>>> round(results.training.cross_validation.accuracy, 3), results.notes  # doctest: +SKIP
(0.666, ())
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ser.config import read_json
from ser.errors import BundleError
from ser.reporting.bench_results import BENCH_COMMAND, DEFAULT_BENCH, BenchResults, load_bench
from ser.reporting.corpus_results import CorpusCheckResults
from ser.reporting.loco_results import LocoResults
from ser.reporting.profile_results import ProfileResults
from ser.reporting.provenance import model_sha256
from ser.reporting.results import (
    FILES,
    TRAIN_COMMAND,
    EvaluationResults,
    LevelCheckResults,
    RobustnessResults,
    SeedCheckResults,
    TrainingResults,
    load_corpus_check,
    load_evaluation,
    load_level_check,
    load_loco,
    load_profile,
    load_robustness,
    load_routing,
    load_seed_check,
    load_training,
)
from ser.reporting.routing_results import RoutingResults
from ser.reporting.schema import ResultsError
from ser.reporting.unfamiliarity_results import UnfamiliarityResults, load_unfamiliarity_results
from ser.serving.unfamiliarity import DEFAULT_UNFAMILIARITY


@dataclasses.dataclass(frozen=True)
class ModelResults:
    """The result files of a bundle that describe its ``model.keras``; ``notes`` say what was left out.

    ``features`` is the bundle's ``config.json`` feature configuration (``{}`` without one);
    ``unfamiliarity`` what the bundle's "unlike the training data" warning was measured to do (None
    without ``unfamiliarity.npz``). ``folder_bytes``: every file of the bundle's folder, as it ships (the
    second model, the detector and the result files beside ``model.keras``).
    """

    training: TrainingResults
    features: dict[str, Any]
    evaluation: EvaluationResults | None
    robustness: RobustnessResults | None
    seed_check: SeedCheckResults | None
    level_check: LevelCheckResults | None
    corpus_check: CorpusCheckResults | None
    bench: BenchResults | None
    notes: tuple[str, ...]
    unfamiliarity: UnfamiliarityResults | None = None
    routing: RoutingResults | None = None
    profile: ProfileResults | None = None
    loco: LocoResults | None = None
    folder_bytes: int = 0


def load_model_results(folder: Path | str, *, bench: Path | None = DEFAULT_BENCH) -> ModelResults:
    """Read ``folder/metrics.json`` and every other result file that exists (and ``bench``).

    A file measured on another model than ``folder/model.keras`` (or, without that file, than
    the one ``metrics.json`` describes) is left out, with a note naming the command that remeasures it;
    so is an ``unfamiliarity.npz`` without readable measured figures.

    Raises
    ------
    ResultsError
        When ``metrics.json`` is missing, or a file that exists does not match its schema.
    """
    folder = Path(folder)
    training = load_training(folder / FILES[TrainingResults][0])
    model_file = folder / "model.keras"
    current = model_sha256(model_file) if model_file.is_file() else training.model_sha256
    notes = []
    if training.model_sha256 != current:
        notes.append(f"metrics.json describes another model.keras than this one; rerun `{TRAIN_COMMAND}`.")
    loaded: dict[str, Any] = {}
    for name, cls, loader in (
        ("evaluation", EvaluationResults, load_evaluation),
        ("robustness", RobustnessResults, load_robustness),
        ("seed_check", SeedCheckResults, load_seed_check),
        ("level_check", LevelCheckResults, load_level_check),
        ("corpus_check", CorpusCheckResults, load_corpus_check),
        ("profile", ProfileResults, load_profile),
        ("loco", LocoResults, load_loco),
    ):
        filename, command = FILES[cls]
        results = loader(folder / filename) if (folder / filename).is_file() else None
        if results is not None and results.model_sha256 != current:
            notes.append(f"{filename} was measured on another model.keras and is not shown; rerun `{command}`.")
            results = None
        loaded[name] = results
    bench_results = load_bench(bench) if bench is not None and Path(bench).is_file() else None
    if bench_results is not None and bench_results.model_sha256 not in (None, current):
        notes.append(f"{Path(bench).name} of the bench was measured on another model.keras and is not shown; "
                     f"rerun `{BENCH_COMMAND}`.")
        bench_results = None
    config = folder / "config.json"
    features = read_json(config).get("features", {}) if config.is_file() else {}
    unfamiliarity = None
    detector = folder / DEFAULT_UNFAMILIARITY.name
    if detector.is_file():  # its figures describe the detector, which reads functionals, not model.keras
        try:
            unfamiliarity = load_unfamiliarity_results(detector)
        except (BundleError, ResultsError) as error:
            notes.append(f"The warning's measured figures are not shown: {error}")
    routing = None
    routing_file, routing_command = FILES[RoutingResults]
    joint_file = folder / "joint_views.keras"
    if (folder / routing_file).is_file():
        routing = load_routing(folder / routing_file)
        joint = model_sha256(joint_file) if joint_file.is_file() else None
        if routing.model_sha256 != current or routing.joint_views_sha256 != joint:
            notes.append(f"{routing_file} was measured on another model.keras or joint_views.keras and is not shown; "
                         f"rerun `{routing_command}`.")
            routing = None
    # The card itself is left out: its size would depend on the figure it prints.
    shipped = sum(path.stat().st_size for path in folder.iterdir() if path.is_file() and path.name != "MODEL_CARD.md")
    return ModelResults(training=training, features=features, bench=bench_results, notes=tuple(notes),
                        unfamiliarity=unfamiliarity, routing=routing, folder_bytes=shipped, **loaded)
