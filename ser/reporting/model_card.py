"""Write ``models/MODEL_CARD.md`` (and the README's results table) from ``models/metrics.json``,
so no number is retyped.

Run ``python -m ser.reporting.model_card models/ [README.md]`` (``train`` and ``evaluate`` call it too).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ser.config import read_json

#: How each entry of ``cross_validation.views`` is named in the model card and on the Model page.
VIEW_NAMES: dict[str, str] = {
    "log_mel_cnn": "log-mel CNN alone",
    "functionals": "functionals alone",
    "voicing": "voice-source functionals alone",
    "fused": "all views, geometric mean (shipped)",
    "averaged": "all views, plain average",
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _top_confusions(cv: dict[str, Any], *, count: int = 4) -> str:
    matrix = cv.get("confusion_matrix", {})
    labels, counts = matrix.get("labels", []), matrix.get("counts", [])
    pairs = []
    for row, (true, values) in enumerate(zip(labels, counts, strict=False)):
        total = sum(values) or 1
        pairs += [(value / total, true, labels[col]) for col, value in enumerate(values) if col != row]
    pairs.sort(reverse=True)
    return ", ".join(f"{true} taken for {predicted} {100 * share:.0f}%" for share, true, predicted in pairs[:count])


def render(metrics: dict[str, Any], config: dict[str, Any]) -> str:
    """Return the model card as Markdown."""
    cv = metrics.get("cross_validation", {})
    calibration = cv.get("calibration", {})
    training = metrics.get("training", {})
    data = metrics.get("data", {})
    features = config.get("features", {})
    settings = training.get("settings", {})
    lines = [
        "# Model card: speech emotion recognition (RAVDESS, from scratch)",
        "",
        "## What it is",
        f"- Input: mono audio resampled to {features.get('sample_rate')} Hz; leading/trailing silence trimmed; "
        f"{features.get('n_mels')}-band log-mel spectrogram ({features.get('win_length')}-sample window, "
        f"{features.get('hop_length')}-sample hop); scored in {features.get('window_seconds')} s windows "
        f"{features.get('window_hop_seconds')} s apart, probabilities averaged.",
        "- View 1, log-mel CNN: per-band mean removal over the window (level and microphone colouring are "
        "ignored), "
        + ("two small 2D convolutions over time x frequency, " if settings.get("frontend_2d") else "")
        + "four 1D convolution blocks over time (mel bands as channels), mean and "
        "standard-deviation pooling over time, a 128-unit embedding and three softmax heads: emotion (8), "
        "speaker gender (2) and emotional intensity (normal/strong).",
    ]
    if features.get("functionals"):
        lines.append(
            f"- View 2, acoustic functionals: the {features['functionals']} set of openSMILE (6373 statistics "
            "of energy, spectral shape, MFCC, RASTA auditory bands, pitch, voicing, jitter and shimmer over the "
            "whole trimmed clip, or over each trimmed window of a long recording"
            + (
                f", after scaling it to RMS {features['functionals_rms']:g} so the recording level does not count"
                if features.get("functionals_rms")
                else ""
            )
            + "), standardised with the training "
            "clips' mean and deviation, clipped to +-8, and an L2-regularised logistic regression per head "
            "(the L2 strength chosen per fold on the validation actors, then refitted on training + validation "
            "actors; speed-0.9/1.1 copies of every training clip as augmentation"
            + (
                ", and one copy recorded \"in a room\": white, pink or brown noise at 5-30 dB SNR, half of "
                "them reverberated first (RT60 0.2-0.8 s), since studio-only training cost this view about "
                "half its accuracy on noisy audio"
                if settings.get("room_copies")
                else ""
            )
            + "). The views' "
            "probabilities are fused log-linearly (normalised geometric mean, equal weight), window by "
            "window. No weight was tuned, but the rule was: it replaced the plain average after both were "
            "compared on these cross-validation predictions, so the fused figure carries that one choice "
            "(both rows are in the table below)."
        )
        if (cv.get("views") or {}).get("voicing"):
            lines.append(
                "- View 3, voice source: a second L2 logistic regression (fitted the same way) on only the 473 "
                "ComParE functionals of pitch (F0), jitter, shimmer, harmonics-to-noise ratio and voicing, "
                "which the 6373-feature model under-weights; same input vector, so no extra extraction. It was "
                "added after an ablation on these folds (eGeMAPS' pitch/voice-quality group carried its gain), "
                "so its share of the fused figure carries that selection too."
            )
    # Which views ship refitted on the validation actors that calibration is fitted on.
    refitted = (
        ("each view's", "the ones that ship")
        if settings.get("refit_cnn")
        else ("the functional view's", "the one that ships")
        if features.get("functionals")
        else None
    )
    lines += [
        f"- Shipped model: {training.get('shipped_model', 'n/a')}; bundle size "
        f"{training.get('bundle_bytes', 0) / 1e6:.1f} MB; "
        f"training wall time {training.get('wall_seconds', 0) / 60:.1f} min "
        f"on {training.get('machine', 'n/a')}.",
        "- Training: AdamW, class-weighted cross-entropy (emotion, plus gender and intensity heads at lower "
        "weight), early stopping on the validation speakers' emotion loss with the best weights restored"
        + (
            "; then, as the linear views are, trained again on training + validation actors, replaying the "
            "learning-rate schedule epoch by epoch up to that best epoch (a third more steps, as each epoch "
            "now holds 16 actors' clips instead of 12); the fold CNN that ships is that one"
            if settings.get("refit_cnn")
            else ""
        )
        + "; augmentation on training batches only: speed 0.9/1.1 (tempo and pitch), random crops, "
        "mel-axis warping (vocal-tract length), additive noise at 5-30 dB SNR, SpecAugment masks. "
        f"Settings: `{settings}`.",
        "- Calibration: temperature scaling of the (fused) emotion head "
        f'(T = {calibration.get("temperature", float("nan")):.2f}); the app and CLI say "not sure" below '
        f"a confidence of {calibration.get('confidence_threshold', float('nan')):.2f}."
        + (
            f" Both are fitted on each fold's validation actors; there {refitted[0]} probabilities come from "
            f"its fit on the 12 training actors ({refitted[1]} also saw the validation actors), so the "
            "shipped model may be slightly more confident than calibrated."
            if refitted
            else ""
        ),
        "",
        "## Data",
        f"RAVDESS speech, actors {min(data.get('actors', [0]))}-{max(data.get('actors', [0]))} "
        f"({data.get('speech_clips', 'n/a')} speech clips; neutral has half as many clips as each other "
        f"emotion, handled with class weights), plus {data.get('song_clips', 'n/a')} song clips of the "
        "training actors as extra training data (never scored). Actors 21-24 were not available: they "
        "are kept back as a sealed test by people who did not train the model.",
        "",
        "Licence of the training data: CC BY-NC-SA 4.0 (so this model is for non-commercial use; openSMILE, "
        "which computes view 2, is likewise free for research, personal and educational use only). Cite: "
        "Livingstone SR, Russo FA (2018) The Ryerson Audio-Visual Database of Emotional Speech and Song "
        "(RAVDESS). PLoS ONE 13(5): e0196391. https://doi.org/10.1371/journal.pone.0196391",
        "",
        "## Protocol",
        cv.get("protocol", "n/a"),
        "",
        f"Reproduce: `{metrics.get('headline', {}).get('command', 'python -m ser train')}` then "
        "`python -m ser evaluate --data ../shared/data/ravdess --out models/ --reuse --baselines`.",
        "",
        "## Results on unseen speakers",
        "| metric | value |",
        "|---|---|",
        f"| accuracy (8 emotions) | {_pct(cv.get('accuracy'))} |",
        f"| UAR (macro recall) | {_pct(cv.get('uar'))} |",
        f"| macro-F1 | {_pct(cv.get('macro_f1'))} |",
        f"| speaker gender accuracy | {_pct(cv.get('gender_accuracy'))} |",
        f"| intensity (normal/strong) accuracy | {_pct(cv.get('intensity_accuracy'))} |",
        f"| ECE (15 bins) before / after calibration | {calibration.get('ece_15_bins_before', float('nan')):.3f} / "
        f"{calibration.get('ece_15_bins_after', float('nan')):.3f} |",
        f"| answers above the confidence threshold | {_pct(calibration.get('coverage_above_threshold'))} of clips, "
        f"{_pct(calibration.get('accuracy_above_threshold'))} right |",
    ]
    spread = cv.get("per_actor_spread")
    if spread:
        lines.append(
            f"| per-actor accuracy, min / max / std | {_pct(spread['min'])} / {_pct(spread['max'])} / "
            f"{100 * spread['std']:.1f} points |"
        )
    views = cv.get("views")
    if views:
        names = VIEW_NAMES
        lines += [
            "",
            "Each view alone and fused (same folds, same unseen actors):",
            "",
            "| view | accuracy | UAR | macro-F1 |",
            "|---|---|---|---|",
        ]
        for view, row in views.items():
            lines.append(
                f"| {names.get(view, view)} | {_pct(row['accuracy'])} | {_pct(row['uar'])} | {_pct(row['macro_f1'])} |"
            )
    seed_sentence = seed_check_sentence(metrics)
    if seed_sentence:
        lines += ["", seed_sentence]
    lines += [
        "",
        "Per class (recall is the share of that emotion's clips recognised):",
        "",
        "| emotion | precision | recall | F1 |",
        "|---|---|---|---|",
    ]
    for name, row in cv.get("per_class", {}).items():
        lines.append(f"| {name} | {_pct(row['precision'])} | {_pct(row['recall'])} | {_pct(row['f1'])} |")
    leaky = metrics.get("leaky_random_split")
    baselines = metrics.get("baselines", [])
    if leaky or baselines:
        lines += [
            "",
            "## The same recipes on a leaky random split",
            "Random clip-level 80/20 splits put the same speakers (and in some projects augmented "
            "copies of the test clips) on both sides. The gap is how much such figures flatter.",
            "",
            "| model | unseen speakers: accuracy / UAR | random split (leaky): accuracy / UAR |",
            "|---|---|---|",
        ]
        if leaky:
            lines.append(
                f"| ours | {_pct(cv.get('accuracy'))} / {_pct(cv.get('uar'))} | "
                f"{_pct(leaky['accuracy'])} / {_pct(leaky['uar'])} |"
            )
        for row in baselines:
            lines.append(
                f"| {row['name']} | {_pct(row['accuracy'])} / {_pct(row['uar'])} | "
                f"{_pct(row['leaky_accuracy'])} / {_pct(row['leaky_uar'])} |"
            )
    costs = metrics.get("budget")
    if costs:
        latency = costs.get("clip_4s_median_ms")
        lines += [
            "",
            "## Budget (this 2-core machine)",
            f"- Bundle: {costs['bundle_mb']} MB (target <= {costs['bundle_mb_target']} MB).",
            f"- Full retrain (`python -m ser train`): {costs['retrain_minutes']} min "
            f"(target <= {costs['retrain_minutes_target']} min).",
            "- One 4 s clip, decode + features + predict: "
            + (
                f"median {latency:.0f} ms, fastest {costs.get('clip_4s_min_ms', 0):.0f} ms, measured by `make bench` "
                f"on {costs.get('latency_measured')} at load average {costs.get('latency_load_average')}"
                if latency is not None
                else "not measured yet (`make bench`)"
            )
            + f" (target <= {costs['clip_4s_median_ms_target']} ms median).",
        ]
    robustness = robustness_lines(metrics)
    if robustness:
        lines += ["", "## Off the studio: noise, rooms, phone lines, codecs", "", *robustness]
    lines += [
        "",
        "## Known failure modes and limits",
        f"- Most confused (share of the true emotion's clips, unseen speakers): {_top_confusions(cv)}; "
        "see the confusion matrix on the Model page.",
        "- Trained on 20 North American actors reading two fixed sentences in a studio: acted, not "
        "spontaneous, emotion. Expect lower accuracy on spontaneous speech, other languages, children, "
        "noisy rooms and telephone audio.",
        "- Per-actor accuracy varies widely (see above): for some voices it is far worse than the mean.",
        *_weakest_conditions(metrics),
        "- The model's answer barely depends on the recording level (every 10th RAVDESS speech clip played "
        "12 dB quieter and 12 dB louder: 1 of 236 answers changed), but the speech detector run before "
        "it does: very quiet recordings are refused as \"no speech\" (2 of 119 clips played 12 dB "
        "quieter). Record close to the microphone.",
        "",
        "## Do not use it for",
        "Decisions about people: hiring, policing, health, education, credit, lie detection or any "
        "surveillance. It guesses the emotion an actor portrayed; it cannot know what someone feels.",
        "",
    ]
    return "\n".join(lines)


README_START = "<!-- results:start (generated by python -m ser.reporting.model_card from models/metrics.json) -->"
README_END = "<!-- results:end -->"


def results_table(metrics: dict[str, Any]) -> str:
    """The README's results table: ours and the baselines, unseen speakers vs leaky split."""
    cv = metrics.get("cross_validation", {})
    calibration = cv.get("calibration", {})
    leaky = metrics.get("leaky_random_split") or {}
    lines = [
        f"Protocol: {cv.get('protocol', 'n/a')}",
        "",
        "| model | unseen speakers: accuracy | UAR | random clip split (leaky): accuracy | UAR |",
        "|---|---|---|---|---|",
        f"| **ours** (shipped recipe) | **{_pct(cv.get('accuracy'))}** | **{_pct(cv.get('uar'))}** | "
        f"{_pct(leaky.get('accuracy'))} | {_pct(leaky.get('uar'))} |",
    ]
    for row in metrics.get("baselines", []):
        lines.append(f"| {row['name']} | {_pct(row['accuracy'])} | {_pct(row['uar'])} | "
                     f"{_pct(row['leaky_accuracy'])} | {_pct(row['leaky_uar'])} |")
    views = cv.get("views") or {}
    if views:
        parts = [
            f"{label} {_pct(views[key]['accuracy'])} (UAR {_pct(views[key]['uar'])})"
            for key, label in (
                ("log_mel_cnn", "log-mel CNN"),
                ("functionals", "openSMILE functionals + logistic regression"),
                ("voicing", "its voice-source functionals alone (pitch, jitter, shimmer, HNR)"),
                ("fused", "all views fused (shipped)"),
                ("averaged", "all views averaged instead"),
            )
            if key in views
        ]
        lines += ["", "The shipped model hears each clip through several views; each alone on the same folds: "
                  + ", ".join(parts) + "."]
    seed_sentence = seed_check_sentence(metrics)
    if seed_sentence:
        lines += ["", seed_sentence]
    robustness = robustness_lines(metrics)
    if robustness:
        lines += ["", *robustness]
    spread = cv.get("per_actor_spread") or {}
    lines += [
        "",
        f"Per-actor accuracy ranges from {_pct(spread.get('min'))} to {_pct(spread.get('max'))}. "
        f"Temperature T = {calibration.get('temperature', float('nan')):.2f}; \"not sure\" below "
        f"{_pct(calibration.get('confidence_threshold'))} confidence: above it the model answers "
        f"{_pct(calibration.get('coverage_above_threshold'))} of clips, "
        f"{_pct(calibration.get('accuracy_above_threshold'))} of them correctly.",
        "",
        f"Speaker gender {_pct(cv.get('gender_accuracy'))}, intensity {_pct(cv.get('intensity_accuracy'))} "
        f"(unseen speakers). Calibration: ECE (15 bins) {calibration.get('ece_15_bins_before', float('nan')):.3f} "
        f"before, {calibration.get('ece_15_bins_after', float('nan')):.3f} after temperature scaling. "
        f"Reproduce: `{metrics.get('headline', {}).get('command', 'python -m ser train')}` then "
        "`python -m ser evaluate --data ../shared/data/ravdess --out models/ --reuse --baselines` "
        "(or `make train`). Details: [models/MODEL_CARD.md](models/MODEL_CARD.md).",
    ]
    return "\n".join(lines)


