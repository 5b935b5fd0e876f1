"""Model page: how well the model works, read from the bundle's result files (nothing is recomputed here).

It opens with the headline (accuracy and unweighted average recall on speakers the model never
heard, chance beside them) and a summary in plain words (``ser.reporting.summary.plain_summary``);
then which emotions it mixes up, each emotion, each voice and recording conditions; the
specialists' detail (protocol, views, calibration, baselines, seed check, learning curves,
training data) is in expanders at the end. Tables are static ``st.table``s of a few columns, so
they wrap to a phone's width, and every figure is one format: a percentage with one decimal.

``ser.reporting.model_results.load_model_results`` reads ``metrics.json`` (train), and
``evaluation.json``, ``robustness.json``, ``seed_check.json``, ``level_check.json``,
``corpus_check.json`` (voices it was not trained on) when present and measured on this
``model.keras``, and what the "unlike the training data" warning was measured to do (the figures in
``unfamiliarity.npz``); a section whose file is absent is explained instead.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

import app_ui
from ser.reporting import report_plots
from ser.reporting.corpus_results import CorpusCheckResults
from ser.reporting.loco_results import ANSWERED_BY, EMOTIONS, LocoResults
from ser.reporting.metrics import ClipSetScores
from ser.reporting.model_card import CONDITION_NAMES, VIEW_NAMES, most_given
from ser.reporting.model_results import ModelResults, load_model_results
from ser.reporting.profile_results import ProfileResults
from ser.reporting.results import CORPUS_CHECK_COMMAND, TrainingResults
from ser.reporting.routing_results import RoutingResults, routing_rows
from ser.reporting.schema import ResultsError
from ser.reporting.summary import corpus_summary, percent, plain_summary, sentence
from ser.reporting.unfamiliarity_results import UnfamiliarityResults
from ser.serving.unfamiliarity import PRODUCER as UNFAMILIARITY_PRODUCER

#: The learning-curve series a reader can choose, by the Keras history key they show.
CURVE_METRICS = {"emotion accuracy": "emotion_accuracy", "emotion loss": "emotion_loss", "total loss": "loss"}
CONFUSION_VIEWS = ("share of each true emotion", "clips")
CORPUS_VIEWS = ("answers it gives", "emotions it recognises")
#: Readable names of ``ser.training.settings.TrainSettings`` fields whose own name is not (others: ``_`` -> space).
SETTING_NAMES = {"n_folds": "folds", "width": "CNN width (filters)", "max_warp": "largest time warp",
                 "functional_c_grid": "L2 strengths tried (functionals)",
                 "voicing_c_grid": "L2 strengths tried (voice source)"}


@st.cache_data(show_spinner=False)
def _load(folder: str, stamps: tuple[tuple[str, int], ...]) -> ModelResults:
    return load_model_results(folder, bench=None)  # ``stamps`` is only part of the cache key


def _results(folder: Path) -> ModelResults:
    """The bundle's results, read again when any file of the folder changes."""
    stamps = tuple((path.name, path.stat().st_mtime_ns) for path in sorted(folder.iterdir()) if path.is_file())
    return _load(str(folder), stamps)


def table(rows: Sequence[dict[str, Any]]) -> None:
    """A static table: unlike ``st.dataframe`` its cells wrap, so a few columns fit a phone's width."""
    st.table(pd.DataFrame(list(rows)), hide_index=True)


def plain_rule(text: str) -> str:
    """A recorded rule in the page's one format: ``0.1-wide band`` reads ``10-point-wide band``."""
    return re.sub(r"\b(0\.\d+)-wide", lambda match: f"{100 * float(match.group(1)):g}-point-wide", text)


def calibration_of(training: TrainingResults) -> dict[str, float | None]:
    """The training corpus's figures for the confidence table: its unseen speakers, after temperature scaling."""
    calibration = training.cross_validation.calibration
    sure_right = calibration.accuracy_above_threshold
    return {"ece": calibration.ece_15_bins_after, "sure": calibration.coverage_above_threshold,
            "wrong": None if sure_right is None else 1 - sure_right}


