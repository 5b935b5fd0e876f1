"""Leave one corpus out (python -m ser loco): scoring, the left-out fit, the result file, the command end to end."""

import numpy as np
import pytest
import soundfile

from ser.config import FeatureConfig
from ser.reporting.loco_results import LocoResults, Target, loco_table, score_set
from ser.training.data import EMOTIONS, table_from_rows
from ser.training.linear_views import FunctionalClips, LinearRecipe

N_FEATURES = 8
SMALL = LinearRecipe(c_grid=(0.1, 1.0), voicing_c_grid=(1.0,))


def _three_corpora(seed: int = 0) -> FunctionalClips:
    """ravdess (8 emotions), ased (5) and speechocean ("neutral or calm"), 5 speakers each; each emotion a
    direction of the features, each voice an offset."""
    rng = np.random.default_rng(seed)
    direction = 2 * rng.standard_normal((len(EMOTIONS), N_FEATURES))
    plan = {"ravdess": EMOTIONS, "ased": ("neutral", "happy", "sad", "angry", "fearful"),
            "speechocean": ("neutral or calm",)}
    rows, values = [], []
    for corpus, emotions in plan.items():
        for speaker in range(5):
            voice = rng.standard_normal(N_FEATURES)
            for emotion in emotions:
                for take in range(3):
                    rows.append({"path": f"/{corpus}/{speaker}/{emotion}/{take}", "corpus": corpus,
                                 "speaker": f"{corpus}-{speaker}", "gender": "female" if speaker % 2 else "male",
                                 "emotion": emotion, "sentence": take % 2 + 1, "text": f"t{take}",
                                 "common_sentence": take == 0, "repetition": 1, "vocal_channel": "speech",
                                 "intensity": None})
                    centre = direction[EMOTIONS.index("neutral" if corpus == "speechocean" else emotion)]
                    values.append(voice + centre + 0.3 * rng.standard_normal(N_FEATURES))
    values = np.array(values, dtype=np.float32)
    clips = FunctionalClips(table=table_from_rows(rows), speeds={1.0: values, 0.9: values + 0.01, 1.1: values - 0.01},
                            room=values + 0.05)
    clips.names = [f"F0final_sma_{i}" if i < 3 else f"mfcc_sma[{i}]_amean" for i in range(N_FEATURES)]
    child = np.isin(clips.speaker, ["speechocean-0", "speechocean-1"])
    clips.age = np.where(clips.corpus == "speechocean", np.where(child, 8, 30), np.nan).astype(float)
    return clips


def test_score_set_counts_target_sets_refusals_and_the_ordinary_voice_shares():
    probabilities = np.zeros((5, len(EMOTIONS)))
    for row, emotion in enumerate(("calm", "disgust", "surprised", "neutral")):
        probabilities[row, EMOTIONS.index(emotion)] = 1.0
    probabilities[2, EMOTIONS.index("neutral")] = 0.1  # surprised is not allowed: the next answer counts
    probabilities[4] = np.nan  # refused
    targets = np.zeros((5, len(EMOTIONS)), dtype=bool)
    targets[:, :2] = True
    allowed = np.ones(len(EMOTIONS), dtype=bool)
    allowed[EMOTIONS.index("surprised")] = False
    scores = score_set(probabilities, targets=targets, labels=np.full(5, -1), speakers=np.array(list("aabbc")),
                       allowed=allowed, ordinary=True)
    assert scores.refused == 1 and scores.uar is None and scores.recall == {}
    assert scores.accuracy == pytest.approx(3 / 5)
    assert scores.neutral_or_calm_share == pytest.approx(3 / 5) and scores.false_alarm_share == pytest.approx(1 / 5)
    assert sum(scores.answer_share.values()) == pytest.approx(1.0) and scores.answer_share["surprised"] == 0
    assert (scores.spread.minimum, scores.spread.median, scores.spread.maximum) == (0.0, 0.5, 1.0)
    assert "surprised" not in scores.answer_space and scores.largest_share[0] == "neutral"
    # Every answer given with certainty (probability 1 within the answer space), 3 of 4 right: ECE 0.25.
    assert scores.ece == pytest.approx(0.25)
    labelled = score_set(np.eye(len(EMOTIONS))[[0, 0]], targets=np.eye(len(EMOTIONS), dtype=bool)[[0, 4]],
                         labels=np.array([0, 4]), speakers=np.array(["a", "b"]), allowed=allowed)
    assert labelled.recall == {"neutral": 1.0, "angry": 0.0} and labelled.uar == 0.5
    assert labelled.neutral_or_calm_share is None and labelled.answer_share["neutral"] == 1.0  # a collapse shows
    with pytest.raises(ValueError, match="score_set needs"):
        score_set(np.zeros((0, len(EMOTIONS))), targets=np.zeros((0, len(EMOTIONS)), bool), labels=np.zeros(0),
                  speakers=np.zeros(0), allowed=allowed)


