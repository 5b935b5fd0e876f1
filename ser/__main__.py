"""Command line: ``python -m ser {train,evaluate,predict,batch} ...``.

Examples
--------
Train the shipped model (cross-validated by actor) into ``models/``::

    python -m ser train --data ../shared/data/ravdess --out models/

Add the leaky-split comparison to ``models/metrics.json``::

    python -m ser evaluate --data ../shared/data/ravdess --out models/ --reuse

Score clips, one JSON line each::

    python -m ser predict clip1.wav clip2.webm --json

Score a whole archive into a table, resumably, on Ray (see docs/batch.md)::

    python -m ser batch archive/ --out results.parquet
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ser.errors import SERError  # noqa: E402


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _log_error(message: str) -> None:
    """One line on stderr, whatever the message holds (a file name may contain a newline)."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
    _log(f"error: {line}")


def _load_dataset(data: Path, cache: Path):
    from ser.config import FeatureConfig
    from ser.training.cross_validation import build_clip_set
    from ser.training.data import index_dataset

    config = FeatureConfig()
    index = index_dataset(data)
    clips = build_clip_set(index, config=config, cache_dir=cache)
    speech = (index["vocal_channel"] == "speech").to_numpy()
    return config, index, clips, speech


def command_train(args: argparse.Namespace) -> int:
    import dataclasses

    from ser.config import read_json, write_json
    from ser.reporting.model_card import write_model_card
    from ser.serving.bundle import save_bundle
    from ser.training.cross_validation import TrainSettings, cross_validate, package_versions
    from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
    from ser.training.evaluate import data_counts, summarize_cross_validation
    from ser.training.networks import build_ensemble, build_fused

    started = time.perf_counter()
    config, index, clips, speech = _load_dataset(args.data, args.cache)
    settings = dataclasses.replace(TrainSettings(), seed=args.seed, epochs=args.epochs)
    folds = list(range(settings.n_folds))[: args.folds] if args.folds else None
    result = cross_validate(clips, speech_mask=speech, config=config, settings=settings, folds=folds, log=_log)
    summary = summarize_cross_validation(clips, index, result)
    if result["functional_models"]:
        ensemble = build_fused(result["models"], result["functional_models"], result["voicing_models"])
        shipped = (
            f"the {len(result['models'])} fold CNNs (averaged) fused with the "
            f"{len(result['functional_models'])} fold functional models (averaged)"
            + (
                f" and the {len(result['voicing_models'])} fold voicing models (averaged)"
                if result["voicing_models"]
                else ""
            )
            + ": normalised geometric mean of the views, equal weight"
        )
    else:
        ensemble = build_ensemble(result["models"])
        shipped = f"average of the {len(result['models'])} fold models"
    calibration = {
        "temperature": summary["calibration"]["temperature"],
        "confidence_threshold": summary["calibration"]["confidence_threshold"],
    }
    out: Path = args.out
    save_bundle(
        model=ensemble,
        path=out,
        config=config,
        labels={"emotion": list(EMOTIONS), "gender": list(GENDERS), "intensity": list(INTENSITIES)},
        calibration=calibration,
    )
    metrics_path = out / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    # The seed and robustness checks measured the previous model; `evaluate` refreshes the
    # leaky split and baselines.
    metrics.pop("seed_check", None)
    metrics.pop("robustness", None)
    wall = time.perf_counter() - started
    metrics.update(
        {
            "labels": list(EMOTIONS),
            "headline": {
                "accuracy": summary["accuracy"],
                "uar": summary["uar"],
                "macro_f1": summary["macro_f1"],
                "protocol": "5-fold cross-validation grouped by actor, RAVDESS speech, actors 1-20, 8 emotions",
                "command": "python -m ser train --data ../shared/data/ravdess --out models/",
            },
            "cross_validation": summary,
            "data": data_counts(index),
            "training": {
                "settings": dataclasses.asdict(settings),
                "wall_seconds": round(wall, 1),
                "machine": f"{os.cpu_count()} CPU cores, no GPU",
                "shipped_model": shipped,
                "bundle_bytes": int(sum(f.stat().st_size for f in out.iterdir() if f.is_file())),
            },
            "versions": package_versions(),
        }
    )
    write_json(metrics_path, metrics)
    write_model_card(out)
    _log(
        f"cross-validation: accuracy {summary['accuracy']:.3f} UAR {summary['uar']:.3f}; "
        f"bundle written to {out} in {wall / 60:.1f} min"
    )
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    import dataclasses

    from ser.config import read_json, write_json
    from ser.reporting.model_card import write_model_card
    from ser.training.cross_validation import TrainSettings, cross_validate, package_versions
    from ser.training.evaluate import budget, data_counts, leaky_random_split, summarize_cross_validation

    config, index, clips, speech = _load_dataset(args.data, args.cache)
    settings = dataclasses.replace(TrainSettings(), seed=args.seed, epochs=args.epochs)
    metrics_path: Path = args.out / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    if not (args.reuse and "cross_validation" in metrics):
        result = cross_validate(clips, speech_mask=speech, config=config, settings=settings, log=_log)
        metrics["cross_validation"] = summarize_cross_validation(clips, index, result)
    _log("leaky random 80/20 split (for comparison only)")
    metrics["leaky_random_split"] = leaky_random_split(clips, speech_mask=speech, config=config, settings=settings)
    if args.baselines:
        from ser.training.baselines import evaluate_baselines

        metrics["baselines"] = evaluate_baselines(
            index, config=config, speech_mask=speech, cache_dir=args.cache, log=_log
        )
    metrics["data"] = data_counts(index)
    metrics["versions"] = package_versions()
    bench_file = Path(__file__).resolve().parent.parent / "bench" / "results.json"
    metrics["budget"] = budget(metrics, bench_results=read_json(bench_file) if bench_file.exists() else None)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(metrics_path, metrics)
    if (args.out / "config.json").exists():
        write_model_card(args.out)
    cv = metrics["cross_validation"]
    _log(
        f"unseen speakers: accuracy {cv['accuracy']:.3f} UAR {cv['uar']:.3f}; "
        f"leaky split: accuracy {metrics['leaky_random_split']['accuracy']:.3f}"
    )
    return 0


