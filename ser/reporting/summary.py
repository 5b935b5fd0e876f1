"""The model's results in plain words, for the Home and Model pages: every number read from the result files.

A non-specialist reads :func:`plain_summary` in ten seconds: what the model was trained on, which
voices it knows, how often it is right on a voice it never heard, and where it is weak (the
emotions it recognises least, the spread between speakers, the recording conditions that cost
most). :func:`voices_sentence` is its one-sentence form for the Home page. :func:`corpus_summary`
says in words how it does on a corpus it never heard (``corpus_check.json``). :func:`percent` is
the one number format of both pages.

Example
-------
>>> from ser.reporting.results import load_training
>>> from ser.reporting.summary import voices_sentence
>>> voices_sentence(load_training("models/metrics.json"))  # doctest: +SKIP
'It knows the voices of 20 of the 24 North-American English actors of RAVDESS (10 women, 10 men), ...'
"""

from __future__ import annotations

import dataclasses
import re

from ser.reporting.corpus_results import CorpusCheckResults
from ser.reporting.model_card import CONDITION_NAMES, weakest_recordings
from ser.reporting.model_results import ModelResults
from ser.reporting.results import ConfusionMatrix, TrainingResults


@dataclasses.dataclass(frozen=True)
class Corpus:
    """What a training corpus's result files do not record: its language and how it was recorded.

    ``speakers`` names its speakers ("actors"); ``acted`` says the emotions were acted, not
    spontaneous; ``place`` says where it was recorded ("in a studio"); ``corpus_speakers`` is how
    many speakers the whole corpus has (some may be kept back from training); ``professional``
    says they act for a living.
    """

    name: str
    language: str
    speakers: str
    acted: bool
    place: str
    corpus_speakers: int = 0
    professional: bool = False


#: The corpora of ``../shared/data`` (see its README), found by name in the protocol ``train`` records.
CORPORA: tuple[Corpus, ...] = (
    Corpus(name="RAVDESS", language="North-American English", speakers="actors", acted=True, place="in a studio",
           corpus_speakers=24, professional=True),
    Corpus(name="ASED", language="Amharic", speakers="speakers", acted=True, place="in their own rooms",
           corpus_speakers=65),
)
_GENDER_WORDS = {"female": "women", "male": "men"}


def percent(value: float | None) -> str:
    """A fraction in [0, 1] as a percentage with one decimal (``0.6658`` -> ``"66.6%"``), the pages' one format."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def sentence(text: str) -> str:
    """``text`` as one sentence: first letter upper-case, one full stop at the end."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "." if text else ""


def training_corpora(training: TrainingResults) -> tuple[Corpus, ...]:
    """The corpora of :data:`CORPORA` whose name the recorded protocol mentions."""
    protocol = f"{training.headline.protocol} {training.cross_validation.protocol}"
    return tuple(corpus for corpus in CORPORA if re.search(rf"\b{re.escape(corpus.name)}\b", protocol))


def _speakers_phrase(training: TrainingResults, *, of_corpus: bool = False) -> str:
    """``"20 North-American English actors of RAVDESS (10 women, 10 men)"``, from the data counts;
    ``of_corpus`` says how many the corpus has when training used fewer ("20 of the 24 ...")."""
    corpora = training_corpora(training)
    count = len(training.data.actors)
    genders = [row.gender for row in training.cross_validation.per_actor]
    split = ", ".join(f"{genders.count(gender)} {_GENDER_WORDS.get(gender, gender)}"
                      for gender in sorted(sorted(set(genders)), key=lambda gender: -genders.count(gender)))
    if len(corpora) == 1:
        corpus = corpora[0]
        some = f"{count} of the {corpus.corpus_speakers}" if of_corpus and 0 < count < corpus.corpus_speakers \
            else f"{count}"
        phrase = f"{some} {corpus.language} {corpus.speakers} of {corpus.name}"
    elif corpora:
        phrase = f"{count} speakers of {' and '.join(corpus.name for corpus in corpora)} " \
                 f"({' and '.join(corpus.language for corpus in corpora)})"
    else:
        phrase = f"the {count} speakers it was trained on"
    return f"{phrase} ({split})" if split else phrase