def show_corpus_check(check: CorpusCheckResults, *, training: TrainingResults) -> None:
    """The section on a corpus the model never heard: plain words, then tables and the answers per emotion."""
    st.markdown("\n".join(f"- **{lead}:** {text}" for lead, text in corpus_summary(check, training=training).items()))
    calibrated, common = check.calibrated, check.calibrated_common
    rows = [("all sentences", check.all_sentences), ("sentences spoken in every emotion", check.common_sentences),
            ("speakers with a reference, without it", calibrated.unadapted),
            ("the same clips, calibrated to the speaker", calibrated.adapted),
            ("every-emotion sentences, without a reference", common.unadapted),
            ("every-emotion sentences, calibrated", common.adapted)]
    table([{"clips": f"{name} ({scores.restricted.answered})",
            f"right, among its {len(check.emotions)} emotions": percent(scores.restricted.accuracy),
            f"right, among all {len(check.labels)}": percent(scores.app.accuracy),
            "neutral called neutral": percent(scores.app.recall.get("neutral")),
            "median speaker": percent(scores.restricted.speaker_accuracy.median)} for name, scores in rows])
    spread = {name: scores.restricted.speaker_accuracy for name, scores in rows[2:4]}
    st.caption(f"{check.corpus}: {check.speakers} speakers, {check.clips} clips; the number of clips scored is in "
               f"brackets ({check.all_sentences.app.refused} were refused as no speech). Calibrated: each speaker's "
               f"two reference clips ({calibrated.reference_clips} in all) are not scored; "
               f"{calibrated.speakers_without_reference} speakers without two neutral clips are left out. Per "
               "speaker, among its emotions, "
               + "; ".join(f"{name}: lowest {percent(row.min)}, highest {percent(row.max)}"
                           for name, row in spread.items()) + ".")

    shown = st.segmented_control("Show", CORPUS_VIEWS, default=CORPUS_VIEWS[0], key="corpus-view") or CORPUS_VIEWS[0]
    before, after = calibrated.unadapted.app, calibrated.adapted.app
    if shown == CORPUS_VIEWS[0]:
        truth = {name: before.support.get(name, 0) / before.answered for name in check.labels}
        series = {"true emotions": truth, "its answers": before.answer_share, "with a reference": after.answer_share}
        app_ui.chart(report_plots.emotion_shares_figure(series=series, emotions=check.labels,
                                                        axis_title="share of answers"), key="corpus-answers")
        st.caption(f"Share of each answer among the {len(check.labels)} emotions the app answers in, beside the share "
                   f"of each true emotion ({check.corpus} has only {', '.join(check.emotions)}), without and with "
                   f"calibration to the speaker, on the same {before.answered} clips of the {calibrated.speakers} "
                   "speakers with a reference.")
    else:
        series = {"without a reference": before.recall, "with a reference": after.recall}
        app_ui.chart(report_plots.emotion_shares_figure(series=series, emotions=check.emotions,
                                                        axis_title="recall"), key="corpus-recall")
        st.caption("Recall: the share of each emotion's clips it names right, as the app answers (among all "
                   f"{len(check.labels)}), on the same clips of the {calibrated.speakers} speakers with a reference.")

    confidence = [("unseen actors of its training corpus", calibration_of(training)),
                  (f"{check.corpus}, as the app answers", _confidence(check.all_sentences.app)),
                  (f"{check.corpus}, among its {len(check.emotions)} emotions",
                   _confidence(check.all_sentences.restricted)),
                  (f"{check.corpus}, calibrated to the speaker", _confidence(after))]
    table([{"voices": name, "calibration error": percent(row["ece"]), "answers it is sure of": percent(row["sure"]),
            "wrong when sure": percent(row["wrong"])} for name, row in confidence])
    synthetic = check.synthetic
    st.caption(
        f"Sure: confidence of at least {percent(check.confidence_threshold)}, where the app stops saying “not sure”. "
        "Calibration error: the expected calibration error over 15 confidence bins, the gap between how sure it is "
        "and how often it is right."
        + (f" Synthetic English (espeak-ng, {synthetic.clips} neutral sentences): sure of "
           f"{percent(synthetic.sure_share)}, called neutral {percent(synthetic.neutral_share)}." if synthetic else "")
    )
    st.caption(f"{sentence(check.protocol)} Reproduce with `{check.command}`. A study of the linear views across "
               "corpora (trained on ASED and tested on RAVDESS, and on both corpora; not the shipped model) is in "
               "docs/cross-corpus.md.")


