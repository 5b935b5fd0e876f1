import numpy as np
import pytest

from ser.training.splits import actor_folds, train_validation_test


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_folds_partition_actors_balanced_by_gender(seed):
    actors = list(range(1, 21))
    folds = actor_folds(actors, n_folds=5, seed=seed)
    flat = [actor for fold in folds for actor in fold]
    assert sorted(flat) == actors  # every actor exactly once
    for fold in folds:
        males = sum(actor % 2 for actor in fold)
        assert males == 2 and len(fold) == 4


@pytest.mark.parametrize("fold", range(5))
def test_no_actor_in_two_parts_of_any_fold(fold):
    actors = list(range(1, 21))
    train, validation, test = train_validation_test(actors, n_folds=5, fold=fold, seed=0)
    assert not set(train) & set(test)
    assert not set(train) & set(validation)
    assert not set(validation) & set(test)
    assert sorted(train + validation + test) == actors


def test_every_actor_is_tested_once_across_folds():
    actors = list(range(1, 21))
    tested = [a for f in range(5) for a in train_validation_test(actors, n_folds=5, fold=f, seed=0)[2]]
    assert sorted(tested) == actors


def test_cross_validation_positions_never_share_actors(tmp_path):
    """The clip-level masks built by cross_validate keep actors apart too."""
    from ser.training.clips import ClipSet

    rng = np.random.default_rng(0)
    actor = np.repeat(np.arange(1, 21), 6)
    clips = ClipSet(
        variants={1.0: [rng.standard_normal((20, 4)).astype(np.float32) for _ in actor]},
        emotion=rng.integers(0, 8, actor.size), gender=(actor % 2 == 0).astype(int),
        intensity=rng.integers(0, 2, actor.size), actor=actor,
    )
    for fold in range(5):
        train, validation, test = train_validation_test(sorted(set(actor.tolist())), n_folds=5, fold=fold, seed=0)
        in_train = clips.subset(np.isin(actor, train))
        in_test = clips.subset(np.isin(actor, test))
        assert not set(in_train.actor.tolist()) & set(in_test.actor.tolist())


def test_bad_fold_count():
    with pytest.raises(ValueError):
        actor_folds([1, 2, 3], n_folds=5, seed=0)
