import numpy as np

from ser.config import FeatureConfig
from ser.training.data import EMOTIONS


def test_set_scores_count_a_target_set_answer_as_right_and_refusals_as_wrong():
    from experiments.loco_linear_report import set_scores

    probabilities = np.zeros((4, len(EMOTIONS)))
    probabilities[0, EMOTIONS.index("calm")] = 1.0  # partial label neutral or calm: right
    probabilities[1, EMOTIONS.index("angry")] = 1.0  # a false alarm
    probabilities[2, EMOTIONS.index("surprised")] = 0.9  # outside the answer space: the next one wins
    probabilities[2, EMOTIONS.index("neutral")] = 0.1
    probabilities[3] = np.nan  # refused
    targets = np.zeros((4, len(EMOTIONS)), dtype=bool)
    targets[:, :2] = True
    allowed = np.ones(len(EMOTIONS), dtype=bool)
    allowed[EMOTIONS.index("surprised")] = False
    scores = set_scores(probabilities, targets=targets, labels=np.full(4, -1), speakers=np.array(list("aabb")),
                        allowed=allowed)
    assert scores["accuracy"] == 0.5 and scores["refused"] == 1 and scores["uar"] is None
    assert np.isclose(scores["answer_share"]["angry"], 1 / 3)
    assert scores["speaker_accuracy"] == {"min": 0.5, "median": 0.5, "max": 0.5}


def test_word_cuts_are_word_length_inside_the_speech_and_repeatable():
    from experiments.loco_linear import CUT_SECONDS, word_cut

    config = FeatureConfig()
    rng = np.random.default_rng(0)
    speech = 0.3 * rng.standard_normal(3 * config.sample_rate).astype(np.float32)
    clip = np.concatenate([np.zeros(config.sample_rate, dtype=np.float32), speech,
                           np.zeros(config.sample_rate, dtype=np.float32)])
    cut = word_cut(clip, name="a.flac", config=config)
    assert CUT_SECONDS[0] <= cut.size / config.sample_rate <= CUT_SECONDS[1]
    assert np.abs(cut).mean() > 0.1  # from the speech, not the silence around it
    assert np.array_equal(cut, word_cut(clip, name="a.flac", config=config))
    short = word_cut(clip[: int(1.3 * config.sample_rate)], name="b.flac", config=config)
    assert short.size / config.sample_rate <= CUT_SECONDS[1]


def test_saved_views_answer_as_the_fitted_ones(tmp_path):
    from experiments.loco_linear import fit_and_choose, fused_answers, load_views, save_answers
    from ser.training.linear_views import LinearRecipe
    from tests.test_linear_views import _clips

    clips = _clips()
    clips.names = [f"F0final_sma_{i}" for i in range(clips.speeds[1.0].shape[1])]
    train = np.isin(clips.speaker, ["big-0", "big-1", "small-0"])
    validation = np.isin(clips.speaker, ["big-2"])
    test = ~train & ~validation
    recipe = LinearRecipe(c_grid=(0.1, 1.0), voicing_c_grid=(1.0,))
    views, choice = fit_and_choose(clips, train, validation, recipe, log=lambda _: None, label="t")
    assert set(choice) == {"functionals", "voicing"} and choice["functionals"]["chosen"] in (0.1, 1.0)
    allowed = np.ones(len(EMOTIONS), dtype=bool)
    save_answers(tmp_path / "a.npz", clips, views, test, allowed, note="x")
    with np.load(tmp_path / "a.npz") as stored:
        again = fused_answers(load_views(stored), clips.speeds[1.0][test], allowed)
        np.testing.assert_allclose(stored["full"], again)