#: Short names of routing.json's sets, for a table that fits a phone.
ROUTED_SET_NAMES = {"ravdess": "RAVDESS, unseen actors", "ased": "ASED, all sentences",
                    "ased_common": "ASED, every-emotion sentences"}
def _routing_source(routing) -> str:
    """How routing.json was measured: its command, or the retired script's and what replaced it."""
    if routing.command.startswith("python -m experiments."):
        return (f"Measured {routing.measured} by `{routing.command}`, a script since moved into `python -m ser "
                "routing` (run by `make train`); the next full retrain rebuilds these figures.")
    return f"Reproduce with `{routing.command}`."


#: Short names of its across-corpus entries.
ACROSS_NAMES = {"ravdess_to_ased": "RAVDESS-trained main model, on ASED",
                "ased_to_ravdess": "ASED-trained views, on RAVDESS"}


def show_routing(routing: RoutingResults) -> None:
    """How the bundle answers voices unlike RAVDESS's actors (the joint views), on speakers it never heard."""
    rows = routing_rows(routing)
    ravdess = rows[0]
    ordinary = routing.ordinary
    heard_ordinary = ordinary is not None and ordinary.joint_views_heard_corpus
    corpora = (f"RAVDESS, ASED and {ordinary.routed.speakers} people reading aloud in their ordinary voice** "
               "(speechocean; three corpora" if heard_ordinary else "RAVDESS and ASED** (two corpora")
    st.markdown(
        "The main model learnt from RAVDESS's actors only. When the voice is unlike theirs (the warning below "
        f"names it), the answer comes instead from **two linear views trained on {corpora}, two "
        f"languages). They answer {percent(ravdess.routed_share)} of RAVDESS's unseen actors' clips, which costs "
        f"{percent(ravdess.main_accuracy - ravdess.accuracy)} of those clips; on ASED's unseen speakers:"
    )
    named = [(ROUTED_SET_NAMES.get(entry.name, entry.name), row) for entry, row in zip(routing.sets, rows, strict=True)]
    table([{"clips": f"{name} ({row.answered})", "right, as shipped": percent(row.accuracy),
            "unweighted average recall": percent(row.uar), "right, main model alone": percent(row.main_accuracy),
            "neutral called neutral": percent(row.neutral_recall)} for name, row in named])
    st.caption("Among the set's emotions, every clip from a speaker never heard (the main model's and the joint views' "
               "cross-validation by speaker, the check from folds without the speaker); neutral as the app answers. "
               "Answered by the joint views: "
               + ", ".join(f"{name} {percent(row.routed_share)}" for name, row in named)
               + ". Most frequent answer: "
               + ", ".join(f"{name} {row.largest_share[0]} ({percent(row.largest_share[1])})" for name, row in named)
               + ". With each speaker's two neutral reference clips, on the same clips: "
               + ", ".join(f"{name} {percent(row.calibrated_before)} becomes {percent(row.calibrated_after)}"
                           for name, row in named)
               + ". ASED's figures are new speakers of a corpus the joint views learnt from, not a new corpus: "
               "for corpora a model never heard, see leave one corpus out. " + _routing_source(routing))
    if ordinary is not None:
        st.markdown("**Ordinary voices** (no emotion in them, so neutral or calm is right; "
                    + ("new speakers of a corpus the joint views learnt from, not ordinary voices in general"
                       if heard_ordinary else "a corpus the main model and the joint views never heard") + "):")
        answered = (("as shipped", ordinary.routed), ("main model alone", ordinary.main_only),
                    ("joint views alone", ordinary.joint_only))
        table([{"model": name, "neutral or calm": percent(scores.neutral_or_calm_share),
                "angry, fearful or disgust": percent(scores.false_alarm_share)} for name, scores in answered])
        st.caption(f"{ordinary.routed.clips} clips of {ordinary.routed.speakers} speakers; the voice check sends "
                   f"{percent(ordinary.routed_share)} of them to the joint views. Most frequent answer: "
                   + ", ".join(f"{name} {scores.largest_share[0]} ({percent(scores.largest_share[1])})"
                               for name, scores in answered) + ". " + _routing_source(routing))
    if not routing.across_corpora:
        return
    st.markdown("**Across corpora**, with no routing: a model trained on one corpus only, on every clip of the other.")
    across = [(ACROSS_NAMES.get(entry.name, entry.name), entry) for entry in routing.across_corpora]
    table([{"model": f"{name} ({entry.scores.restricted.answered} clips)",
            "right": percent(entry.scores.restricted.accuracy),
            "unweighted average recall": percent(entry.scores.restricted.uar),
            "right, with a reference": percent(entry.calibrated.adapted.restricted.accuracy)}
           for name, entry in across])
    emotions = list(across[0][1].scores.restricted.recall)
    columns = {}
    for name, entry in across:
        scores = entry.scores.restricted
        columns[f"{name}: recall"] = {emotion: percent(scores.recall.get(emotion)) for emotion in emotions}
        columns[f"{name}: share of answers"] = {emotion: percent(scores.answer_share.get(emotion))
                                                  for emotion in emotions}
    table([{"emotion": emotion, **{column: values[emotion] for column, values in columns.items()}}
           for emotion in emotions])
    st.caption("Recall: the share of each emotion's clips named right; share of answers: how often it is the answer "
               "(a collapse onto one emotion shows). Among the test corpus's emotions. \"Right, with a reference\": "
               "each speaker's two neutral reference clips calibrate the model, the speaker's other clips scored.")


