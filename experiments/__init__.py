"""Studies of the model and its recipe: nothing here writes a file the bundle ships (``python -m ser`` does).

Run them from the repository root, e.g. ``python -m experiments.cross_corpus --recipe shipped``.
The checks of a trained bundle (robustness, level, seed, ASED, voice profile, the unfamiliarity
detector) are ``python -m ser`` commands, run by ``make train`` after training.
"""