def test_targets_say_whether_they_are_met():
    scores = score_set(np.eye(len(EMOTIONS))[[0, 6]], targets=np.eye(len(EMOTIONS), dtype=bool)[[0, 0]] | True,
                       labels=np.full(2, -1), speakers=np.array(["a", "b"]), allowed=np.ones(8, bool), ordinary=True)
    assert Target("neutral_or_calm_share", 0.5, True).met(scores)
    assert not Target("false_alarm_share", 0.10, False).met(scores)
    assert not Target("uar", 0.1, True).met(scores)  # no figure: never met
    assert Target("accuracy", 0.45, True).words() == ">= 45%"


@pytest.mark.parametrize("left_out", ["ravdess", "ased", "speechocean"])
def test_leaving_a_corpus_out_never_trains_on_it_and_answers_only_what_the_others_taught(left_out):
    from ser.training.loco import leave_out

    clips = _three_corpora()
    cuts = clips.speeds[1.0] + 0.5
    cuts[np.flatnonzero(clips.corpus == left_out)[0]] = np.nan  # a cut the app refused
    run = leave_out(clips, left_out, recipe=SMALL, cuts=cuts, log=lambda _: None)
    assert set(clips.corpus[run["rows"]]) == {left_out} and left_out not in run["trained_on"]
    assert len(run["rows"]) == int((clips.corpus == left_out).sum())
    assert set(run["chosen"]) == {"functionals", "voicing"} and run["chosen"]["functionals"] in SMALL.c_grid
    taught = {"ravdess": ("neutral", "happy", "sad", "angry", "fearful"), "ased": EMOTIONS, "speechocean": EMOTIONS}
    assert [EMOTIONS[k] for k in np.flatnonzero(run["allowed"])] == list(taught[left_out])
    assert np.isnan(run["cut"][0]).all() and not np.isnan(run["cut"][1:]).any()
    sentence = run["sentence"]
    assert sentence.shape == (len(run["rows"]), len(EMOTIONS))
    np.testing.assert_allclose(sentence.sum(axis=1), 1.0, atol=1e-5)
    assert (sentence[:, ~run["allowed"]] == 0).all()
    # These voices are separable: a model that never heard the corpus still finds its emotions.
    right = clips.targets[run["rows"]][np.arange(len(sentence)), sentence.argmax(axis=1)]
    assert right.mean() > 0.5


def test_leaving_out_an_unknown_corpus_is_refused():
    from ser.training.loco import leave_out

    with pytest.raises(ValueError, match="needs it and another corpus"):
        leave_out(_three_corpora(), "emodb", recipe=SMALL, cuts=np.zeros((1, 1)), log=print)