def show_profile(profile: ProfileResults) -> None:
    """What a personal voice profile does for speakers the model never heard (``voice_profile.json``)."""
    st.markdown("A person can **teach it their voice** (the panel on Analyze and Live): a clip or two of one "
                "sentence in each emotion. On speakers the model never heard, their other sentences:")
    table([{"clips": f"{row.corpus}: {row.enrolled}, K = {row.k}",
            "right without": percent(row.generic_accuracy),
            "right with the profile": percent(row.profile_accuracy),
            "unweighted average recall with": percent(row.profile_uar)} for row in profile.rows])
    st.caption("K: the speaker's clips per emotion the profile was built from. RAVDESS: built on statement 1, "
               "scored on statement 2 (8 emotions; the words cannot help), by the fold members that never heard the "
               "actor. ASED: built on common sentence 01, scored on common sentence 02 and, in the second of each "
               "pair of rows, on every other sentence (5 emotions), by the main model (never trained on ASED). "
               f"Prior strength {profile.prior_strength:g}, chosen by nested cross-validation on RAVDESS. "
               f"Reproduce with `{profile.command}`.")


def show_loco(loco: LocoResults) -> None:
    """Leave one corpus out (``loco.json``): each corpus answered by models that never heard it, against the targets."""
    st.markdown("Each corpus in turn is left out: the models below never heard a voice of it. Ordinary voices "
                "(speechocean762, no emotion labels) are right when called neutral or calm; angry, fearful or "
                "disgust is a false alarm.")
    rows = [row for row in loco.rows if row.length == "sentence"]

    def right(scores) -> str:
        share = scores.neutral_or_calm_share
        return percent(scores.accuracy if share is None else share)

    def target(row) -> str:
        verdicts = [f"{'at least' if t.at_least else 'at most'} {percent(t.value)}: "
                    f"{'met' if t.met(row.scores) else 'not met'}" for t in row.targets]
        return f" (target {', '.join(verdicts)})" if verdicts else ""

    table([{"voices": f"{row.left_out}, {row.subset}, {row.scores.clips} clips{target(row)}",
            "model": f"{ANSWERED_BY.get(row.answered_by, row.answered_by)}, trained on {' + '.join(row.trained_on)}",
            "right": right(row.scores),
            "false alarms": "not measured" if row.scores.false_alarm_share is None
            else percent(row.scores.false_alarm_share),
            "a single word: right": "not measured" if loco.word_of(row) is None else right(loco.word_of(row))}
           for row in rows])
    st.caption("Right: within the left-out corpus's emotions (unless the row says as the app answers); ordinary "
               "voices: answered neutral or calm. False alarms: ordinary voices answered angry, fearful or disgust. "
               "A single word: one cut of each clip.")
    corpus = st.radio("Answers on", list(dict.fromkeys(row.left_out for row in rows)), horizontal=True,
                      key="loco-corpus")
    series = {}
    for row in rows:
        if row.left_out == corpus and row.subset == next(r.subset for r in rows if r.left_out == corpus):
            series[ANSWERED_BY.get(row.answered_by, row.answered_by)] = row.scores.answer_share
            word = loco.word_of(row)
            if word is not None and row.answered_by == "recipe":
                series["the recipe, one word of each clip"] = word.answer_share
    app_ui.chart(report_plots.emotion_shares_figure(series=series, emotions=EMOTIONS, axis_title="share of answers"),
                 key="loco-answers")
    st.caption(f"How often each emotion is the answer (a collapse onto one emotion shows as one tall bar). A word: one "
               f"cut of {loco.cuts.minimum:.1f} s to {loco.cuts.maximum:.1f} s of each clip's speech. The recipe's "
               "views learn from every speaker of the other corpora; the shipped bundle is scored only where no part "
               f"of it heard the corpus. Reproduce with `{loco.command}` (measured {loco.measured}).")


