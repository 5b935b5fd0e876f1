"""Command line: ``python -m ser {train,evaluate,loco,predict,profile,batch,CHECK} ...``.

Examples
--------
Train the shipped model (cross-validated by actor) into ``models/``::

    python -m ser train --data ../shared/data/ravdess --out models/

Train on several corpora at once, or on your own clips described by a CSV manifest
(``path,emotion,speaker[,gender]``): folds grouped by speaker over every corpus, each corpus
teaching only its emotions (speechocean's ordinary voices the partial label "neutral or calm");
``metrics.json`` adds each corpus's scores::

    python -m ser train --data ../shared/data/ravdess --data ../shared/data/ased --out runs/joint/
    python -m ser train --data ../shared/data/ravdess --data ../shared/data/ased \\
        --data ../shared/data/speechocean --out runs/three/
    python -m ser train --data my_clips.csv --out runs/mine/

Add the leaky-split comparison and the seed projects' baselines (``models/evaluation.json``)::

    python -m ser evaluate --data ../shared/data/ravdess --out models/ --baselines

Score clips, one JSON line each::

    python -m ser predict clip1.wav clip2.webm --json

The same, calibrated to the speaker: a few seconds of their ordinary voice as the reference
(each JSON line then says ``"adapted": true`` and holds the ``unadapted`` answer too)::

    python -m ser predict --reference my_normal_voice.wav --json clip1.wav clip2.webm

Teach it one person's voice (a voice profile: a clip or two of each emotion they will show, neutral
required), then answer relative to it (``"profile": true``, the generic answer in ``unprofiled``)::

    python -m ser profile --out me.json neutral=n1.wav angry=a1.wav happy=h1.wav sad=s1.wav
    python -m ser predict --profile me.json --json clip1.wav

Score a whole archive into a table, resumably, on Ray (see docs/batch.md)::

    python -m ser batch archive/ --out results.parquet

Check a trained bundle, each CHECK writing its one file in ``models/`` (``make checks`` runs them all,
``make train`` after training): ``familiarity``, ``unfamiliarity`` (the detector), ``level-check``,
``robustness``, ``seed-check`` (:mod:`ser.checks_cli`), ``corpus-check``, ``profile-check``::

    python -m ser robustness --data ../shared/data/ravdess --out models/
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# TensorFlow's log level is set by ser.import_tensorflow_quietly, just before TensorFlow is imported.
from ser.console import log as _log
from ser.console import log_error as _log_error
from ser.errors import SERError


def _one_ravdess_folder(data: list[Path]) -> bool:
    """True for the shipped recipe's input: one folder (existing or not) that is not another corpus."""
    from ser.errors import DatasetError
    from ser.training.data import audio_files, name_format

    if len(data) != 1 or data[0].is_file() or data[0].suffix.lower() == ".csv":
        return False
    try:
        first = audio_files(data[0], what="RAVDESS")[0]
    except DatasetError:
        return True  # index_dataset says what is wrong with it, as it always has
    return name_format(first) == "ravdess"


def _load_dataset(data: list[Path], cache: Path, *, words: bool = False):
    """Index and load the clips: one RAVDESS folder as the shipped recipe has always read it, or
    several corpora / a manifest / an ASED or speechocean folder as one corpus table (``clips.masked``).
    With ``words`` (``--word-crops``; one RAVDESS folder only) the functionals of a word-length cut of
    every speech clip are loaded too.

    Raises
    ------
    SERError
        For ``words`` with anything but one RAVDESS folder.
    DatasetError
        When every clip carries a partial label (speechocean alone): nothing would tell the emotions
        of a target set apart, and there is no single label to score the headline on.
    """
    from ser.config import FeatureConfig
    from ser.errors import DatasetError
    from ser.training.clips import build_clip_set, build_corpus_clip_set
    from ser.training.corpora import PARTIAL_LABELS, index_corpora
    from ser.training.data import index_dataset

    config = FeatureConfig()
    if _one_ravdess_folder(data):
        index = index_dataset(data[0])
        clips = build_clip_set(index, config=config, cache_dir=cache, words=words)
    else:
        if words:
            raise SERError("--word-crops is part of the one-folder recipe (a RAVDESS folder); leave it out "
                           "for several corpora")
        index = index_corpora(data)
        if index["emotion"].isin(list(PARTIAL_LABELS)).all():  # before any feature is computed
            raise DatasetError(f"every clip of {', '.join(map(str, data))} carries a partial label "
                               f"({', '.join(sorted(set(index['emotion'])))}); add a corpus of single emotion labels, "
                               "e.g. --data ../shared/data/ravdess")
        clips = build_corpus_clip_set(index, config=config, cache_dir=cache)
    speech = (index["vocal_channel"] == "speech").to_numpy()
    return config, index, clips, speech


