import numpy as np
import pytest

from ser.config import FeatureConfig
from ser.training.clips import ClipSet
from ser.training.cnn import TrainingBatches, augment_window, class_weights, clip_windows, fit_fold, predict_clips
from ser.training.data import EMOTIONS
from ser.training.settings import TrainSettings


def _synthetic_clips(n: int, *, config: FeatureConfig, seed: int) -> ClipSet:
    rng = np.random.default_rng(seed)
    emotion = np.arange(n) % 8
    # Each class gets a distinct bright band so a tiny model can learn something.
    features = []
    for label in emotion:
        frames = int(rng.integers(config.window_frames // 2, config.window_frames * 2))
        item = rng.standard_normal((frames, config.n_mels)).astype(np.float32) - 5
        item[:, label * 4 : label * 4 + 4] += 4
        features.append(item)
    variants = {speed: features for speed in (1.0, 0.9, 1.1)}
    return ClipSet(variants=variants, emotion=emotion, gender=emotion % 2, intensity=(emotion > 3).astype(int),
                   actor=np.arange(n) % 4 + 1)


@pytest.mark.slow
def test_tiny_model_trains_and_predicts_probabilities():
    config = FeatureConfig(window_seconds=0.5, n_mels=32)
    settings = TrainSettings(epochs=2, patience=2, batch_size=8, width=8)
    train = _synthetic_clips(32, config=config, seed=0)
    validation = _synthetic_clips(16, config=config, seed=1)
    model, history = fit_fold(train, validation, config=config, settings=settings, seed=0)
    assert len(history["loss"]) == 2
    assert all(np.isfinite(history["val_emotion_loss"]))
    probabilities = predict_clips(model, validation, config=config)
    assert probabilities["emotion"].shape == (16, len(EMOTIONS))
    assert probabilities["gender"].shape == (16, 2)
    np.testing.assert_allclose(probabilities["emotion"].sum(axis=1), 1.0, atol=1e-5)


def test_training_batches_are_augmented_crops_with_class_weights():
    """The Keras data class (module level, so it can be imported and tested) gives batches of
    training windows, one target and one weight per head and clip; rarer emotions weigh more."""
    import keras

    config = FeatureConfig(window_seconds=0.5, n_mels=32)
    clips = _synthetic_clips(20, config=config, seed=6)
    clips.emotion = np.array([0] * 4 + [1] * 16)
    batches = TrainingBatches(clips, config=config, settings=TrainSettings(batch_size=8), seed=0)
    assert isinstance(batches, keras.utils.PyDataset) and len(batches) == 3
    windows, targets, weights = batches[0]
    assert windows.shape == (8, config.window_frames, config.n_mels) and np.all(np.isfinite(windows))
    assert set(targets) == set(weights) == {"emotion", "gender", "intensity"}
    np.testing.assert_array_equal(weights["emotion"], batches.weights[targets["emotion"]])
    assert batches.weights[0] > batches.weights[1]  # 4 clips of emotion 0 against 16 of emotion 1
    assert sum(len(batches[k][0]) for k in range(len(batches))) == 20


def test_class_weights_balance_classes():
    labels = np.array([0] * 10 + [1] * 20 + [2] * 20)
    weights = class_weights(labels, n_classes=3)
    per_class_total = [weights[k] * np.sum(labels == k) for k in range(3)]
    np.testing.assert_allclose(per_class_total, per_class_total[0])


def test_augmentation_keeps_shape_and_finiteness_and_changes_input():
    rng = np.random.default_rng(0)
    window = rng.standard_normal((301, 64)).astype(np.float32) - 4
    augmented = augment_window(window, settings=TrainSettings(noise_probability=1.0), rng=rng)
    assert augmented.shape == window.shape
    assert np.all(np.isfinite(augmented))
    assert not np.array_equal(augmented, window)
    # Additive noise can only raise power; masks use the window mean. Neither goes below the floor.
    assert augmented.min() >= window.min() - 1e-5 or np.isclose(augmented.min(), window.mean(), atol=1)


def test_model_builder_shapes_and_band_normalisation():
    from ser.training.networks import BandMeanNormalization, build_model

    model = build_model(window_frames=101, n_mels=64, width=8)
    outputs = model(np.zeros((2, 101, 64), dtype=np.float32))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {"emotion": (2, 8), "gender": (2, 2), "intensity": (2, 2)}
    x = np.random.default_rng(0).standard_normal((1, 50, 64)).astype(np.float32)
    # Level and channel colouring (a constant per band) do not change the normalised input.
    shifted = x + np.linspace(-3, 3, 64, dtype=np.float32)
    np.testing.assert_allclose(BandMeanNormalization()(x), BandMeanNormalization()(shifted), atol=1e-4)


@pytest.mark.slow
def test_cross_validation_scores_what_the_fused_model_ships(monkeypatch):
    """One fold of the real cross-validation on tiny synthetic data with both views: the test
    probabilities it reports are what build_fused's model (the shipped kind) gives for those
    clips, and the summary reports each view, the fusion and the plain average. The CNN that
    ships is refitted on training + validation actors (never test actors), and validation
    (calibration) probabilities come from the early-stopped model that never saw them."""
    import ser.training.cnn as cnn_module
    import ser.training.cross_validation as cross_validation_module
    from ser.training.cross_validation import cross_validate
    from ser.training.evaluate import summarize_cross_validation
    from ser.training.networks import build_fused

    fits, scored = [], []
    real_fit_fold, real_predict_windows = cnn_module.fit_fold, cross_validation_module.predict_windows

    def recording_fit_fold(train, validation, **kwargs):
        model, history = real_fit_fold(train, validation, **kwargs)
        fits.append({"actors": set(train.actor.tolist()), "validation": validation is not None, "model": model})
        return model, history

    def recording_predict_windows(model, clips, **kwargs):
        scored.append({"model": model, "actors": set(clips.actor.tolist())})
        return real_predict_windows(model, clips, **kwargs)

    monkeypatch.setattr(cnn_module, "fit_fold", recording_fit_fold)
    monkeypatch.setattr(cross_validation_module, "predict_windows", recording_predict_windows)

    config = FeatureConfig(window_seconds=0.5, n_mels=32)
    settings = TrainSettings(epochs=1, patience=1, batch_size=16, width=8, functional_c_grid=(0.01, 0.1))
    clips = _synthetic_clips(80, config=config, seed=2)
    clips.actor = np.repeat(np.arange(1, 11), 8)  # ten actors, each with all eight emotions
    rng = np.random.default_rng(3)
    values = rng.standard_normal((80, 20)).astype(np.float32) + 0.5 * clips.emotion[:, None]
    clips.functionals = {speed: values + 0.01 * rng.standard_normal(values.shape).astype(np.float32)
                         for speed in (1.0, 0.9, 1.1)}
    # Five of the twenty are "voice-source" functionals: the third, voicing view uses those.
    clips.functional_names = [f"F0final_sma_{k}" if k < 5 else f"mfcc_sma_{k}" for k in range(20)]
    speech = np.ones(80, dtype=bool)
    run = cross_validate(clips, speech_mask=speech, config=config, settings=settings, folds=[0], log=lambda _: None)

    (fold,) = run.folds
    test = clips.subset(np.isin(np.arange(80), fold.test_positions))
    assert [view.name for view in fold.views] == ["functionals", "voicing"]
    assert fold.refit_epochs == 1  # the shipped CNN was retrained on training + validation actors
    train_actors, val_actors, test_actors = set(fold.train_actors), set(fold.validation_actors), set(fold.test_actors)
    early, refit = fits
    assert early["validation"] and early["actors"] == train_actors
    assert not refit["validation"] and refit["actors"] == train_actors | val_actors
    assert fold.cnn is refit["model"]
    by_actors = {frozenset(call["actors"]): call["model"] for call in scored}
    assert by_actors[frozenset(val_actors)] is early["model"]
    assert by_actors[frozenset(test_actors)] is refit["model"]
    kernel = fold.view("voicing").model.get_layer("emotion").get_weights()[0]
    assert np.all(kernel[5:] == 0) and np.any(kernel[:5] != 0)  # only its own functionals count
    shipped = build_fused(run.models("log_mel_cnn"), run.models("functionals"), run.models("voicing"))
    windows, owners = clip_windows(test, config=config)
    outputs = shipped.predict({"log_mel": windows, "functionals": test.functionals[1.0][owners]}, verbose=0)
    per_clip = np.stack([outputs["emotion"][owners == k].mean(axis=0) for k in range(len(test))])
    np.testing.assert_allclose(fold.test_probabilities["emotion"], per_clip, atol=1e-5)

    summary = summarize_cross_validation(clips, run)
    assert set(summary.views) == {"log_mel_cnn", "functionals", "voicing", "fused", "averaged"}
    assert summary.views["fused"].accuracy == summary.accuracy
    assert [row.fold for row in summary.functional_c] == [0] and summary.voicing_c[0].chosen in (0.01, 0.1)
    assert summary.per_fold[0].refit_epochs == 1 and set(summary.per_fold[0].test) == test_actors
    assert summary.n == len(test) and 0 <= summary.calibration.coverage_above_threshold <= 1


def test_voicing_columns_pick_the_voice_source_functionals():
    from ser.serving.functionals import voicing_columns

    names = ["F0final_sma_amean", "mfcc_sma[1]_amean", "jitterLocal_sma_amean", "logHNR_sma_de_amean",
             "pcm_RMSenergy_sma_amean", "shimmerLocal_sma_stddev", "voicingFinalUnclipped_sma_amean"]
    assert voicing_columns(names).tolist() == [0, 2, 3, 5, 6]


@pytest.mark.slow
def test_refit_replays_the_schedule_up_to_the_best_epoch():
    """The refit trains exactly as many epochs as the early-stopped run's best one, at the
    learning rates that run used, and needs no validation clips."""
    from ser.training.cnn import refit_schedule

    history = {"val_emotion_loss": [2.0, 1.5, 1.2, 1.4, 1.3], "learning_rate": [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]}
    assert refit_schedule(history) == [1e-3, 1e-3, 5e-4]
    config = FeatureConfig(window_seconds=0.5, n_mels=32)
    settings = TrainSettings(epochs=5, batch_size=8, width=8)
    train = _synthetic_clips(32, config=config, seed=0)
    model, refit_history = fit_fold(train, None, config=config, settings=settings, seed=0, schedule=[2e-3, 1e-3])
    assert len(refit_history["loss"]) == 2
    np.testing.assert_allclose(refit_history["learning_rate"], [2e-3, 1e-3], rtol=1e-6)
    validation = _synthetic_clips(8, config=config, seed=1)
    for ambiguous in ({"validation": validation, "schedule": [1e-3]}, {"validation": None, "schedule": None}):
        with pytest.raises(ValueError, match="either"):
            fit_fold(train, config=config, settings=settings, seed=0, **ambiguous)


@pytest.mark.slow
def test_leaky_split_trains_the_shipped_recipe_and_says_it_is_leaky():
    """The leaky comparison runs the same recipe (CNN refit, functional and voicing views) on a
    random clip split, reports each view and marks itself leaky."""
    from ser.training.evaluate import leaky_random_split

    config = FeatureConfig(window_seconds=0.5, n_mels=32)
    settings = TrainSettings(epochs=1, patience=1, batch_size=16, width=8, functional_c_grid=(0.01,),
                             voicing_c_grid=(0.01,))
    clips = _synthetic_clips(80, config=config, seed=4)
    clips.actor = np.repeat(np.arange(1, 11), 8)
    rng = np.random.default_rng(5)
    values = rng.standard_normal((80, 20)).astype(np.float32) + 0.5 * clips.emotion[:, None]
    clips.functionals = {speed: values for speed in (1.0, 0.9, 1.1)}
    clips.functional_names = [f"F0final_sma_{k}" if k < 5 else f"mfcc_sma_{k}" for k in range(20)]
    result = leaky_random_split(clips, speech_mask=np.ones(80, dtype=bool), config=config, settings=settings)
    assert result.protocol.startswith("LEAKY")
    assert result.n_test == 16 and result.refit_epochs == 1
    assert set(result.view_accuracy) == {"log_mel_cnn", "functionals", "voicing"}
    assert 0 <= result.accuracy <= 1 and 0 <= result.uar <= 1


def test_word_crops_make_windows_of_one_wrapped_word_length_span(monkeypatch):
    """With every window a word crop, each is a 0.5-1.2 s span of its clip repeated to fill the window,
    as window_features serves a single word (frames i and i + span are the same frame)."""
    from ser.training.cnn import augmented_windows

    config = FeatureConfig()
    rng = np.random.default_rng(0)
    frames = np.arange(400, dtype=np.float32)[:, None] * np.ones((1, config.n_mels), np.float32)
    settings = TrainSettings(word_crop_probability=1.0 - 1e-9, speed_probability=0.0, noise_probability=0.0,
                             warp_probability=0.0)
    import ser.training.cnn as cnn

    # SpecAugment masks would hide the wrap; this test is about the crop.
    monkeypatch.setattr(cnn, "augment_window", lambda window, **_: window)
    windows = augmented_windows({1.0: [frames] * 6}, np.arange(6), config=config, settings=settings, rng=rng)
    assert windows.shape == (6, config.window_frames, config.n_mels)
    for window in windows[:, :, 0]:
        span = int(window.max() - window.min()) + 1  # consecutive frames of the clip, then wrapped
        assert 0.5 * config.frames_per_second - 1 <= span <= 1.2 * config.frames_per_second
        np.testing.assert_array_equal(window[span:], window[: window.size - span])
        np.testing.assert_array_equal(np.diff(window[:span]), np.ones(span - 1))


def test_without_word_crops_the_windows_are_the_sentence_crops_of_before():
    """word_crop_probability 0 (the default) draws no extra random number: the same seed gives the
    same windows as a crop-then-augment of every row."""
    from ser.training.cnn import _crop, augmented_windows

    config = FeatureConfig()
    clips = [np.random.default_rng(row).standard_normal((350, config.n_mels)).astype(np.float32) for row in range(4)]
    settings = TrainSettings(speed_probability=0.0)
    windows = augmented_windows({1.0: clips}, np.arange(4), config=config, settings=settings,
                                rng=np.random.default_rng(5))
    rng = np.random.default_rng(5)
    expected = []
    for row in range(4):
        rng.random()  # the speed draw
        expected.append(augment_window(_crop(clips[row], frames=config.window_frames, rng=rng), settings=settings,
                                       rng=rng))
    np.testing.assert_array_equal(windows, np.stack(expected))


def test_word_copies_are_a_training_copy_and_a_refused_cut_repeats_its_clip():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((4, 5)).astype(np.float32)
    words = rng.standard_normal((4, 5)).astype(np.float32)
    words[2] = np.nan  # a cut with too little voice to score
    clips = ClipSet(variants={1.0: [np.zeros((3, 2))] * 4}, emotion=np.arange(4), gender=np.zeros(4, int),
                    intensity=np.zeros(4, int), actor=np.arange(4), functionals={1.0: features},
                    word_functionals=words)
    copies = clips.functional_copies()
    assert len(copies) == 2
    np.testing.assert_array_equal(copies[1][[0, 1, 3]], words[[0, 1, 3]])
    np.testing.assert_array_equal(copies[1][2], features[2])
    subset = clips.subset(np.array([False, False, True, True]))
    np.testing.assert_array_equal(subset.word_functionals[1], words[3])
