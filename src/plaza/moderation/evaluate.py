"""How good a classifier is, and the auto-label threshold.

:func:`auto_threshold` picks the lowest score at which a held-out set's precision is at
least ``target`` (0.996: a margin over the 0.98 the labeler promises, as precision on
new data is lower than within the training data) for every higher threshold too, so one
lucky point does not set it; higher thresholds that label fewer than ``1 / (1 - target)``
texts (250) are not held to it, since there a single mislabelled or odd text would push
the threshold to the top and leave almost nothing labelled automatically. The held-out
scores come from k-fold cross-validation on the training data (:func:`out_of_fold`),
never from the test set. :func:`train` fits on all the data and
sets the threshold that way; :func:`report` measures a trained classifier on test data:
F1, precision and recall at 0.5, and precision and recall at the auto-label threshold.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from plaza.moderation.classifier import Classifier, fit
from plaza.moderation.dataset import Dataset

TARGET_PRECISION: Final = 0.996
FOLDS: Final = 5
NEVER: Final = 1.01  # above every score: nothing is labelled without review


def out_of_fold(data: Dataset, *, folds: int = FOLDS, seed: int = 0) -> np.ndarray[Any, Any]:
    """Each training text's score from a model that did not see it (stratified folds)."""
    y = np.array(data.spam)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for cls in (False, True):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
    out = np.zeros(len(y))
    for k in range(folds):
        train = np.flatnonzero(fold != k)
        held = np.flatnonzero(fold == k)
        part = Dataset(tuple(data.texts[i] for i in train), tuple(bool(y[i]) for i in train))
        out[held] = fit(part).scores([data.texts[i] for i in held])
    return out


def auto_threshold(
    scores: np.ndarray[Any, Any], spam: np.ndarray[Any, Any], target: float = TARGET_PRECISION
) -> float:
    """The lowest threshold whose precision is >= ``target``, as is every higher one's
    that labels at least ``1 / (1 - target)`` texts (see the module docstring)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], spam[order].astype(np.float64)
    n = np.arange(1, len(y) + 1)
    precision = np.cumsum(y) / n
    # precision when cutting after position i; only cut where the score changes
    cut = np.r_[s[1:] != s[:-1], True]
    ok = (precision >= target) | ~cut | (n < 1.0 / (1.0 - target))
    bad = np.flatnonzero(~ok)
    end = len(s) if len(bad) == 0 else int(bad[0])
    good = np.flatnonzero(cut[:end] & (precision[:end] >= target))
    return NEVER if len(good) == 0 else float(s[good[-1]])


def train(data: Dataset, *, target: float = TARGET_PRECISION) -> Classifier:
    """A classifier fitted on ``data`` with its auto-label threshold set."""
    threshold = auto_threshold(out_of_fold(data), np.array(data.spam), target)
    model = fit(data)
    model.threshold = threshold
    # Review starts no higher than automatic labelling: a model trained on little data
    # may auto-label below the default review score.
    model.review_from = min(model.review_from, threshold)
    return model


def _prf(pred: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[float, float, float]:
    tp = float(np.sum(pred & y))
    precision = tp / max(1.0, float(np.sum(pred)))
    recall = tp / max(1.0, float(np.sum(y)))
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return f1, precision, recall


def report(model: Classifier, test: Dataset) -> dict[str, Any]:
    """The ``plaza labeler eval`` numbers for ``model`` on ``test``."""
    scores = model.scores(test.texts)
    y = np.array(test.spam)
    f1, precision, recall = _prf(scores >= 0.5, y)
    _, auto_p, auto_r = _prf(scores >= model.threshold, y)
    return {
        "f1": round(f1, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "auto_label": {
            "threshold": round(model.threshold, 4),
            "precision": round(auto_p, 4),
            "recall": round(auto_r, 4),
        },
        "test_size": len(test),
        "test_spam": int(y.sum()),
    }