def show_unfamiliarity(figures: UnfamiliarityResults) -> None:
    """What the "unlike the training data" warning was measured to do: its checks, how often each fires, its limits."""
    st.markdown("Under an answer the app warns when the recording is unlike the voices it learned from, and says "
                "why: each check below that fired is one reason. The checks read the acoustic statistics the model "
                "computes anyway.")
    table([{"check": check.name, "what it measures": check.measures, "fires when": check.plain_threshold}
           for check in figures.checks])
    # Three sets of audio a table, so that each fits a phone's width.
    for start in range(0, len(figures.audio), 3):
        group = figures.audio[start:start + 3]
        rows = [(check.name, check.code) for check in figures.checks] + [("any check: the warning", "any")]
        table([{"check": name, **{f"{audio.short_name} ({audio.clips} clips)": percent(audio.flagged[code])
                                  for audio in group}} for name, code in rows])
    ravdess, laptop = figures.audio_named("ravdess"), figures.audio_named("laptop_mic")
    st.caption(
        "The share of clips each check fired on. "
        + (f"On training actors the model never heard it warns on {percent(ravdess.flagged['any'])} of clips (one "
           f"actor {percent(figures.per_actor_max)}): each group of actors checked against thresholds set on the "
           "others only. " if ravdess else "")
        + "The Amharic speakers were held out from fitting too; espeak-ng, the telephone and laptop copies and the "
        "music were never used for fitting or for choosing anything. It cannot know how it does on natural speech, "
        "languages other than Amharic or neural text-to-speech: none was available to measure."
        + (f" No check targets a laptop microphone ({percent(laptop.flagged['any'])} warned)." if laptop else "")
        + " A warning says the input is unlike the training data, not that it is poor; no warning does not mean the "
        f"answer is right. Reproduce with `{figures.command}`; the protocol is in docs/familiarity.md."
    )


def _confidence(scores: ClipSetScores) -> dict[str, float | None]:
    return {"ece": scores.ece_15_bins, "sure": scores.sure_share, "wrong": scores.wrong_when_sure}


app_ui.page_setup("Model")
st.title("How well the model works")

folder = app_ui.model_dir()
if not (folder / "metrics.json").is_file():
    st.error(f"No metrics.json in {folder}; run `python -m ser train` to write it.")
    st.stop()
try:
    results = _results(folder)
except ResultsError as error:
    st.error(str(error))
    st.stop()
training = results.training
headline = training.headline
cv = training.cross_validation
labels = training.labels
chance = 1 / len(labels) if labels else None
for note in results.notes:
    st.info(note)

