"""Markdown tables from the cross-corpus study's results (``runs/cross_corpus/*.json``).

Run after ``experiments/cross_corpus.py``::

    python -m experiments.cross_corpus_report                    # every recipe found, summary table
    python -m experiments.cross_corpus_report --detail shipped   # per-class recall, answer shares, speakers

Prints to stdout; ``docs/cross-corpus.md`` quotes these tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ser.reporting.metrics import ClipSetScores

ROOT = Path(__file__).resolve().parent.parent
#: (protocol, subset, label) rows of the summary, in reading order.
SUMMARY_ROWS = (
    ("ravdess_cv", "ravdess", "RAVDESS headline (8 emotions, 5 folds by actor)"),
    ("ased_cv", "ased", "ASED speaker folds, all sentences"),
    ("ased_cv", "ased_common_sentences", "ASED speaker folds, common sentences only"),
    ("ravdess_to_ased", "ased", "RAVDESS -> ASED (all ASED)"),
    ("ravdess_to_ased", "ased_common_sentences", "RAVDESS -> ASED, common sentences"),
    ("ased_to_ravdess", "ravdess_shared_emotions", "ASED -> RAVDESS (its 5 shared emotions)"),
    ("joint_cv", "ravdess", "both corpora, masked: RAVDESS headline folds"),
    ("joint_cv", "ased", "both corpora, masked: ASED folds, all sentences"),
    ("joint_cv", "ased_common_sentences", "both corpora, masked: ASED folds, common sentences"),
)


def study_scores(scores: ClipSetScores) -> dict:
    """One score entry of ``runs/cross_corpus/*.json`` as this report reads it (the format the
    study's results have always had, so the files written before still read)."""
    spread = scores.speaker_accuracy
    return {
        "answer_space": list(scores.answer_space),
        "n_clips": scores.clips,
        "n_speakers": scores.speakers,
        "accuracy": scores.accuracy,
        "uar": scores.uar,
        "recall": scores.recall,
        "answer_share": scores.answer_share,
        "speaker_accuracy": {speaker.speaker: speaker.accuracy for speaker in scores.per_speaker},
        "speaker_spread": {"min": spread.min, "median": spread.median, "max": spread.max},
    }


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def summary(results: dict[str, dict]) -> str:
    lines = [
        "| recipe | protocol | clips | restricted: acc | UAR | as the app answers: acc | largest answer share | "
        "with reference, same clips (acc): none / neutral floor 0.3 / 0.5 / functional shift | UAR: none / floor 0.5 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for protocol, subset, label in SUMMARY_ROWS:
            entry = result["protocols"].get(protocol, {}).get("scores", {}).get(subset)
            if entry is None:
                continue
            restricted, app = entry["restricted"], entry["app"]
            share = max(restricted["answer_share"].items(), key=lambda item: item[1])
            calibrated = uar = ""
            if "neutral_floor_0.5_restricted" in entry:
                before = entry["same_clips_uncalibrated_restricted"]
                calibrated = " / ".join(_percent(entry[key]["accuracy"]) for key in (
                    "same_clips_uncalibrated_restricted", "neutral_floor_0.3_restricted",
                    "neutral_floor_0.5_restricted", "calibrated_restricted"))
                uar = f"{_percent(before['uar'])} / {_percent(entry['neutral_floor_0.5_restricted']['uar'])}"
            lines.append(
                f"| {name} | {label} | {restricted['n_clips']} | {_percent(restricted['accuracy'])} | "
                f"{_percent(restricted['uar'])} | {_percent(app['accuracy'])} | {share[0]} {_percent(share[1])} | "
                f"{calibrated} | {uar} |"
            )
    return "\n".join(lines)


def detail(name: str, result: dict) -> str:
    out = []
    for protocol, subset, label in SUMMARY_ROWS:
        entry = result["protocols"].get(protocol, {}).get("scores", {}).get(subset)
        if entry is None:
            continue
        out.append(f"\n**{label}** ({name})\n")
        columns = [("restricted", "restricted"), ("app", "as the app answers")]
        if "neutral_floor_0.5_restricted" in entry:
            columns += [("same_clips_uncalibrated_restricted", "with reference: same clips, none"),
                        ("neutral_floor_0.5_restricted", "neutral floor 0.5"),
                        ("neutral_floor_0.5_app", "neutral floor 0.5, as the app answers"),
                        ("calibrated_restricted", "functional shift")]
        emotions = list(entry["app"]["answer_share"])
        lines = ["| | " + " | ".join(title for _, title in columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for emotion in emotions:
            cells = []
            for key, _ in columns:
                scores = entry[key]
                recall = scores["recall"].get(emotion)
                share = scores["answer_share"].get(emotion)
                recall_text = "" if recall is None else f"recall {_percent(recall)}"
                share_text = "" if share is None else f"answers {_percent(share)}"
                cells.append(", ".join(part for part in (recall_text, share_text) if part) or "-")
            lines.append(f"| {emotion} | " + " | ".join(cells) + " |")
        spreads = []
        for key, _ in columns:
            low, median, high = (entry[key]["speaker_spread"][k] for k in ("min", "median", "max"))
            spreads.append(f"{_percent(low)} / {_percent(median)} / {_percent(high)}")
        lines.append("| per-speaker accuracy min / median / max | " + " | ".join(spreads) + " |")
        lines.append("| clips, speakers | " + " | ".join(
            f"{entry[key]['n_clips']}, {entry[key]['n_speakers']}" for key, _ in columns) + " |")
        out.append("\n".join(lines))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "cross_corpus")
    parser.add_argument("--recipe", action="append", help="only these result files (repeat)")
    parser.add_argument("--detail", action="append", default=[], help="per-class tables of these recipes")
    args = parser.parse_args(argv)
    files = sorted(args.runs.glob("*.json"))
    results = {
        file.stem: json.loads(file.read_text())
        for file in files
        if not file.stem.startswith("cnn") and (not args.recipe or file.stem in args.recipe)
    }
    if not results:
        print(f"no results in {args.runs}; run experiments/cross_corpus.py first", file=sys.stderr)
        return 1
    print(summary(results))
    for name in args.detail:
        print(detail(name, results[name]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