def command_predict(args: argparse.Namespace) -> int:
    from ser.serving.audio import decode_audio
    from ser.serving.bundle import load_bundle

    try:
        bundle = load_bundle(args.model)
    except SERError as error:
        _log_error(str(error))
        return 2
    failures = 0
    for path in args.files:
        try:
            waveform = decode_audio(path, sample_rate=bundle.config.sample_rate)
            prediction = bundle.predict_clip(waveform, sample_rate=bundle.config.sample_rate)
        except SERError as error:
            failures += 1
            message = str(error)
            _log_error(message if message.startswith(str(path)) else f"{path}: {message}")
            continue
        except Exception as error:  # noqa: BLE001  the other files are still scored
            failures += 1
            _log_error(f"{path}: {type(error).__name__}: {error}")
            continue
        if args.json:
            record = {"path": str(path), **prediction.to_dict()}
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            note = "" if prediction.sure else "  (not sure)"
            print(f"{path}\t{prediction.emotion}\t{prediction.confidence:.2f}{note}", flush=True)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ser", description="Speech emotion recognition")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("train", "train the shipped model"), ("evaluate", "speaker-grouped evaluation")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--data", type=Path, required=True, help="folder with RAVDESS .wav/.flac files")
        sub.add_argument("--out", type=Path, default=Path("models"), help="bundle folder")
        sub.add_argument("--cache", type=Path, default=Path(".cache/features"), help="feature cache folder")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--epochs", type=int, default=100, help="upper bound; early stopping decides")
    commands.choices["train"].add_argument(
        "--folds", type=int, default=0, help="train only the first N folds (0 = all)"
    )
    commands.choices["evaluate"].add_argument(
        "--reuse", action="store_true", help="keep the cross-validation stored by `train`"
    )
    commands.choices["evaluate"].add_argument(
        "--baselines", action="store_true", help="also reproduce the seed projects' models"
    )
    predict = commands.add_parser("predict", help="score audio files")
    predict.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3, m4a, webm)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped one)")
    from ser.batch.cli import add_parser as add_batch_parser  # argparse only: imports no Ray
    from ser.batch.cli import command_batch

    add_batch_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "predict" and args.model is None:
        from ser.serving.bundle import DEFAULT_BUNDLE

        args.model = DEFAULT_BUNDLE
    if args.command in ("train", "evaluate"):
        from ser import import_tensorflow_quietly

        import_tensorflow_quietly()  # keep TensorFlow's C++ notices off stderr, as predict does
    handlers = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict,
                "batch": command_batch}
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
