"""The result files, one dataclass and one writer each, and their typed loaders.

Each file has one writer, one dataclass (its schema: the keys are the dataclass's fields, nested
the same way) and one loader:

- ``models/metrics.json``: ``python -m ser train``; :class:`TrainingResults`, :func:`load_training`.
- ``models/evaluation.json``: ``python -m ser evaluate``; :class:`EvaluationResults`, :func:`load_evaluation`.
- ``models/robustness.json``: ``python -m ser robustness``; :class:`RobustnessResults`, :func:`load_robustness`.
- ``models/seed_check.json``: ``python -m ser seed-check``; :class:`SeedCheckResults`, :func:`load_seed_check`.
- ``models/level_check.json``: ``python -m ser level-check``; :class:`LevelCheckResults`, :func:`load_level_check`.
- ``models/corpus_check.json``: ``python -m ser corpus-check``;
  :class:`ser.reporting.corpus_results.CorpusCheckResults`, :func:`load_corpus_check`.
- ``models/routing.json``: ``python -m ser routing``;
  :class:`ser.reporting.routing_results.RoutingResults`, :func:`load_routing`.
- ``models/loco.json``: ``python -m ser loco``; :class:`ser.reporting.loco_results.LocoResults`,
  :func:`load_loco`.
- ``bench/results.json``: ``python -m bench`` (``make bench``), which owns its larger format;
  :mod:`ser.reporting.bench_results` reads the part the model card shows.

Every file of ``models/`` records ``schema`` (its format, e.g. ``"training/1"``), ``model_sha256``
(the SHA-256 of the ``model.keras`` it measured), ``measured`` (UTC time), ``command`` (what
reproduces it) and ``versions`` (the packages that decide the numbers). A file's keys are the
fields of its dataclass; fractions are in [0, 1], times in seconds unless
the name says otherwise. No file holds a path of the machine that wrote it. A loader refuses a
file with a missing or unknown key or a value of the wrong type, naming the command to rerun.
:func:`ser.reporting.model_results.load_model_results` reads them all for the model card, the
README block and the Model page, and leaves out (with a note) a file measured on another
``model.keras``.

Example
-------
>>> from ser.reporting.results import load_training
>>> results = load_training("models/metrics.json")  # doctest: +SKIP
>>> round(results.cross_validation.accuracy, 3), results.training.n_functionals  # doctest: +SKIP
(0.666, 6373)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ser.reporting.corpus_results import CorpusCheckResults
from ser.reporting.loco_results import LOCO_COMMAND, LOCO_FILE, LOCO_SCHEMA, LocoResults
from ser.reporting.multi_corpus import CorporaSummary
from ser.reporting.profile_results import PROFILE_COMMAND, PROFILE_FILE, PROFILE_SCHEMA, ProfileResults
from ser.reporting.routing_results import RoutingResults
from ser.reporting.schema import ResultsError, read_results

TRAIN_COMMAND = "python -m ser train --data ../shared/data/ravdess --out models/"
EVALUATE_COMMAND = "python -m ser evaluate --data ../shared/data/ravdess --out models/ --baselines"
ROBUSTNESS_COMMAND = "python -m ser robustness --data ../shared/data/ravdess --out models/"
SEED_CHECK_COMMAND = "python -m ser seed-check --data ../shared/data/ravdess --out models/ --offset 100"
LEVEL_CHECK_COMMAND = "python -m ser level-check --data ../shared/data/ravdess --out models/"
CORPUS_CHECK_COMMAND = "python -m ser corpus-check --data ../shared/data --out models/"
ROUTING_COMMAND = "python -m ser routing --data ../shared/data --out models/"


# ---- models/metrics.json: python -m ser train ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Headline:
    """The figure the app leads with: emotion accuracy, UAR, macro-F1 on unseen speakers."""

    accuracy: float
    uar: float
    macro_f1: float
    protocol: str


@dataclasses.dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclasses.dataclass(frozen=True)
class ConfusionMatrix:
    """``counts[true][predicted]`` clips, rows and columns in ``labels`` order."""

    labels: list[str]
    counts: list[list[int]]


@dataclasses.dataclass(frozen=True)
class ViewScores:
    accuracy: float
    uar: float
    macro_f1: float


@dataclasses.dataclass(frozen=True)
class ChosenC:
    """The L2 strength a fold chose for a linear view, and each candidate's validation accuracy."""

    fold: int
    chosen: float
    validation_accuracy: dict[str, float]


@dataclasses.dataclass(frozen=True)
class ActorScore:
    """A test speaker: RAVDESS actor number, or in a multi-corpus run a numeric code with the
    speaker's name (``speaker``, e.g. ``ased-07``); ``gender`` may be ``unknown`` there."""

    actor: int
    gender: str
    n: int
    accuracy: float
    speaker: str | None = None


@dataclasses.dataclass(frozen=True)
class Spread:
    min: float
    max: float
    std: float


