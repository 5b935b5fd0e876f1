"""The robustness conditions without a model: the one-word cut and the answer shares that show a collapse."""

from __future__ import annotations

import numpy as np
import pytest

from ser.config import FeatureConfig


def _speech_in_silence(seconds: float, *, seed: int = 0) -> np.ndarray:
    config = FeatureConfig()
    rng = np.random.default_rng(seed)
    pause = np.zeros(config.sample_rate, dtype=np.float32)
    speech = 0.3 * rng.standard_normal(int(seconds * config.sample_rate)).astype(np.float32)
    return np.concatenate([pause, speech, pause])


def test_one_word_is_a_word_length_cut_of_the_speech_drawn_from_the_clips_own_generator():
    from ser.training.loco import CUT_SECONDS
    from ser.training.robustness import CONDITIONS, SEEN_IN_TRAINING

    clip = _speech_in_silence(3.0)
    cuts = [CONDITIONS["one_word"](clip, np.random.default_rng([position, 9])) for position in range(20)]
    lengths = np.array([cut.size for cut in cuts]) / FeatureConfig().sample_rate
    assert np.all((lengths >= CUT_SECONDS[0]) & (lengths <= CUT_SECONDS[1]))
    assert len(set(lengths.round(4))) > 10  # each clip its own length and place
    assert all(np.abs(cut).mean() > 0.1 for cut in cuts)  # from the speech, never the pauses around it
    again = CONDITIONS["one_word"](clip, np.random.default_rng([3, 9]))
    assert np.array_equal(again, cuts[3])
    assert "one_word" not in SEEN_IN_TRAINING
    short = CONDITIONS["one_word"](_speech_in_silence(0.4), np.random.default_rng(0))
    assert short.size / FeatureConfig().sample_rate == pytest.approx(0.4, abs=0.05)  # all of a shorter speech


def test_word_cut_keeps_the_cuts_ser_loco_cached_before_cut_word_was_factored_out():
    from ser.serving.features import remove_dc, trim_silence
    from ser.training.loco import word_cut

    clip, config = _speech_in_silence(3.0), FeatureConfig()
    speech = trim_silence(remove_dc(clip), config=config)
    # Length and start of this cut as the earlier word_cut drew them: the cut cache is keyed on its settings, not
    # on the code, so a changed draw would silently reuse stale cuts.
    assert np.array_equal(word_cut(clip, name="03-01-05.flac", config=config), speech[1081:1081 + 8547])


def test_the_word_conditions_name_says_the_cut_lengths():
    from ser.reporting.model_card import CONDITION_NAMES, LENGTH_CONDITIONS
    from ser.training.loco import CUT_SECONDS
    from ser.training.robustness import CONDITIONS

    assert f"{CUT_SECONDS[0]:g} s to {CUT_SECONDS[1]:g} s" in CONDITION_NAMES["one_word"]
    assert set(CONDITIONS) <= set(CONDITION_NAMES) and set(LENGTH_CONDITIONS) <= set(CONDITIONS)


def test_condition_scores_keep_the_share_of_each_answer_so_a_collapse_shows():
    from ser.reporting.model_card import most_given
    from ser.training.robustness import condition_scores

    truth = ["happy", "sad", "sad", "angry"]
    answers = {"clean": ["happy", "sad", "angry", "angry"], "one_word": ["sad", "sad", None, "sad"]}
    scores = condition_scores(truth, answers, emotions=["happy", "sad", "angry"])
    word = scores["one_word"]
    assert word.answer_share == {"happy": 0.0, "sad": 1.0, "angry": 0.0}  # among the 3 answered
    assert most_given(word.answer_share) == ("sad", 1.0)
    assert word.refused == 1 and word.accuracy == pytest.approx(0.25)
    assert sum(scores["clean"].answer_share.values()) == pytest.approx(1.0)
    assert most_given(scores["clean"].answer_share) == ("angry", 0.5)
    refused = condition_scores(truth, {"clean": [None] * 4}, emotions=["happy", "sad", "angry"])["clean"]
    assert most_given(refused.answer_share) is None  # nothing answered: no answer "given most often"


def test_a_robustness_file_written_before_the_shares_were_kept_reads_them_as_unknown(tmp_path):
    import json
    from pathlib import Path

    from ser.reporting.results import load_robustness

    shipped = json.loads((Path(__file__).resolve().parent.parent / "models" / "robustness.json").read_text())
    for scores in shipped["conditions"].values():
        del scores["answer_share"]
    (tmp_path / "robustness.json").write_text(json.dumps(shipped))
    old = load_robustness(tmp_path / "robustness.json")
    assert all(row.answer_share == {} for row in old.conditions.values())
    from ser.reporting.schema import to_json

    assert "answer_share" not in to_json(old)["conditions"]["clean"]  # and it is written back as it was read