# ---- the headline and the summary in plain words --------------------------------------------------
columns = st.columns(3)
columns[0].metric("accuracy on unseen speakers", percent(headline.accuracy),
                  help="The share of clips whose emotion it names right, each clip scored by a model that never "
                       "heard its speaker.")
columns[1].metric("unweighted average recall", percent(headline.uar),
                  help="Each emotion's share of clips recognised, averaged: every emotion counts the same, however "
                       "many clips it has.")
if chance:
    columns[2].metric("chance", percent(chance), help=f"Guessing among {len(labels)} emotions.")
st.markdown("\n".join(f"- **{lead}:** {text}" for lead, text in plain_summary(results).items()))
st.caption(f"Measured by {headline.protocol}; how, exactly, is under *For specialists* below.")

# ---- for everyone: emotions, voices, conditions --------------------------------------------------
st.header("Which emotions it mixes up")
matrix = cv.confusion_matrix
view = st.segmented_control("Show", CONFUSION_VIEWS, default=CONFUSION_VIEWS[0], key="cm-view") or CONFUSION_VIEWS[0]
app_ui.chart(report_plots.confusion_matrix_figure(labels=matrix.labels, counts=matrix.counts,
                                                  normalize=view == CONFUSION_VIEWS[0]), key="confusion-matrix")
st.caption("The confusion matrix: each row is a true emotion, each column the model's answer, so the diagonal is how "
           "often each emotion is recognised. Every clip is scored by the model that never heard its speaker.")

st.header("Each emotion")
table([{"emotion": name, "recall": percent(row.recall), "precision": percent(row.precision), "F1": percent(row.f1),
        "clips": str(row.support)} for name, row in cv.per_class.items()])
st.caption("Recall: the share of that emotion's clips it recognised. Precision: the share of its answers of that "
           f"emotion that were right. F1 balances the two; their mean (macro F1) is {percent(headline.macro_f1)}.")

st.header("Each voice")
app_ui.chart(report_plots.per_actor_figure(per_actor=[dataclasses.asdict(row) for row in cv.per_actor],
                                           chance=chance), key="per-actor")
spread = cv.per_actor_spread
st.caption(f"Accuracy per actor: from {percent(spread.min)} to {percent(spread.max)}, standard deviation "
           f"{100 * spread.std:.1f} percentage points.")

robustness = results.robustness
if robustness:
    st.header("Off the studio")
    st.markdown(
        "The training voices were recorded in a studio; your microphone is not. Here every clip is corrupted "
        "(noise, a reverberant room, a telephone line, codecs, a thin laptop microphone) or cut down to about one "
        "word, then scored the way this app scores an upload, by the model that never heard its speaker."
    )
    table([{"condition": CONDITION_NAMES.get(name, name) + ("\u00a0†" if row.seen_in_training else ""),
            "accuracy": percent(row.accuracy), "unweighted average recall": percent(row.uar),
            "same answer as in the studio": percent(row.same_answer_as_clean / robustness.clips),
            "refused as no speech": percent(row.refused / robustness.clips)}
           for name, row in robustness.conditions.items()])
    caption = (f"† The model was trained on noisy, sometimes reverberant copies of its clips; the other conditions it "
               f"never heard in training. {robustness.clips} clips; a refusal counts as an error. Reproduce with "
               f"`{robustness.command}`.")
    level = results.level_check
    if level:
        caption += (f" Played {level.gain_db:g} dB quieter and louder, {level.changed} of {level.compared} answers "
                    f"changed; {level.refused_quieter} of {level.answered} quieter and {level.refused_louder} of "
                    f"{level.answered} louder copies were refused as no speech (`{level.command}`).")
    st.caption(caption)
    kept = {name: row.answer_share for name, row in robustness.conditions.items() if most_given(row.answer_share)}
    if kept:  # a collapse onto one emotion shows here (a table wider than five columns does not fit a phone)
        even = percent(1 / len(next(iter(kept.values()))))
        st.caption(f"The answer given most often in each condition, among the clips answered (an even spread: {even} "
                   "each): " + "; ".join(f"{CONDITION_NAMES.get(name, name)} → {most_given(shares)[0]} "
                                         f"{percent(most_given(shares)[1])}" for name, shares in kept.items()) + ".")

