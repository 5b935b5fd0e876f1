"""Scores of ``experiments.loco_linear``'s saved answers: ``runs/loco_linear/results.json`` and the
markdown tables of ``docs/cross-corpus.md`` ("Three corpora, one left out").

Run through ``python -m experiments.loco_linear --data ../shared/data --part report``.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from ser.reporting.loco_results import FALSE_ALARMS, FIVE, score_set
from ser.training.data import EMOTIONS
from ser.training.loco import CHILD_AGE

#: The cross-validations reported (``experiments.loco_linear.cv_tag``), three corpora first.
CV_TAGS = ("ravdess+ased+speechocean", "ravdess+ased", "ravdess")


def set_scores(probabilities: np.ndarray, *, targets: np.ndarray, labels: np.ndarray, speakers: np.ndarray,
               allowed: np.ndarray) -> dict:
    """:func:`ser.reporting.loco_results.score_set` as this study's results.json records it (a dict; the per-speaker
    spread under ``speaker_accuracy``)."""
    scores = score_set(probabilities, targets=targets, labels=labels, speakers=speakers, allowed=allowed)
    return {
        "clips": scores.clips, "refused": scores.refused, "speakers": scores.speakers, "accuracy": scores.accuracy,
        "uar": scores.uar, "recall": scores.recall, "answer_share": scores.answer_share,
        "speaker_accuracy": {"min": scores.spread.minimum, "median": scores.spread.median,
                             "max": scores.spread.maximum},
        "answer_space": scores.answer_space,
    }


def _subsets(clips, rows: np.ndarray, allowed: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (positions within rows, answer space)`` for every reported set among ``rows``."""
    corpus = clips.corpus[rows]
    emotion = clips.table["emotion"].to_numpy()[rows]
    common = clips.table["common_sentence"].fillna(False).to_numpy(bool)[rows]
    five = np.isin(EMOTIONS, FIVE)
    age = clips.age[rows]
    sets = {
        "ravdess_as_app": (corpus == "ravdess", allowed),
        "ravdess_shared5": ((corpus == "ravdess") & np.isin(emotion, FIVE), allowed & five),
        "ased_within5_all": (corpus == "ased", allowed & five),
        "ased_within5_common": ((corpus == "ased") & common, allowed & five),
        "ased_as_app_all": (corpus == "ased", allowed),
        "ased_as_app_common": ((corpus == "ased") & common, allowed),
        "speechocean": (corpus == "speechocean", allowed),
        "speechocean_children": ((corpus == "speechocean") & (age <= CHILD_AGE), allowed),
        "speechocean_adults": ((corpus == "speechocean") & (age > CHILD_AGE), allowed),
    }
    return {name: (np.flatnonzero(chosen), space) for name, (chosen, space) in sets.items() if chosen.any()}


def score_answers(clips, rows: np.ndarray, answers: dict[str, np.ndarray], allowed: np.ndarray) -> dict:
    """Every reported set among ``rows``, for each kind of answer (``full``, ``cut``)."""
    out = {}
    for name, (positions, space) in _subsets(clips, rows, allowed).items():
        chosen = rows[positions]
        out[name] = {
            kind: set_scores(probabilities[positions], targets=clips.targets[chosen], labels=clips.labels[chosen],
                             speakers=clips.speaker[chosen], allowed=space)
            for kind, probabilities in answers.items()
        }
        if name.startswith("speechocean"):
            for kind in answers:
                shares = out[name][kind]["answer_share"]
                out[name][kind]["false_alarm_share"] = float(sum(shares[e] for e in FALSE_ALARMS))
    return out