def _corpus_weights(given: list[str], *, index, masked: bool) -> tuple[tuple[str, float], ...]:
    """``--corpus-weight NAME=WEIGHT`` options as :attr:`TrainSettings.corpus_weights` pairs.

    Raises
    ------
    SERError
        For a malformed option, a weight that is not a positive number, a corpus that is not among
        the ``--data`` given, or weights on one RAVDESS folder (a single corpus has nothing to weigh).
    """
    if not given:
        return ()
    if not masked:
        raise SERError("--corpus-weight weighs corpora against each other: give several corpora with --data")
    known = sorted(set(index["corpus"]))
    pairs: dict[str, float] = {}
    for option in given:
        name, equals, value = option.partition("=")
        try:
            weight = float(value) if equals else float("nan")
        except ValueError:
            weight = float("nan")
        if not (weight > 0 and weight < float("inf")):
            raise SERError(f"--corpus-weight {option!r}: write CORPUS=WEIGHT with a positive number, e.g. ravdess=2")
        if name not in known:
            raise SERError(f"--corpus-weight {option!r}: no corpus {name!r} among --data; the corpora are {known}")
        pairs[name] = weight
    return tuple(sorted(pairs.items()))


def _cnn_corpora(given: list[str], *, index, masked: bool) -> tuple[str, ...]:
    """``--cnn-corpus NAME`` options as :attr:`TrainSettings.cnn_corpora` (sorted, each once).

    Raises
    ------
    SERError
        For a corpus that is not among the ``--data`` given, or the option on one RAVDESS folder
        (a single corpus: the CNN learns from it anyway).
    """
    if not given:
        return ()
    if not masked:
        raise SERError("--cnn-corpus chooses the CNN's corpora among several: give several corpora with --data")
    known = sorted(set(index["corpus"]))
    for name in given:
        if name not in known:
            raise SERError(f"--cnn-corpus {name!r}: no corpus {name!r} among --data; the corpora are {known}")
    return tuple(sorted(set(given)))


def _command(base: str, args: argparse.Namespace, *, masked: bool = False) -> str:
    """The canonical command recorded in a result file, with the options that differ from the defaults.

    A multi-corpus run names its ``--data`` (as given when relative; an absolute path by its last
    part, so no result file holds a path of the machine that wrote it).
    """
    if masked:
        verb, rest = base.split(" --data ", 1)
        given = [str(path) if not path.is_absolute() else path.name for path in args.data]
        base = " ".join([verb, *(f"--data {path}" for path in given), rest.split(" ", 1)[1]])
    extra = [f"--{name} {getattr(args, name)}" for name, default in (("seed", 0), ("epochs", 100), ("folds", 0))
             if getattr(args, name, default) != default]
    extra += [f"--corpus-weight {option}" for option in getattr(args, "corpus_weight", None) or []]
    extra += [f"--cnn-corpus {name}" for name in getattr(args, "cnn_corpus", None) or []]
    if getattr(args, "word_crops", 0.0):
        extra.append(f"--word-crops {args.word_crops}")
    return " ".join([base, *extra])