st.header("Voices it was not trained on")
check = results.corpus_check
if check is None:
    st.info(f"Not measured for this model yet: `{CORPUS_CHECK_COMMAND}` scores a "
            "corpus it never heard (ASED, Amharic) and writes `corpus_check.json`.")
else:
    show_corpus_check(check, training=training)
if results.routing is not None:
    st.subheader("Voices unlike RAVDESS's actors")
    show_routing(results.routing)

if results.loco is not None:
    st.subheader("Corpora it never heard: leave one corpus out")
    show_loco(results.loco)
else:
    st.info("Leave one corpus out is not measured for this model yet: `python -m ser loco --data ../shared/data` "
            "writes `loco.json`.")

if results.profile is not None:
    st.subheader("Voices it was taught")
    show_profile(results.profile)

# ---- for specialists --------------------------------------------------------------------------------
st.header("For specialists")
with st.expander("How it was measured", expanded=False):
    st.markdown(cv.protocol)
    st.markdown(f"Macro F1 {percent(headline.macro_f1)}. The same unseen speakers' gender is recognised "
                f"{percent(cv.gender_accuracy)} of the time, the intensity of the emotion (normal or strong) "
                f"{percent(cv.intensity_accuracy)}.")
    st.caption(f"Reproduce with `{training.command}`.")

views = cv.views
if views:
    with st.expander("Each view of the voice"):
        st.markdown(
            "The model hears each clip through several views: a **CNN over the log-mel spectrogram** (what you "
            f"see on the Analyze page), a **linear model over {training.training.recipe.n_functionals} openSMILE "
            "acoustic functionals** (pitch, loudness, voice quality and spectral statistics of the whole clip)"
            + (", and a **second linear model on only their voice-source part** (pitch, jitter, shimmer, "
               "harmonics-to-noise ratio)" if "voicing" in views else "")
            + ". Their probabilities are fused as a normalised geometric mean (a class one view confidently "
            "rules out stays unlikely). Each view alone, and all fused, on the same unseen speakers:"
        )
        table([{"view": VIEW_NAMES.get(name, name), "accuracy": percent(row.accuracy),
                "unweighted average recall": percent(row.uar), "macro F1": percent(row.macro_f1)}
               for name, row in views.items()])

calibration = cv.calibration
with st.expander("Confidence and “not sure”"):
    app_ui.chart(report_plots.reliability_figure(before=dataclasses.asdict(calibration.reliability_before),
                                                 after=dataclasses.asdict(calibration.reliability_after)),
                 key="reliability")
    bins = len(calibration.reliability_before.confidence)
    st.markdown(
        "A perfectly calibrated model is right as often as it is confident (the dotted line). "
        f"The raw confidences are divided by a temperature of **{calibration.temperature:.2f}** "
        f"({calibration.method}), which brings the expected calibration error ({bins} bins) from "
        f"{percent(calibration.ece_15_bins_before)} to {percent(calibration.ece_15_bins_after)}.\n\n"
        f"The app says *not sure* below **{percent(calibration.confidence_threshold)}** confidence, the "
        f"{plain_rule(calibration.threshold_rule).rstrip('.')}."
    )

with st.expander("When it warns: unlike the training data"):
    if results.unfamiliarity is None:
        st.info(f"Not measured for this model: `{UNFAMILIARITY_PRODUCER}` builds the "
                "warning and writes what it measured to `unfamiliarity.npz`.")
    else:
        show_unfamiliarity(results.unfamiliarity)