#: How each corruption of experiments/robustness.py reads in a table.
CONDITION_NAMES = {
    "clean": "studio clip as recorded",
    "white_20db": "white noise, 20 dB below the speech",
    "white_10db": "white noise, 10 dB below the speech",
    "pink_10db": "pink noise, 10 dB below the speech",
    "reverb_0.5s": "reverberant room (RT60 0.5 s)",
    "phone_8k": "telephone band (8 kHz, 300-3400 Hz)",
    "mp3": "MP3 encoded",
    "opus": "Opus encoded",
    "laptop_mic": "thin, bright laptop microphone",
}


def _weakest_conditions(metrics: dict[str, Any], *, count: int = 2) -> list[str]:
    """A failure-mode bullet naming the corruptions that cost the most accuracy (if measured)."""
    conditions = (metrics.get("robustness") or {}).get("conditions") or {}
    clean = conditions.get("clean")
    worst = sorted((row["accuracy"], name) for name, row in conditions.items() if name != "clean")[:count]
    if not clean or not worst:
        return []
    listed = " and ".join(f"{CONDITION_NAMES.get(name, name)} {_pct(accuracy)}" for accuracy, name in worst)
    return [f"- Audio far from the studio costs the most: {listed}, against {_pct(clean['accuracy'])} for the "
            "studio clips (the robustness table above)."]