def voices_sentence(training: TrainingResults) -> str:
    """One sentence: which voices the model knows, and which it reads less reliably.

    Built from ``metrics.json`` (speakers, their genders, the corpus named in the protocol) and
    :data:`CORPORA` (language, size, acted or not, by professionals or not, where recorded). Phone
    calls are named because the telephone band is the recording condition that costs most
    (``models/robustness.json``).
    """
    corpora = training_corpora(training)
    how = ""
    if corpora and all(corpus.acted for corpus in corpora):
        places = sorted({corpus.place for corpus in corpora})
        who = "professionals acting" if all(corpus.professional for corpus in corpora) else "acting"
        how = f", {who} emotions {' or '.join(places)}"
    worse = ["other languages"]
    if any(corpus.acted for corpus in corpora):
        worse.append("everyday unacted speech")
    worse.append("phone calls")
    listed = ", ".join(worse[:-1]) + f" and {worse[-1]}"
    speakers = _speakers_phrase(training, of_corpus=True)
    return f"It knows the voices of {speakers}{how}, and reads {listed} less reliably."


def _listed(pairs: list[tuple[float, str]]) -> str:
    """``[(0.79, "angry"), (0.76, "disgust")]`` as ``"angry (79.0%) and disgust (76.0%)"``."""
    return " and ".join(f"{name} ({percent(value)})" for value, name in pairs)


def top_confusion(matrix: ConfusionMatrix, emotion: str) -> tuple[str, float] | None:
    """The emotion that clips of ``emotion`` are most often taken for, and the share of them."""
    row = matrix.counts[matrix.labels.index(emotion)]
    total = sum(row)
    others = [(count, label) for label, count in zip(matrix.labels, row, strict=True) if label != emotion]
    if not total or not others:
        return None
    count, label = max(others)
    return (label, count / total) if count else None


@dataclasses.dataclass(frozen=True)
class PlainSummary:
    """The Model page's summary, one Markdown sentence per point; ``conditions`` is None without robustness.json."""

    trained_on: str
    unseen_voices: str
    emotions: str
    speakers: str
    conditions: str | None
    confidence: str
    other_language: str | None = None

    def items(self) -> list[tuple[str, str]]:
        """(lead words, sentence) in reading order, the missing points left out."""
        points = [("Trained on", self.trained_on), ("On a voice it never heard", self.unseen_voices),
                  ("Emotions", self.emotions), ("Voices", self.speakers), ("Off the studio", self.conditions),
                  ("Another language", self.other_language), ("When it is sure", self.confidence)]
        return [(lead, text) for lead, text in points if text]


def plain_summary(results: ModelResults) -> PlainSummary:
    """What a non-specialist needs to know about the model, generated from its result files."""
    training = results.training
    cv = training.cross_validation
    data = training.data
    labels = training.labels
    corpora = training_corpora(training)
    sung = f" (and {data.song_clips} sung)" if data.song_clips else ""
    acted = "acted " if corpora and all(corpus.acted for corpus in corpora) else ""
    place = f", recorded {' or '.join(sorted({corpus.place for corpus in corpora}))}" if corpora else ""
    trained_on = (f"{data.speech_clips} {acted}speech clips{sung} of {_speakers_phrase(training)}{place}; "
                  f"{len(labels)} emotions.")

    chance = 1 / len(labels) if labels else None
    unseen_voices = (
        f"it names the right emotion **{percent(training.headline.accuracy)}** of the time (chance: {percent(chance)}, "
        f"one in {len(labels)}); {percent(training.headline.uar)} counting every emotion equally (unweighted "
        "average recall)."
    )

    recall = sorted(((scores.recall, name) for name, scores in cv.per_class.items()), reverse=True)
    best, weakest = recall[:2], recall[-2:][::-1]
    emotions = f"it recognises {_listed(best)} best, {_listed(weakest)} least"
    confusion = top_confusion(cv.confusion_matrix, weakest[0][1]) if weakest else None
    if confusion:
        emotions += f"; {weakest[0][1]} is most often taken for {confusion[0]} ({percent(confusion[1])} of its clips)"
    emotions += "."

    spread = cv.per_actor_spread
    speakers = f"from {percent(spread.min)} right for the hardest speaker to {percent(spread.max)} for the easiest."

    conditions = None
    if results.robustness and "clean" in results.robustness.conditions:
        rows = results.robustness.conditions
        worst = weakest_recordings(rows)[::-1]
        if worst:
            listed = " and ".join(f"{percent(value)} for {CONDITION_NAMES.get(name, name)}" for value, name in worst)
            conditions = f"accuracy falls from {percent(rows['clean'].accuracy)} on the studio recordings to {listed}."

    calibration = cv.calibration
    confidence = (f"below {percent(calibration.confidence_threshold)} confidence it says “not sure”; it answers "
                  f"{percent(calibration.coverage_above_threshold)} of the clips of unseen speakers")
    if calibration.accuracy_above_threshold is not None:
        confidence += f" and is right on {percent(calibration.accuracy_above_threshold)} of those"
    other_language = corpus_summary(results.corpus_check, training=training).right if results.corpus_check else None
    return PlainSummary(trained_on=trained_on, unseen_voices=unseen_voices, emotions=emotions, speakers=speakers,
                        conditions=conditions, confidence=confidence + ".", other_language=other_language)