@dataclasses.dataclass(frozen=True)
class FoldScore:
    """One fold: its actors, its test score, the early-stopped epochs, the refit's epochs, its time."""

    fold: int
    train: list[int]
    validation: list[int]
    test: list[int]
    accuracy: float
    uar: float
    epochs: int
    refit_epochs: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class LearningCurve:
    """Per-epoch Keras history of a fold's early-stopped CNN (``loss``, ``val_emotion_accuracy``...)."""

    fold: int
    history: dict[str, list[float]]


@dataclasses.dataclass(frozen=True)
class Reliability:
    """Per confidence bin: mean confidence, accuracy and clip count."""

    confidence: list[float]
    accuracy: list[float]
    count: list[int]


@dataclasses.dataclass(frozen=True)
class Calibration:
    method: str
    temperature: float
    ece_15_bins_before: float
    ece_15_bins_after: float
    confidence_threshold: float
    threshold_rule: str
    coverage_above_threshold: float
    accuracy_above_threshold: float | None
    reliability_before: Reliability
    reliability_after: Reliability


@dataclasses.dataclass(frozen=True)
class CrossValidationSummary:
    """The pooled out-of-fold scores: every clip scored once, by the fold that never heard its speaker.

    ``views`` holds each view alone (``log_mel_cnn``, ``functionals``, ``voicing``), ``fused`` (the
    shipped fusion) and ``averaged`` (the plain average it replaced); empty for a CNN-only model.
    """

    n: int
    accuracy: float
    uar: float
    macro_f1: float
    per_class: dict[str, ClassScores]
    confusion_matrix: ConfusionMatrix
    views: dict[str, ViewScores]
    functional_c: list[ChosenC]
    voicing_c: list[ChosenC]
    protocol: str
    gender_accuracy: float | None
    intensity_accuracy: float | None
    per_actor: list[ActorScore]
    per_actor_spread: Spread
    per_fold: list[FoldScore]
    curves: list[LearningCurve]
    calibration: Calibration


@dataclasses.dataclass(frozen=True)
class DataCounts:
    """Clips per vocal channel and emotion of the training data."""

    actors: list[int]
    song_clips: int
    song_per_emotion: dict[str, int]
    speech_clips: int
    speech_per_emotion: dict[str, int]
    intensity_labels: list[str]
    #: Speech clips per partial label (speechocean's "neutral or calm"), None when no clip has one.
    speech_per_partial_label: dict[str, int] | None = None


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Facts of the recipe that ran, recorded by ``train`` from its code and model for the model card.

    Ranges are ``[low, high]``: the noise added to CNN training windows and to the room copies
    (dB below the speech), the room copies' reverberation time (s).
    """

    speed_factors: list[float]
    window_snr_db: list[float]
    room_snr_db: list[float]
    room_rt60_seconds: list[float]
    standardize_limit: float
    cnn_conv_blocks: int
    embedding_units: int
    n_functionals: int
    n_voicing_functionals: int


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """How the shipped model was trained: settings (``ser.training.settings.TrainSettings`` as a
    dict), wall time, machine, what ships, bundle size, and the recipe's facts."""

    settings: dict[str, Any]
    wall_seconds: float
    machine: str
    shipped_model: str
    bundle_bytes: int
    recipe: Recipe


@dataclasses.dataclass(frozen=True)
class TrainingResults:
    """``models/metrics.json``."""

    schema: str
    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    labels: list[str]
    headline: Headline
    cross_validation: CrossValidationSummary
    data: DataCounts
    training: TrainingRun
    #: Per-corpus scores of a run on several corpora or a manifest; None for one RAVDESS folder.
    corpora: CorporaSummary | None = None


# ---- models/evaluation.json: python -m ser evaluate -------------------------------------------
@dataclasses.dataclass(frozen=True)
class LeakySplit:
    """The shipped recipe on a random clip-level 80/20 split (leaky on purpose); ``view_accuracy``
    is each view alone."""

    protocol: str
    accuracy: float
    uar: float
    macro_f1: float
    n_test: int
    epochs: int
    refit_epochs: int
    seconds: float
    view_accuracy: dict[str, float]


@dataclasses.dataclass(frozen=True)
class BaselineScores:
    """A seed project's recipe, grouped by actor and on its own leaky random split."""

    name: str
    description: str
    accuracy: float
    uar: float
    macro_f1: float
    leaky_accuracy: float
    leaky_uar: float
    seconds: float


@dataclasses.dataclass(frozen=True)
class EvaluationResults:
    """``models/evaluation.json``; ``baselines`` is empty unless evaluate ran with ``--baselines``."""

    schema: str
    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    leaky_random_split: LeakySplit
    baselines: list[BaselineScores]