def test_rows_report_each_corpus_set_with_its_targets_and_round_trip_through_the_file(tmp_path):
    from ser.loco_cli import score_rows
    from ser.reporting.loco_results import LOCO_SCHEMA, CutSummary
    from ser.reporting.results import load_loco
    from ser.reporting.schema import write_results
    from ser.training.loco import leave_out

    clips = _three_corpora()
    rows = []
    for left_out in ("ravdess", "ased", "speechocean"):
        run = leave_out(clips, left_out, recipe=SMALL, cuts=clips.speeds[1.0], log=lambda _: None)
        rows += score_rows(clips, left_out=left_out, answered_by="recipe", trained_on=run["trained_on"],
                           rows=run["rows"], allowed=run["allowed"], answers={"sentence": run["sentence"],
                                                                               "word": run["cut"]})
    subsets = {(row.left_out, row.subset, row.length) for row in rows}
    assert ("ravdess", "5 emotions shared with ASED", "sentence") in subsets
    assert ("ased", "within its 5, the two common sentences", "word") in subsets
    assert ("speechocean", "children (12 or younger)", "sentence") in subsets
    shared = next(row for row in rows if row.subset.startswith("5 emotions") and row.length == "sentence")
    assert shared.scores.clips == 5 * 5 * 3 and set(shared.scores.answer_space) <= {"neutral", "happy", "sad",
                                                                                  "angry", "fearful"}
    assert [t.figure for t in shared.targets] == ["accuracy"]
    ordinary = next(row for row in rows if row.left_out == "speechocean" and row.subset.startswith("all"))
    assert {t.figure for t in ordinary.targets} == {"neutral_or_calm_share", "false_alarm_share"}
    assert 0 <= ordinary.scores.false_alarm_share <= 1 and ordinary.scores.uar is None
    assert all(not row.targets for row in rows if row.length == "word")
    results = LocoResults(schema=LOCO_SCHEMA, model_sha256="x", measured="now", command="c", versions={}, protocol="p",
                          recipe="r", chosen={"ased": {"functionals": 0.1}},
                          cuts=CutSummary(minimum=0.5, median=0.8, maximum=1.2, refused=0, clips=3), minutes=0.1,
                          rows=rows)
    write_results(tmp_path / "loco.json", results)
    again = load_loco(tmp_path / "loco.json")
    assert again == results
    assert again.find(left_out="ased", answered_by="recipe", subset_prefix="within its 5, all").scores.clips == 75
    with pytest.raises(KeyError, match="no shipped row"):
        again.find(left_out="ased", answered_by="shipped")
    table = loco_table(again)
    assert table.count("\n") == len(rows) // 2 + 1 and ">= 45%" in table and "neutral or calm" in table


def _write_corpora(root, *, config: FeatureConfig) -> None:
    """Five speakers of each corpus, two short synthetic clips each, named as each corpus names its files."""
    from ser.testing import synthetic_voice

    def write(path, seed):
        path.parent.mkdir(parents=True, exist_ok=True)
        voice = synthetic_voice(seconds=1.6, pitch=110 + 15 * (seed % 7), seed=seed)
        soundfile.write(path, np.pad(voice, config.sample_rate // 4), config.sample_rate)

    listing = ["file,speaker,gender,age,text"]
    for speaker in range(1, 6):
        for take, emotion in enumerate((1, 5)):  # neutral, angry
            write(root / "ravdess" / f"Actor_{speaker:02d}" / f"03-01-{emotion:02d}-01-01-01-{speaker:02d}.wav",
                  10 * speaker + take)
            ased_code = {1: ("01Neutral", "n"), 5: ("05Angry", "a")}[emotion]
            ased_name = f"{ased_code[1]}{emotion}-01-01-{speaker % 2 + 1:02d}-{speaker:02d}.wav"
            write(root / "ased" / ased_code[0] / ased_name, 100 + 10 * speaker + take)
            name = f"{speaker:04d}_{take}.flac"
            write(root / "speechocean" / name, 200 + 10 * speaker + take)
            listing.append(f"{name},{speaker:04d},{'mf'[speaker % 2]},{8 if speaker < 3 else 30},ZERO")
    (root / "speechocean" / "speakers.csv").write_text("\n".join(listing) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_the_loco_command_writes_every_left_out_corpus_and_the_bundles_rows(tmp_path, tiny_bundle, monkeypatch):
    import shutil

    import ser.loco_cli
    from ser.__main__ import main
    from ser.reporting.results import load_loco

    config = FeatureConfig()
    _write_corpora(tmp_path / "data", config=config)
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    monkeypatch.setattr("ser.training.linear_views.LinearRecipe", lambda: SMALL)
    monkeypatch.setattr(ser.loco_cli, "_log", lambda message: None)
    code = main(["loco", "--data", str(tmp_path / "data"), "--out", str(bundle), "--cache", str(tmp_path / "cache")])
    assert code == 0
    results = load_loco(bundle / "loco.json")
    assert {row.left_out for row in results.rows if row.answered_by == "recipe"} == {"ravdess", "ased", "speechocean"}
    assert {(row.left_out, row.answered_by) for row in results.rows if row.answered_by != "recipe"} == {
        ("speechocean", "shipped"), ("speechocean", "shipped_main"), ("ased", "shipped_main")}
    for row in results.rows:
        assert 0 <= row.scores.accuracy <= 1 and row.scores.clips > 0
        assert sum(row.scores.answer_share.values()) == pytest.approx(1.0) or row.scores.refused == row.scores.clips
    assert results.cuts.clips == 30 and results.cuts.maximum <= 1.2
    assert results.model_sha256 and "python -m ser loco" in results.command