def _load(file: Path, clips, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    from experiments.loco_linear import fused_answers, load_views

    with np.load(file) as stored:
        rows, allowed = stored["rows"], stored["allowed"]
        answers = {"full": stored["full"], "cut": fused_answers(load_views(stored), cuts[rows], allowed)}
    return rows, allowed, answers


def write_report(clips, *, cuts: np.ndarray, cut_seconds: np.ndarray, runs: Path, log) -> dict:
    """Score every saved part into ``runs / "results.json"`` and print the tables."""
    from experiments.loco_linear import N_FOLDS, TRAININGS, VARIANT

    results: dict = {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                     "command": "python -m experiments.loco_linear --data ../shared/data --part report",
                     "loco": {}, "cv": {}}
    for name in [name + suffix for suffix in ("", VARIANT) for name in TRAININGS]:
        file = runs / f"loco-{name}.npz"
        if not file.is_file():
            log(f"loco {name}: not run yet (python -m experiments.loco_linear --part loco --training {name})")
            continue
        rows, allowed, answers = _load(file, clips, cuts)
        meta = json.loads(file.with_suffix(".json").read_text(encoding="utf-8"))
        results["loco"][name] = {**meta, "scores": score_answers(clips, rows, answers, allowed)}
    results["cv"] = {}
    for tag in [tag + suffix for suffix in ("", VARIANT) for tag in CV_TAGS]:
        parts = [runs / f"cv-{tag}-fold{fold}.npz" for fold in range(N_FOLDS)]
        if not all(part.is_file() for part in parts):
            log(f"cv {tag}: not every fold has run (python -m experiments.loco_linear --part cv --corpora ...)")
            continue
        rows, answers, meta = [], {"full": [], "cut": []}, []
        for part in parts:
            fold_rows, allowed, fold_answers = _load(part, clips, cuts)
            rows.append(fold_rows)
            for kind in answers:
                answers[kind].append(fold_answers[kind])
            meta.append(json.loads(part.with_suffix(".json").read_text(encoding="utf-8")))
        rows = np.concatenate(rows)
        answers = {kind: np.concatenate(parts) for kind, parts in answers.items()}
        results["cv"][tag] = {"folds": meta, "scores": score_answers(clips, rows, answers, allowed)}
    refused = np.isnan(cuts).any(axis=1)
    results["cuts"] = {"seconds": {"min": float(cut_seconds.min()), "median": float(np.median(cut_seconds)),
                                   "max": float(cut_seconds.max())},
                       "refused_as_no_speech": int(refused.sum()), "clips": int(len(cuts))}
    (runs / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(tables(results))
    return results


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _line(label: str, scores: dict, *, shares: tuple[str, ...] = ()) -> str:
    spread = scores["speaker_accuracy"]
    cells = [label, str(scores["clips"]), _pct(scores["accuracy"]), _pct(scores["uar"])]
    cells += [_pct(scores["answer_share"][e]) for e in shares]
    cells.append(f"{_pct(spread['min'])} / {_pct(spread['median'])} / {_pct(spread['max'])}")
    return "| " + " | ".join(cells) + " |"


def tables(results: dict) -> str:
    """Markdown: each held-out set by training, full sentences and cuts, with answer shares."""
    out = []
    plan = [("ravdess_as_app", EMOTIONS), ("ravdess_shared5", FIVE), ("ased_within5_all", FIVE),
            ("ased_within5_common", FIVE), ("ased_as_app_all", EMOTIONS), ("speechocean", EMOTIONS),
            ("speechocean_children", EMOTIONS), ("speechocean_adults", EMOTIONS)]
    sources = [(f"loco {name}", entry["scores"]) for name, entry in results["loco"].items()]
    sources += [(f"cv {tag}", entry["scores"]) for tag, entry in results["cv"].items()]
    for subset, shares in plan:
        header = ["trained on", "clips", "accuracy", "UAR", *shares, "per speaker min / median / max"]
        lines = []
        for label, scores in sources:
            if subset in scores:
                for kind in ("full", "cut"):
                    lines.append(_line(f"{label}, {kind}", scores[subset][kind], shares=shares))
        if lines:
            out += [f"\n{subset} (answer shares in %)\n", "| " + " | ".join(header) + " |",
                    "|" + "---|" * len(header), *lines]
        recall_lines = []
        for label, scores in sources:
            if subset in scores and scores[subset]["full"]["recall"]:
                recall = scores[subset]["full"]["recall"]
                recall_lines.append(f"  recall {label}: " + ", ".join(f"{e} {_pct(r)}" for e, r in recall.items()))
        out += recall_lines
    return "\n".join(out)