# ---- models/robustness.json, seed_check.json, level_check.json: ser.checks_cli ------------------
@dataclasses.dataclass(frozen=True)
class ConditionScores:
    """``answer_share``: each emotion's share of the answers given, refusals left out (empty in older files)."""

    accuracy: float
    uar: float
    refused: int
    same_answer_as_clean: int
    seen_in_training: bool
    answer_share: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RobustnessResults:
    """``models/robustness.json``: every speech clip corrupted, scored by the fold that never heard it."""

    schema: str
    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    protocol: str
    clips: int
    minutes: float
    conditions: dict[str, ConditionScores]


@dataclasses.dataclass(frozen=True)
class SeedCheckResults:
    """``models/seed_check.json``: each fold's refitted CNN retrained with seed ``fold + offset``."""

    schema: str
    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    what: str
    offset: int
    cnn_accuracy: float
    fused_accuracy: float
    fused_uar: float


@dataclasses.dataclass(frozen=True)
class LevelCheckResults:
    """``models/level_check.json``: every ``every``-th speech clip played ``gain_db`` quieter and louder.

    Of the ``clips``, ``answered`` got an answer as recorded; among those, ``refused_quieter`` /
    ``refused_louder`` were refused as no speech, and ``changed`` of the ``compared`` answers
    (quieter and louder copies that got one) differ from the clip's own.
    """

    schema: str
    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    every: int
    gain_db: float
    clips: int
    answered: int
    refused_quieter: int
    refused_louder: int
    compared: int
    changed: int


SCHEMAS: dict[type, str] = {
    TrainingResults: "training/1",
    EvaluationResults: "evaluation/1",
    RobustnessResults: "robustness/1",
    SeedCheckResults: "seed-check/1",
    LevelCheckResults: "level-check/1",
    CorpusCheckResults: "corpus-check/1",
    RoutingResults: "routing/1",
    ProfileResults: PROFILE_SCHEMA,
    LocoResults: LOCO_SCHEMA,
}
#: The file each producer writes (in the bundle folder) and the command that writes it.
FILES: dict[type, tuple[str, str]] = {
    TrainingResults: ("metrics.json", TRAIN_COMMAND),
    EvaluationResults: ("evaluation.json", EVALUATE_COMMAND),
    RobustnessResults: ("robustness.json", ROBUSTNESS_COMMAND),
    SeedCheckResults: ("seed_check.json", SEED_CHECK_COMMAND),
    LevelCheckResults: ("level_check.json", LEVEL_CHECK_COMMAND),
    CorpusCheckResults: ("corpus_check.json", CORPUS_CHECK_COMMAND),
    RoutingResults: ("routing.json", ROUTING_COMMAND),
    ProfileResults: (PROFILE_FILE, PROFILE_COMMAND),
    LocoResults: (LOCO_FILE, LOCO_COMMAND),
}


def _load(path: Path, cls: type) -> Any:
    command = FILES[cls][1]
    results = read_results(Path(path), cls, command=command)
    if results.schema != SCHEMAS[cls]:
        raise ResultsError(
            f"{path} is in format {results.schema!r}, this version of ser reads {SCHEMAS[cls]!r}: "
            f"rerun `{command}` to rewrite it"
        )
    return results


def load_training(path: Path) -> TrainingResults:
    """Read ``models/metrics.json`` (:class:`TrainingResults`); :class:`ResultsError` says what to rerun."""
    return _load(path, TrainingResults)


def load_evaluation(path: Path) -> EvaluationResults:
    """Read ``models/evaluation.json`` (:class:`EvaluationResults`)."""
    return _load(path, EvaluationResults)


def load_robustness(path: Path) -> RobustnessResults:
    """Read ``models/robustness.json`` (:class:`RobustnessResults`)."""
    return _load(path, RobustnessResults)


def load_seed_check(path: Path) -> SeedCheckResults:
    """Read ``models/seed_check.json`` (:class:`SeedCheckResults`)."""
    return _load(path, SeedCheckResults)


def load_level_check(path: Path) -> LevelCheckResults:
    """Read ``models/level_check.json`` (:class:`LevelCheckResults`)."""
    return _load(path, LevelCheckResults)


def load_corpus_check(path: Path) -> CorpusCheckResults:
    """Read ``models/corpus_check.json`` (:class:`ser.reporting.corpus_results.CorpusCheckResults`)."""
    return _load(path, CorpusCheckResults)


def load_routing(path: Path) -> RoutingResults:
    """Read ``models/routing.json`` (:class:`ser.reporting.routing_results.RoutingResults`)."""
    return _load(path, RoutingResults)


def load_profile(path: Path) -> ProfileResults:
    """Read ``models/voice_profile.json`` (:class:`ser.reporting.profile_results.ProfileResults`)."""
    return _load(path, ProfileResults)


def load_loco(path: Path) -> LocoResults:
    """Read ``models/loco.json`` (:class:`ser.reporting.loco_results.LocoResults`)."""
    return _load(path, LocoResults)