def robustness_lines(metrics: dict[str, Any]) -> list[str]:
    """A table of accuracy under each corruption (``robustness``, from experiments/robustness.py)."""
    check = metrics.get("robustness")
    if not check:
        return []
    lines = [
        f"Every speech clip of actors 1-20 corrupted, then scored through the app's own path by the fold "
        f"members that never heard its speaker ({check['clips']} clips; a clip refused as \"no speech\" "
        "counts as an error). \"Seen\" marks corruptions like those the functional views are trained with.",
        "",
        "| condition | seen in training | accuracy | UAR | refused | same answer as clean |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in check["conditions"].items():
        lines.append(
            f"| {CONDITION_NAMES.get(name, name)} | {'yes' if row['seen_in_training'] else 'no'} | "
            f"{_pct(row['accuracy'])} | {_pct(row['uar'])} | {row['refused']} | "
            f"{row['same_answer_as_clean']} of {check['clips']} |"
        )
    lines += ["", f"Reproduce: `{check['command']}` ({check['minutes']:.0f} min here)."]
    return lines


def seed_check_sentence(metrics: dict[str, Any]) -> str | None:
    """One sentence on how much the headline moves with another training seed (``seed_check``)."""
    check = metrics.get("seed_check")
    cv = metrics.get("cross_validation", {})
    if not check or cv.get("accuracy") is None:
        return None
    gap = abs(check["fused_accuracy"] - cv["accuracy"]) * 100
    return (
        f"Seed check: {check['what']}: CNN alone {_pct(check['cnn_accuracy'])}, all views fused "
        f"{_pct(check['fused_accuracy'])} (UAR {_pct(check['fused_uar'])}) instead of {_pct(cv['accuracy'])}. "
        f"Training noise alone moves the fused accuracy by {gap:.1f} points, so differences of that size "
        "between recipes on these folds mean little. Reproduce: "
        f"`{check['command']}`."
    )


def update_readme(readme: Path, metrics: dict[str, Any]) -> None:
    """Replace the text between the README's results markers with :func:`results_table`."""
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{results_table(metrics)}\n{README_END}{tail}", encoding="utf-8")


def write_model_card(path: Path) -> Path:
    """Render ``path/MODEL_CARD.md`` from ``path/metrics.json`` and ``path/config.json``."""
    path = Path(path)
    card = path / "MODEL_CARD.md"
    card.write_text(render(read_json(path / "metrics.json"), read_json(path / "config.json")), encoding="utf-8")
    return card


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "models")
    print(write_model_card(folder))
    if len(sys.argv) > 2:
        update_readme(Path(sys.argv[2]), read_json(folder / "metrics.json"))
