import numpy as np
import pandas as pd
import pytest

from ser.training.data import EMOTIONS, table_from_rows
from ser.training.linear_views import (
    FunctionalClips,
    LinearRecipe,
    centre_utterances,
    fit_views,
    fuse_probabilities,
    neutral_centroid,
    speaker_offsets,
    training_rows,
    utterance_centring,
)

N_FEATURES = 6


def _clips(seed: int = 0) -> FunctionalClips:
    """Two corpora: 'big' (4 speakers, 4 emotions) and 'small' (2 speakers, 2 emotions); each
    speaker's voice is a constant offset, each emotion a direction."""
    rng = np.random.default_rng(seed)
    rows, values = [], []
    emotion_direction = rng.standard_normal((len(EMOTIONS), N_FEATURES))
    plan = [("big", s, ("neutral", "happy", "sad", "angry"), 6) for s in range(4)]
    plan += [("small", s, ("neutral", "angry"), 3) for s in range(2)]
    for corpus, speaker, emotions, per_emotion in plan:
        voice = 3 * rng.standard_normal(N_FEATURES)
        for emotion in emotions:
            for take in range(per_emotion):
                rows.append({"path": f"/{corpus}/{speaker}/{emotion}/{take}", "corpus": corpus,
                             "speaker": f"{corpus}-{speaker}", "gender": "male", "emotion": emotion,
                             "sentence": take % 2 + 1, "text": f"t{take % 2}", "common_sentence": False,
                             "repetition": take // 2 + 1, "vocal_channel": "speech", "intensity": None})
                noise = 0.3 * rng.standard_normal(N_FEATURES)
                values.append(voice + emotion_direction[EMOTIONS.index(emotion)] + noise)
    values = np.array(values, dtype=np.float32)
    return FunctionalClips(table=table_from_rows(rows), speeds={1.0: values, 0.9: values + 0.01, 1.1: values - 0.01},
                           room=values + 0.1 * rng.standard_normal(values.shape).astype(np.float32))


def test_training_rows_copies_masks_and_weights():
    clips = _clips()
    everyone = np.ones(len(clips), dtype=bool)
    values, labels, mask, weights = training_rows(clips, everyone, recipe=LinearRecipe())
    assert values.shape == (4 * len(clips), N_FEATURES) and labels.shape == weights.shape == (4 * len(clips),)
    assert mask[np.arange(len(labels)), labels].all()  # every label is taught by its row
    small = np.tile(clips.corpus == "small", 4)
    assert set(np.flatnonzero(mask[small].any(axis=0))) == {EMOTIONS.index("neutral"), EMOTIONS.index("angry")}
    # Equal corpus shares, classes balanced within each corpus.
    assert np.isclose(weights[small].sum(), weights[~small].sum())
    for corpus_rows in (small, ~small):
        totals = pd.Series(weights[corpus_rows]).groupby(labels[corpus_rows]).sum()
        assert np.allclose(totals, totals.iloc[0])
    unmasked = training_rows(clips, everyone, recipe=LinearRecipe(masked=False, room_copies=False))[2]
    assert unmasked.all() and unmasked.shape[0] == 3 * len(clips)
    by_size = training_rows(clips, everyone, recipe=LinearRecipe(corpus_share="size", speed_copies=False))[3]
    small_share = by_size[np.tile(clips.corpus == "small", 2)].sum() / by_size.sum()
    assert np.isclose(small_share, np.mean(clips.corpus == "small"))


def test_speaker_offsets_move_each_reference_onto_the_centroid():
    clips = _clips(1)
    everyone = np.ones(len(clips), dtype=bool)
    centroid = neutral_centroid(clips, everyone)
    offsets = speaker_offsets(clips, everyone, centroid=centroid)
    shifted = clips.speeds[1.0] + offsets
    for speaker in np.unique(clips.speaker):
        reference = clips.reference & (clips.speaker == speaker)
        assert reference.sum() == 2
        assert np.allclose(shifted[reference].mean(axis=0), centroid, atol=1e-4)
    # The shift removes most of the between-speaker spread of neutral clips.
    neutral = clips.labels == EMOTIONS.index("neutral")
    spread_before = pd.DataFrame(clips.speeds[1.0][neutral]).groupby(clips.speaker[neutral]).mean().std().mean()
    spread_after = pd.DataFrame(shifted[neutral]).groupby(clips.speaker[neutral]).mean().std().mean()
    assert spread_after < 0.3 * spread_before


def test_calibration_recovers_emotions_that_unseen_voices_hide():
    # Each voice is a large constant offset: unseen voices confuse the plain model; moving each
    # speaker's neutral reference onto the training centroid (and training that way) undoes it.
    clips = _clips(2)
    train = np.isin(clips.speaker, ["big-0", "big-1", "big-2", "small-0"])
    test = ~train & ~clips.reference
    offsets = np.nan_to_num(speaker_offsets(clips, test, centroid=neutral_centroid(clips, train))[test])
    accuracy = {}
    for name, recipe, shift in (("plain", LinearRecipe(), 0), ("plain+offset", LinearRecipe(), offsets),
                                ("shift-trained", LinearRecipe(speaker_shift="shifted"), offsets)):
        view = fit_views(clips, train, recipe=recipe, c_values=(1.0,))[0]
        probabilities = view.probabilities(clips.speeds[1.0][test] + shift)
        assert probabilities.shape == (test.sum(), len(EMOTIONS))
        assert np.allclose(probabilities.sum(axis=1), 1.0)
        accuracy[name] = np.mean(probabilities.argmax(axis=1) == clips.labels[test])
    assert accuracy["shift-trained"] > 0.9 and accuracy["plain+offset"] > accuracy["plain"]


def test_utterance_centring_subtracts_the_median_from_location_functionals():
    names = ["mfcc_sma[1]_quartile2", "mfcc_sma[1]_amean", "mfcc_sma[1]_stddev", "mfcc_sma_de[1]_quartile2",
             "mfcc_sma_de[1]_amean", "F0final_sma_quartile2", "F0final_sma_percentile99.0"]
    pairs = utterance_centring(names, families=("mfcc",))
    assert [(m, t.tolist()) for m, t in pairs] == [(0, [1, 0])]  # deltas and other families untouched
    values = np.arange(14, dtype=np.float32).reshape(2, 7)
    centred = centre_utterances(values, pairs)
    assert centred[0, 0] == 0 and centred[0, 1] == values[0, 1] - values[0, 0]
    assert np.array_equal(centred[:, 2:], values[:, 2:])
    assert len(utterance_centring(names, families=("",))) == 2


def test_fusion_matches_the_shipped_numpy_twin():
    layers = pytest.importorskip("ser.serving.layers")
    rng = np.random.default_rng(3)
    a, b = rng.dirichlet(np.ones(8), 5), rng.dirichlet(np.ones(8), 5)
    assert np.allclose(fuse_probabilities(a, b), layers.fuse_views(a, b))


def test_recipe_refuses_unknown_choices():
    with pytest.raises(ValueError, match="corpus_share"):
        LinearRecipe(corpus_share="half")
    with pytest.raises(ValueError, match="speaker_shift"):
        LinearRecipe(speaker_shift="yes")
    with pytest.raises(ValueError, match="utterance_centring"):
        LinearRecipe(utterance_centring="f0")


def test_specific_sentences_can_be_weighted_down_or_left_out():
    clips = _clips(4)
    clips.table["common_sentence"] = clips.table["sentence"] == 1  # sentence 2: spoken in one emotion only
    everyone = np.ones(len(clips), dtype=bool)
    specific = ~clips.table["common_sentence"].to_numpy(bool)
    plain = LinearRecipe(speed_copies=False, room_copies=False, class_balance=False, corpus_share="size")
    kept = training_rows(clips, everyone, recipe=plain)[3]
    assert np.allclose(kept, 1.0)
    half_weight = LinearRecipe(speed_copies=False, room_copies=False, class_balance=False, corpus_share="size",
                               specific_sentence_weight=0.5)
    half = training_rows(clips, everyone, recipe=half_weight)[3]
    for corpus in ("big", "small"):  # within a corpus, half the weight (each corpus keeps its share)
        mine = clips.corpus == corpus
        assert np.allclose(half[mine & specific], 0.5 * half[mine & ~specific][0])
        assert np.allclose(half[mine & ~specific], half[mine & ~specific][0])
    values = training_rows(clips, everyone, recipe=LinearRecipe(specific_sentence_weight=0.0))[0]
    assert len(values) == 4 * int((~specific).sum())
    with pytest.raises(ValueError, match="specific_sentence_weight"):
        LinearRecipe(specific_sentence_weight=-1.0)


def test_corpus_weights_set_each_corpus_share():
    clips = _clips(5)
    everyone = np.ones(len(clips), dtype=bool)
    weights = training_rows(clips, everyone, recipe=LinearRecipe(corpus_weights=(("big", 3.0), ("small", 1.0))))[3]
    big = np.tile(clips.corpus == "big", 4)
    assert np.isclose(weights[big].sum() / weights.sum(), 0.75)


def test_a_partial_label_corpus_trains_through_target_sets():
    # A third corpus of ordinary voices, labelled "neutral or calm": its rows get label -1 and the
    # target set {neutral, calm}, teach all eight emotions, and weigh as much as each other corpus.
    from ser.training.corpora import NEUTRAL_OR_CALM
    from ser.training.linear_views import training_copies

    clips = _clips()
    rng = np.random.default_rng(1)
    extra = [{"path": f"/ordinary/{i}", "corpus": "ordinary", "speaker": f"ordinary-{i % 3}", "gender": "female",
              "emotion": NEUTRAL_OR_CALM, "sentence": None, "text": None, "common_sentence": None,
              "repetition": None, "vocal_channel": "speech", "intensity": None} for i in range(9)]
    neutral = clips.speeds[1.0][clips.table["emotion"].to_numpy() == "neutral"].mean(axis=0)
    ordinary = (neutral + 0.3 * rng.standard_normal((9, N_FEATURES))).astype(np.float32)
    table = pd.concat([clips.table, table_from_rows(extra)], ignore_index=True)
    speeds = {speed: np.concatenate([values, ordinary]) for speed, values in clips.speeds.items()}
    both = FunctionalClips(table=table, speeds=speeds, room=np.concatenate([clips.room, ordinary]))
    is_ordinary = both.corpus == "ordinary"
    assert (both.labels[is_ordinary] == -1).all() and both.class_mask[is_ordinary].all()
    assert both.targets[is_ordinary][:, [EMOTIONS.index("neutral"), EMOTIONS.index("calm")]].all()
    assert both.targets[is_ordinary].sum(axis=1).tolist() == [2] * 9
    everyone = np.ones(len(both), dtype=bool)
    copies = training_copies(both, everyone, recipe=LinearRecipe())
    corpus = np.tile(both.corpus, 4)
    shares = [copies.weights[corpus == name].sum() for name in ("big", "small", "ordinary")]
    assert np.allclose(shares, shares[0])
    view = fit_views(both, everyone, recipe=LinearRecipe(), c_values=(1.0,))[0]
    answers = view.probabilities(ordinary).argmax(axis=1)
    assert np.isin(answers, [EMOTIONS.index("neutral"), EMOTIONS.index("calm")]).mean() > 0.8
    # Without the partial-label corpus the fits are the single-label path, as before.
    values, labels, mask, weights = training_rows(clips, np.ones(len(clips), dtype=bool), recipe=LinearRecipe())
    assert (labels >= 0).all()


def test_a_class_only_a_partial_label_names_leaves_it():
    # Trained on a corpus of neutral and angry clips and the ordinary voices, nothing teaches calm as
    # a class of its own: "neutral or calm" then means neutral, and the model answers neutral or angry.
    from ser.training.corpora import NEUTRAL_OR_CALM
    from ser.training.linear_views import single_label_classes, training_copies

    clips = _clips()
    extra = [{"path": f"/ordinary/{i}", "corpus": "ordinary", "speaker": f"ordinary-{i}", "gender": "male",
              "emotion": NEUTRAL_OR_CALM, "sentence": None, "text": None, "common_sentence": None,
              "repetition": None, "vocal_channel": "speech", "intensity": None} for i in range(3)]
    ordinary = clips.speeds[1.0][:3]
    both = FunctionalClips(table=pd.concat([clips.table, table_from_rows(extra)], ignore_index=True),
                           speeds={s: np.concatenate([v, ordinary]) for s, v in clips.speeds.items()},
                           room=np.concatenate([clips.room, ordinary]))
    rows = np.isin(both.corpus, ["small", "ordinary"])
    expected = [EMOTIONS.index("neutral"), EMOTIONS.index("angry")]
    assert np.flatnonzero(single_label_classes(both, rows)).tolist() == expected
    copies = training_copies(both, rows, recipe=LinearRecipe(speed_copies=False, room_copies=False))
    partial = copies.labels < 0
    assert (np.flatnonzero(copies.target_mask[partial].any(axis=0)) == [EMOTIONS.index("neutral")]).all()
    assert np.flatnonzero(copies.class_mask[partial].any(axis=0)).tolist() == expected
    # Once a corpus teaches calm on its own (its "sad" clips called calm here), the label keeps both.
    table = both.table.copy()
    table.loc[table["emotion"] == "sad", "emotion"] = "calm"
    with_calm = FunctionalClips(table=table, speeds=both.speeds, room=both.room)
    copies = training_copies(with_calm, np.ones(len(both), dtype=bool), recipe=LinearRecipe())
    assert copies.target_mask[copies.labels < 0][:, :2].all()
    taught = [EMOTIONS.index(e) for e in ("neutral", "calm", "happy", "angry")]
    assert np.flatnonzero(copies.class_mask[copies.labels < 0].any(axis=0)).tolist() == taught


def test_word_copies_add_one_row_per_scorable_cut_and_need_the_cuts():
    from ser.training.linear_views import training_copies

    clips = _clips()
    everyone = np.ones(len(clips), dtype=bool)
    plain = training_copies(clips, everyone, recipe=LinearRecipe())
    with pytest.raises(ValueError, match="word copies"):
        training_copies(clips, everyone, recipe=LinearRecipe(word_copies=True))
    clips.words = clips.speeds[1.0] * 0.5
    clips.words[:3] = np.nan  # cuts too short to score: no rows
    worded = training_copies(clips, everyone, recipe=LinearRecipe(word_copies=True))
    assert len(worded.labels) == len(plain.labels) + len(clips) - 3
    assert not np.isnan(worded.values).any()
    np.testing.assert_array_equal(worded.values[-(len(clips) - 3):], clips.words[3:])
    np.testing.assert_array_equal(worded.labels[-(len(clips) - 3):], clips.labels[3:])