@dataclasses.dataclass(frozen=True)
class CorpusSummary:
    """How the model does on a corpus it never heard, one Markdown sentence per point (``synthetic``
    is None when it was not measured, ``confidence`` names RAVDESS beside it when known)."""

    right: str
    words: str
    answers: str
    calibrated: str
    confidence: str
    speakers: str
    synthetic: str | None

    def items(self) -> list[tuple[str, str]]:
        """(lead words, sentence) in reading order, the missing points left out."""
        points = [("Right", self.right), ("Where the words cannot help", self.words), ("What it answers", self.answers),
                  ("With a reference", self.calibrated), ("When it is sure", self.confidence),
                  ("Voices", self.speakers), ("Synthetic speech", self.synthetic)]
        return [(lead, text) for lead, text in points if text]


def _quoted(names: list[str]) -> str:
    return " and ".join(f"“{name}”" for name in names) if len(names) < 3 else \
        ", ".join(f"“{name}”" for name in names[:-1]) + f" and “{names[-1]}”"


def corpus_summary(check: CorpusCheckResults, *, training: TrainingResults | None = None) -> CorpusSummary:
    """``corpus_check.json`` in words: right how often, on which words, what it answers, with a reference,
    how honest its confidence is (beside the training corpus's unseen speakers, from ``training``)."""
    who = f"{check.language} speakers of {check.corpus}"
    restricted, app = check.all_sentences.restricted, check.all_sentences.app
    refused = f"; {app.refused} of {app.clips} clips were refused as no speech" if app.refused else ""
    right = (f"on {check.speakers} {who}, none heard in training, it is right **{percent(restricted.accuracy)}** of "
             f"the time among their {len(check.emotions)} emotions (chance: {percent(1 / len(check.emotions))}), "
             f"{percent(app.accuracy)} among the {len(check.labels)} it answers in{refused}.")
    common = check.common_sentences.restricted
    words = (f"on the sentences spoken in every emotion ({common.answered} clips), so the words cannot give the "
             f"emotion away, {percent(common.accuracy)}.")
    top = max(app.answer_share, key=app.answer_share.get)
    absent = [name for name in check.labels if name not in check.emotions and app.answer_share.get(name, 0) > 0]
    answers = (f"neutral speech is called neutral {percent(app.recall.get('neutral'))} of the time; "
               f"{percent(app.answer_share[top])} of all answers are “{top}”")
    if absent:
        answers += (f", and {percent(sum(app.answer_share[name] for name in absent))} are {_quoted(absent)}, "
                    f"which {check.corpus} does not have")
    calibrated = check.calibrated
    before, after = calibrated.unadapted, calibrated.adapted
    left_out = (f"; {calibrated.speakers_without_reference} speakers without two neutral clips are left out"
                if calibrated.speakers_without_reference else "")
    with_reference = (
        f"with two clips of the speaker's ordinary (neutral) voice as a reference, it is right "
        f"**{percent(after.restricted.accuracy)}** of the time instead of {percent(before.restricted.accuracy)} on the "
        f"same clips, and neutral speech is called neutral {percent(after.app.recall.get('neutral'))} of the time "
        f"instead of {percent(before.app.recall.get('neutral'))} ({calibrated.speakers} speakers{left_out}).")
    confidence = f"it calls itself sure of {percent(app.sure_share)} of these answers"
    if app.wrong_when_sure is not None:
        confidence += f" and is wrong on {percent(app.wrong_when_sure)} of those"
    ravdess = training.cross_validation.calibration.accuracy_above_threshold if training else None
    if ravdess is not None:
        confidence += f", against {percent(1 - ravdess)} for the unseen actors of the corpus it was trained on"
    spread = restricted.speaker_accuracy
    speakers = (f"from {percent(spread.min)} right for the hardest speaker to {percent(spread.max)} for the easiest "
                f"(median {percent(spread.median)}; some speakers have as few as {spread.fewest_clips} clips).")
    synthetic = None
    if check.synthetic:
        synthetic = (f"flat synthetic English sentences ({check.synthetic.clips} in {len(check.synthetic.voices)} "
                     f"espeak-ng voices, meant as neutral) are called neutral {percent(check.synthetic.neutral_share)} "
                     f"of the time, and it is sure of {percent(check.synthetic.sure_share)} of them.")
    return CorpusSummary(right=right, words=words, answers=answers + ".", calibrated=with_reference,
                         confidence=confidence + ".", speakers=speakers, synthetic=synthetic)
