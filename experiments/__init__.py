"""Research checks on the shipped model; each writes its own result file in ``models/``.

Run them from the repository root, e.g. ``python -m experiments.robustness --data ../shared/data/ravdess``.
"""