def command_train(args: argparse.Namespace) -> int:
    """Cross-validate, save the fused fold models as the bundle, write ``metrics.json`` and the model card."""
    import dataclasses

    from ser.reporting.model_card import write_model_card
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import FILES, SCHEMAS, TRAIN_COMMAND, Headline, Recipe, TrainingResults, TrainingRun
    from ser.reporting.schema import write_results
    from ser.serving.bundle import BUNDLE_FILES, save_bundle
    from ser.serving.layers import STANDARDIZE_LIMIT
    from ser.training.augment import ROOM_RT60_SECONDS, ROOM_SNR_DB
    from ser.training.cache import SPEED_FACTORS
    from ser.training.cnn import WINDOW_SNR_DB
    from ser.training.cross_validation import cross_validate
    from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
    from ser.training.evaluate import HEADLINE_PROTOCOL, data_counts, summarize_cross_validation
    from ser.training.networks import build_ensemble, build_fused
    from ser.training.settings import TrainSettings
    from ser.training.views import view_columns

    started = time.perf_counter()
    if not 0.0 <= args.word_crops < 1.0:
        raise SERError(f"--word-crops {args.word_crops}: give a share of the CNN's windows in [0, 1), e.g. 0.25")
    config, index, clips, speech = _load_dataset(args.data, args.cache, words=args.word_crops > 0)
    settings = dataclasses.replace(TrainSettings(), seed=args.seed, epochs=args.epochs,
                                   word_crop_probability=args.word_crops,
                                   corpus_weights=_corpus_weights(args.corpus_weight, index=index, masked=clips.masked),
                                   cnn_corpora=_cnn_corpora(args.cnn_corpus, index=index, masked=clips.masked))
    folds = list(range(settings.n_folds))[: args.folds] if args.folds else None
    run = cross_validate(clips, speech_mask=speech, config=config, settings=settings, folds=folds, log=_log,
                         verbose=int(os.environ.get("SER_VERBOSE", "0")))
    if args.save_fold_answers is not None:
        from ser.training.fold_answers import save_fold_answers

        _log(f"fold answers: {save_fold_answers(run, clips, index=index, path=args.save_fold_answers)}")
    corpora = None
    if clips.masked:  # several corpora: RAVDESS's protocol stays the headline, each corpus beside it
        from ser.training.corpus_summary import headline_protocol, summarize_corpora

        summary, corpora = summarize_corpora(clips, run, n_folds=settings.n_folds,
                                             corpus_weights=settings.corpus_weight_map(),
                                             cnn_corpora=settings.cnn_corpora)
        protocol = headline_protocol(list(dict.fromkeys(index["corpus"])), n_folds=settings.n_folds,
                                     headline=corpora.headline_corpus)
    else:
        summary, protocol = summarize_cross_validation(clips, run), HEADLINE_PROTOCOL
    cnns, functional, voicing = (run.models(view) for view in ("log_mel_cnn", "functionals", "voicing"))
    if functional:
        ensemble = build_fused(cnns, functional, voicing)
        shipped = (
            f"the {len(cnns)} fold CNNs (averaged) fused with the {len(functional)} fold functional models (averaged)"
            + (f" and the {len(voicing)} fold voicing models (averaged)" if voicing else "")
            + ": normalised geometric mean of the views, equal weight"
        )
    else:
        ensemble = build_ensemble(cnns)
        shipped = f"average of the {len(cnns)} fold models"
    out: Path = args.out
    save_bundle(
        model=ensemble,
        path=out,
        config=config,
        labels={"emotion": list(EMOTIONS), "gender": list(GENDERS), "intensity": list(INTENSITIES)},
        calibration={"temperature": summary.calibration.temperature,
                     "confidence_threshold": summary.calibration.confidence_threshold},
    )
    wall = time.perf_counter() - started
    columns = view_columns(clips)
    results = TrainingResults(
        schema=SCHEMAS[TrainingResults],
        model_sha256=model_sha256(out / "model.keras"),
        measured=utc_now(),
        command=_command(TRAIN_COMMAND, args, masked=clips.masked),
        versions=package_versions(),
        labels=list(EMOTIONS),
        headline=Headline(accuracy=summary.accuracy, uar=summary.uar, macro_f1=summary.macro_f1,
                          protocol=protocol),
        cross_validation=summary,
        data=data_counts(index),
        training=TrainingRun(
            settings=settings.to_dict(),
            wall_seconds=round(wall, 1),
            machine=f"{os.cpu_count()} CPU cores, no GPU",
            shipped_model=shipped,
            bundle_bytes=int(sum((out / name).stat().st_size for name in BUNDLE_FILES)),
            recipe=Recipe(
                speed_factors=sorted(SPEED_FACTORS),
                window_snr_db=list(WINDOW_SNR_DB),
                room_snr_db=list(ROOM_SNR_DB),
                room_rt60_seconds=list(ROOM_RT60_SECONDS),
                standardize_limit=STANDARDIZE_LIMIT,
                cnn_conv_blocks=sum(layer.name.endswith("_conv") for layer in cnns[0].layers),
                embedding_units=cnns[0].get_layer("embedding").units,
                n_functionals=len(clips.functional_names or []),
                n_voicing_functionals=len(columns.get("voicing", [])),
            ),
        ),
        corpora=corpora,
    )
    # Only metrics.json: the evaluation, robustness and seed checks keep their own files, which
    # the model card leaves out while they describe the previous model.keras.
    write_results(out / FILES[TrainingResults][0], results)
    from ser.training.fold_answers import out_of_fold, write_out_of_fold

    write_out_of_fold(out_of_fold(run, index=index, temperature=summary.calibration.temperature), out)
    write_model_card(out)
    for corpus in corpora.corpora if corpora else []:
        uar = "" if corpus.uar is None else f" UAR {corpus.uar:.3f}"  # None: no single labels to recall
        partial = "" if corpus.partial_label is None else (
            f"; {corpus.target_share:.3f} answered {corpus.partial_label}, {corpus.false_alarm_share:.3f} "
            f"{' or '.join(corpus.false_alarms)} (false alarms)")
        _log(f"{corpus.corpus}: accuracy {corpus.accuracy:.3f}{uar} within its "
             f"{len(corpus.emotions)} emotions ({corpus.n_speakers} test speakers){partial}")
    _log(
        f"cross-validation: accuracy {summary.accuracy:.3f} UAR {summary.uar:.3f}; "
        f"bundle written to {out} in {wall / 60:.1f} min"
    )
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    """The leaky random split (and with ``--baselines`` the seed recipes): ``evaluation.json`` only.

    The cross-validation is ``train``'s (``metrics.json``), read as it is.
    """
    import dataclasses

    from ser.reporting.model_card import write_model_card
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import EVALUATE_COMMAND, FILES, SCHEMAS, EvaluationResults, TrainingResults
    from ser.reporting.schema import write_results
    from ser.training.evaluate import leaky_random_split
    from ser.training.settings import TrainSettings

    out: Path = args.out
    if not (out / "model.keras").is_file():
        raise SERError(f"{out} holds no model.keras; run `python -m ser train --out {out}` first "
                       "(evaluation.json records the model it was measured beside)")
    masked = not _one_ravdess_folder(args.data)
    if args.baselines and masked:
        raise SERError("--baselines reproduces the seed projects' RAVDESS recipes: give one RAVDESS folder "
                       "as --data, or leave --baselines out")
    config, index, clips, speech = _load_dataset(args.data, args.cache)
    settings = dataclasses.replace(TrainSettings(), seed=args.seed, epochs=args.epochs)
    _log("leaky random 80/20 split (for comparison only)")
    leaky = leaky_random_split(clips, speech_mask=speech, config=config, settings=settings)
    baselines = []
    if args.baselines:
        from ser.training.baselines import evaluate_baselines

        baselines = evaluate_baselines(index, config=config, speech_mask=speech, cache_dir=args.cache, log=_log)
    command = EVALUATE_COMMAND if args.baselines else EVALUATE_COMMAND.removesuffix(" --baselines")
    results = EvaluationResults(
        schema=SCHEMAS[EvaluationResults],
        model_sha256=model_sha256(out / "model.keras"),
        measured=utc_now(),
        command=_command(command, args, masked=masked),
        versions=package_versions(),
        leaky_random_split=leaky,
        baselines=baselines,
    )
    write_results(out / FILES[EvaluationResults][0], results)
    if (out / FILES[TrainingResults][0]).exists():
        write_model_card(out)
    _log(f"leaky split: accuracy {leaky.accuracy:.3f} UAR {leaky.uar:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ser", description="Speech emotion recognition")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("train", "train the shipped model"), ("evaluate", "speaker-grouped evaluation")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--data", type=Path, required=True, action="append",
                         help="a RAVDESS folder, an ASED folder, a speechocean folder (speakers.csv: ordinary "
                              "voices, 'neutral or calm') or a CSV manifest (path,emotion,speaker[,gender]); "
                              "repeat for several corpora (trained together, each teaching its own emotions)")
        sub.add_argument("--out", type=Path, default=Path("models"), help="bundle folder")
        sub.add_argument("--cache", type=Path, default=Path(".cache/features"), help="feature cache folder")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--epochs", type=int, default=100, help="upper bound; early stopping decides")
    commands.choices["train"].add_argument(
        "--folds", type=int, default=0, help="train only the first N folds (0 = all)"
    )
    commands.choices["train"].add_argument(
        "--corpus-weight", action="append", default=[], metavar="CORPUS=WEIGHT",
        help="several corpora: scale a corpus's share of the emotion loss (others 1), e.g. ravdess=2",
    )
    commands.choices["train"].add_argument(
        "--cnn-corpus", action="append", default=[], metavar="CORPUS",
        help="several corpora: the log-mel CNN learns from this corpus's clips only (repeat for more; "
             "default: every corpus); the linear views still learn from all of them",
    )
    commands.choices["train"].add_argument(
        "--word-crops", type=float, default=0.0, metavar="SHARE",
        help="one RAVDESS folder: this share of the CNN's training windows is one word-length span (0.5-1.2 s) "
             "of a clip, and the linear views also learn from a word-length cut of every clip (default 0)",
    )
    commands.choices["train"].add_argument(
        "--save-fold-answers", type=Path, default=None, metavar="FILE.npz",
        help="also save every fold's per-view answers on its validation and test speakers (studies of the fusion)",
    )
    commands.choices["evaluate"].add_argument(
        "--baselines", action="store_true", help="also reproduce the seed projects' models"
    )
    predict = commands.add_parser("predict", help="score audio files")
    predict.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3, m4a, webm)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped one)")
    predict.add_argument("--reference", type=Path, action="append", default=None, metavar="FILE",
                         help="a recording of the same speaker's ordinary (neutral) voice, a few seconds; answers "
                              "are calibrated to it (repeatable; nothing is stored)")
    predict.add_argument("--profile", type=Path, default=None, metavar="PROFILE.json",
                         help="a voice profile (python -m ser profile): answers relative to that person's voice")
    from ser.batch.cli import add_parser as add_batch_parser  # argparse only: imports no Ray
    from ser.batch.cli import command_batch
    from ser.loco_cli import add_parser as add_loco_parser
    from ser.loco_cli import command_loco
    from ser.profile_cli import add_parser as add_profile_parser
    from ser.profile_cli import command_profile

    add_batch_parser(commands)
    add_profile_parser(commands)
    add_loco_parser(commands)
    from ser import checks_cli, corpus_check_cli, joint_views_cli, profile_check_cli, unfamiliarity_cli

    # The joint views, and the checks of a trained bundle, one result file each (make train runs them).
    checks = (joint_views_cli, checks_cli, corpus_check_cli, profile_check_cli, unfamiliarity_cli)
    for module in checks:
        module.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "predict" and args.model is None:
        from ser.serving.bundle import DEFAULT_BUNDLE

        args.model = DEFAULT_BUNDLE
    handlers = {"train": command_train, "evaluate": command_evaluate, "batch": command_batch,
                "profile": command_profile, "loco": command_loco}
    for module in checks:
        handlers.update(module.HANDLERS)
    if args.command in ("train", "evaluate", *(name for module in checks for name in module.HANDLERS)):
        from ser import import_tensorflow_quietly

        import_tensorflow_quietly()  # keep TensorFlow's C++ notices off stderr, as predict does
    from ser.predict_cli import command_predict

    handlers["predict"] = command_predict
    try:
        return handlers[args.command](args)
    except SERError as error:
        _log_error(str(error))
        return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `python -m ser predict ... | head`
        sys.exit(1)