evaluation = results.evaluation
leaky = evaluation.leaky_random_split if evaluation else None
with st.expander("Baselines, and what a leaky split would claim"):
    st.markdown(
        "A **random split** puts clips of the same actor in both training and test data, so a model can "
        "recognise the *voice* instead of the emotion and looks better than it is. The figures this app reports "
        "are **grouped by actor** (test speakers never heard); the leaky figures only show that gap."
    )
    # Four columns, so the table fits a phone; the leaky split's recall is in the model card.
    rows = [{"model": "**this model** (log-mel CNN + functionals)" if views else "**this model** (CNN on log-mel)",
             "accuracy, unseen speakers": percent(headline.accuracy),
             "recall, unseen speakers": percent(headline.uar),
             "accuracy, leaky split": percent(leaky.accuracy) if leaky else "not measured"}]
    for baseline in evaluation.baselines if evaluation else []:
        rows.append({"model": baseline.name, "accuracy, unseen speakers": percent(baseline.accuracy),
                     "recall, unseen speakers": percent(baseline.uar),
                     "accuracy, leaky split": percent(baseline.leaky_accuracy)})
    table(rows)
    st.caption("Recall: unweighted average recall, every emotion counted the same.")
    if evaluation and evaluation.baselines:
        st.markdown("\n".join(f"- **{baseline.name}**: {baseline.description}." for baseline in evaluation.baselines))
    else:
        st.info("No baselines for this model yet; `python -m ser evaluate --baselines` writes them to "
                "evaluation.json.")
    if leaky:
        protocol = re.sub(r"^\s*LEAKY\s*:\s*", "", leaky.protocol)
        st.caption(f"How the leaky split was made: {sentence(protocol)}")

seed_check = results.seed_check
if seed_check:
    with st.expander("Trained again with another seed"):
        cnn = views.get("log_mel_cnn") if views else None
        st.markdown(
            f"{sentence(seed_check.what)} The fused model is right {percent(seed_check.fused_accuracy)} of the "
            f"time (unweighted average recall {percent(seed_check.fused_uar)}), against "
            f"{percent(headline.accuracy)} ({percent(headline.uar)}) as shipped"
            + (f"; the CNN alone {percent(seed_check.cnn_accuracy)} against {percent(cnn.accuracy)}" if cnn else "")
            + "."
        )
        st.caption(f"Reproduce with `{seed_check.command}`.")

with st.expander("Learning curves and folds"):
    curves = [{"fold": curve.fold, **curve.history} for curve in cv.curves]
    if curves:
        available = [name for name, key in CURVE_METRICS.items() if any(key in curve for curve in curves)]
        metric = st.segmented_control("Metric", available, default=available[0], key="curve-metric") or available[0]
        app_ui.chart(report_plots.learning_curves_figure(curves=curves, metric=CURVE_METRICS[metric]), key="curves")
        st.caption("Solid: training batches (augmented); dashed: the fold's validation speakers.")
    else:
        st.info("metrics.json has no learning curves.")
    table([{"fold": str(fold.fold), "test actors": ", ".join(map(str, fold.test)), "accuracy": percent(fold.accuracy),
            "unweighted average recall": percent(fold.uar), "epochs": f"{fold.epochs} (refit {fold.refit_epochs})"}
           for fold in cv.per_fold])

with st.expander("Training data"):
    data = training.data
    counts = {name: per_emotion for name, per_emotion in (("speech", data.speech_per_emotion),
                                                          ("song", data.song_per_emotion)) if per_emotion}
    app_ui.chart(report_plots.class_distribution_figure(counts=counts), key="class-distribution")
    facts = [f"{data.speech_clips} speech and {data.song_clips} song clips from {len(data.actors)} actors."]
    if len(data.intensity_labels) > 1 and data.speech_per_emotion.get("neutral"):
        facts.append("Neutral is recorded at one intensity only, so it has fewer clips.")
    unsung = [name for name, count in data.song_per_emotion.items() if count == 0]
    if data.song_clips and unsung:
        facts.append(f"The songs have no {' or '.join(unsung)}.")
    st.caption(" ".join(facts))

with st.expander("Training settings and versions"):
    table([{"setting": SETTING_NAMES.get(name, name.replace("_", " ")), "value": str(value)}
           for name, value in training.training.settings.items()])
    table([{"package": name, "version": version} for name, version in training.versions.items()])
    st.caption(f"Trained in {training.training.wall_seconds / 60:.0f} minutes on {training.training.machine}; "
               f"measured {training.measured}.")
